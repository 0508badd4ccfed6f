"""Every failure becomes a JSON answer `{"detail": "..."}`; never a stack trace.

Each answer for a known failure also carries an `X-Error-Code` header, so that a client can
raise the same exception the in-process service would have raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from digitrec.contract import (
    ERROR_CODE_HEADER,
    ERROR_CODES,
    RETRY_AFTER_HEADER,
    VALIDATION_ERROR_CODE,
    EmptyDrawingError,
    ImageTooLargeError,
    OutboxFullError,
    StorageUnavailableError,
    UnauthorizedError,
    error_code,
)
from digitrec.schemas import ErrorPublic

logger = logging.getLogger(__name__)

UNAVAILABLE_DETAIL = "the database is unavailable; try again shortly"
RETRY_AFTER_S = 5  # how long a client should wait before asking again while the database is down
TOO_LARGE = ERROR_CODES[ImageTooLargeError]

# Shown in the OpenAPI document for every operation.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "The request could not be parsed."},
    422: {"model": ErrorPublic, "description": "The request is well formed but unusable."},
    500: {"model": ErrorPublic, "description": "An unexpected failure (logged)."},
}


def error_response(
    status: int, detail: str, code: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON answer for a failure."""
    return JSONResponse(
        {"detail": detail}, status_code=status, headers={ERROR_CODE_HEADER: code, **(headers or {})}
    )


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One readable line for pydantic's error list, e.g. `body.actual: Input should be ...`."""
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error["msg"])
    return "; ".join(parts) or "invalid request"


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    known = error_code(exc)
    assert known is not None  # registered for the types in ERROR_CODES only
    status, code = known
    detail = str(exc) or code.replace("_", " ")
    if isinstance(exc, EmptyDrawingError) and "nothing is drawn" not in detail:
        detail = f"nothing is drawn that can be read: {detail}"
    if isinstance(exc, StorageUnavailableError):
        logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            status,
            detail if isinstance(exc, OutboxFullError) else UNAVAILABLE_DETAIL,
            code,
            {RETRY_AFTER_HEADER: str(RETRY_AFTER_S)},
        )
    if isinstance(exc, UnauthorizedError):
        return error_response(status, detail, code, {"WWW-Authenticate": "Bearer"})
    return error_response(status, detail, code)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = TOO_LARGE.code if exc.status_code == TOO_LARGE.status else f"http_{exc.status_code}"
    return error_response(exc.status_code, str(exc.detail), code, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, describe_validation_errors(exc.errors()), VALIDATION_ERROR_CODE)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The last resort: the traceback goes to the log, never to the client.
    logger.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, "internal error; it has been logged", "internal")


def add_exception_handlers(app: FastAPI) -> None:
    """Register the JSON answers for every failure on `app`."""
    for error_type in ERROR_CODES:
        app.add_exception_handler(error_type, _known_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
