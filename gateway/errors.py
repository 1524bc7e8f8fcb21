"""Every error leaves the gateway as `{"message": ...}` with its status, never a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import db

log = logging.getLogger("qiskit_serverless.gateway")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class ErrorOut(BaseModel):
    """Every error the gateway answers: one human-readable message."""

    message: str


# Documented on every /api/v1 route (the OpenAPI docs and the schema fuzzing check them).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Invalid input",
        401: "Missing or invalid token",
        403: "Not allowed on this job",
        404: "Not found, or not visible to the caller",
        413: "Body too large",
        423: "Function disabled",
        429: "Active job limit reached",
    }.items()
}
# Only where it happens: a concurrent upload of the same title, or a run racing a re-upload.
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "Changed concurrently; retry"}}


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, message, **extra)


def _validation_message(error: RequestValidationError) -> str:
    first = error.errors()[0] if error.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form"))
    text = str(first.get("msg", "Invalid request."))
    return f"'{location}': {text}" if location else text


def _allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (what an `Allow` header must say)."""
    for template, operations in request.app.openapi()["paths"].items():
        parts = re.split(r"(\{[^}]+\})", template)
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        if re.fullmatch(pattern, request.scope["path"]):
            return sorted(method.upper() for method in operations)
    return []


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"message": error.message, **error.extra}, status_code=error.status)

    @app.exception_handler(DataError)
    async def unstorable(_: Request, error: DataError) -> JSONResponse:
        # PostgreSQL refuses what SQLite lets through (NUL characters, over-long values).
        return JSONResponse({"message": "A value is too long or has characters that cannot be stored."}, 400)

    @app.exception_handler(db.InvalidText)
    async def invalid_text(_: Request, error: db.InvalidText) -> JSONResponse:
        return JSONResponse({"message": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"message": _validation_message(error)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "Request failed."
        headers = error.headers
        if error.status_code == 405:
            # Starlette names only the methods of the first route on the path; a path with a GET and a
            # POST route (jobs/{id}/result, jobs/{id}/runtime_jobs) must allow both.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return JSONResponse({"message": message}, status_code=error.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"message": "Internal server error"}, status_code=500)
