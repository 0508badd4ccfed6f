"""The vocabulary the service, the HTTP API and its client share: domain errors, their codes
and HTTP statuses, and header names. A leaf: it imports neither FastAPI nor SQLAlchemy.

The API answers each error below with its status and `X-Error-Code: <code>`; the client turns
the code back into the same exception, so a caller sees the same failure in-process and over
HTTP.
"""

from __future__ import annotations

from typing import NamedTuple

ERROR_CODE_HEADER = "X-Error-Code"
RETRY_AFTER_HEADER = "Retry-After"
# The session that owns a prediction, for routes that take no body (or instead of the field).
SESSION_ID_HEADER = "X-Session-ID"
# One Predict press: a retry with the same key (and session) returns the first answer.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# DIGITREC_API_KEY, when the service is not meant to be public.
API_KEY_HEADER = "X-API-Key"


class PreprocessingError(ValueError):
    """The input cannot be turned into a digit image."""


class InvalidImageError(PreprocessingError):
    """The input is not a usable image (undecodable, wrong shape, too large)."""


class ImageTooLargeError(InvalidImageError):
    """The upload is larger than the service accepts."""


class EmptyDrawingError(PreprocessingError):
    """The input holds no drawing, or too little of one to read."""


class DrawingTooSmallError(EmptyDrawingError):
    """The input holds only a mark too small to be a digit: a click, a tick, a speck."""


class UnknownModelError(LookupError):
    """The named model has no ONNX file."""


class InvalidDigitError(ValueError):
    """A label that is not a single digit 0 to 9."""


class PredictionNotFoundError(LookupError):
    """No prediction, logged or queued, has this id."""


class StorageUnavailableError(RuntimeError):
    """The database cannot be reached (down, refusing connections, or locked too long)."""


class OutboxFullError(StorageUnavailableError):
    """The database takes no writes and the outbox already holds as many as it may."""


class SessionRequiredError(ValueError):
    """The request must say which session it speaks for."""


class UnauthorizedError(PermissionError):
    """The request lacks the credentials a route asks for (API key or admin token)."""


class ForbiddenError(PermissionError):
    """The route is switched off in this deployment (cross-session views without a token)."""


class ErrorCode(NamedTuple):
    """How an error travels over HTTP."""

    status: int
    code: str


# The first entry in an exception's MRO that is listed here decides its answer.
ERROR_CODES: dict[type[Exception], ErrorCode] = {
    EmptyDrawingError: ErrorCode(422, "empty_drawing"),
    DrawingTooSmallError: ErrorCode(422, "drawing_too_small"),
    ImageTooLargeError: ErrorCode(413, "too_large"),
    InvalidImageError: ErrorCode(422, "invalid_image"),
    UnknownModelError: ErrorCode(404, "unknown_model"),
    InvalidDigitError: ErrorCode(422, "invalid_digit"),
    PredictionNotFoundError: ErrorCode(404, "prediction_not_found"),
    StorageUnavailableError: ErrorCode(503, "storage_unavailable"),
    OutboxFullError: ErrorCode(503, "outbox_full"),
    SessionRequiredError: ErrorCode(422, "session_required"),
    UnauthorizedError: ErrorCode(401, "unauthorized"),
    ForbiddenError: ErrorCode(403, "forbidden"),
}

# The reverse table, for clients: error code -> exception.
ERRORS_BY_CODE: dict[str, type[Exception]] = {
    entry.code: error_type for error_type, entry in ERROR_CODES.items()
}

# A request that fails validation; not a domain error, so it has no exception of its own.
VALIDATION_ERROR_CODE = "validation"


def error_code(error: BaseException) -> ErrorCode | None:
    """The status and code of a known error; None for anything else."""
    for cls in type(error).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return None
