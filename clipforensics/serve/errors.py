"""The one error body every failure answers with, ``{"error": "...", "detail": ...}``: the service's own
errors, FastAPI's validation errors and Starlette's HTTP errors (404, 405) alike."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("clipforensics.serve")


class ApiError(Exception):
    """A request the service answers with ``status`` and the error body (and ``headers``, e.g. Retry-After)."""

    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def error_response(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def invalid_options(detail: Any) -> ApiError:
    return ApiError(422, "invalid request options", detail)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.error, error.detail, error.headers)

    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), None, getattr(error, "headers", None))

    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(part) for part in problem["loc"][1:]) or str(problem["loc"][0]),
                   "message": problem["msg"], "input": problem.get("input")} for problem in error.errors()]
        return error_response(422, "invalid request options", detail)

    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", f"{type(error).__name__}: {error}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
