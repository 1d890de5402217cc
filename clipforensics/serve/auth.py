"""The bearer key that guards /v1 when the service is started with ``--api-key-file``."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError

_BEARER = HTTPBearer(auto_error=False, description="the key in the file given to --api-key-file")


def key_guard(key: str | None) -> Callable[..., None]:
    """A dependency that refuses (401) a request without ``Authorization: Bearer <key>``; lets all through
    when ``key`` is None."""

    def guard(credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER)) -> None:
        if key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise ApiError(401, "missing or wrong API key",
                           "send the key given to --api-key-file as 'Authorization: Bearer <key>'",
                           {"WWW-Authenticate": "Bearer"})

    return guard
