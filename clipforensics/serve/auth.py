"""The bearer keys that guard /v1 when the service is started with ``--api-key-file``, and the caller they name:
each key is known by its sha256 only (the service keeps no key), and the jobs a key creates are recorded under
that hash, so that a key sees only its own."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError

_BEARER = HTTPBearer(auto_error=False, description="a key in the file given to --api-key-file")


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def caller_of(key_hashes: frozenset[str]) -> Callable[..., str | None]:
    """A dependency giving the caller, the hash of its key (None when the service has no keys); it refuses (401)
    a request without ``Authorization: Bearer <key>`` of a known key."""

    def caller(credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER)) -> str | None:
        if not key_hashes:
            return None
        given = key_hash(credentials.credentials if credentials is not None else "")
        if not any(hmac.compare_digest(given, known) for known in key_hashes):
            raise ApiError(401, "missing or wrong API key",
                           "send a key given to --api-key-file as 'Authorization: Bearer <key>'",
                           {"WWW-Authenticate": "Bearer"})
        return given

    return caller
