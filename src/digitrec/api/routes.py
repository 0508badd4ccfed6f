"""The HTTP routes: each one reads its input, calls the service and returns its answer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from digitrec.api.access import AdminDep, ApiKeyDep, SessionDep, SessionOrAdminDep
from digitrec.api.deps import (
    PREDICT_REQUEST_BODY,
    PREDICTION_ID_PATTERN,
    PredictInputDep,
    ServiceDep,
)
from digitrec.api.metrics import record_outbox_pending, record_prediction, render_metrics
from digitrec.contract import SESSION_ID_HEADER, SessionRequiredError
from digitrec.schemas import (
    ComparisonPublic,
    ErrorPublic,
    FeedbackIn,
    ModelPublic,
    PredictionPublic,
    PredictionsPublic,
    StatsPublic,
)

router = APIRouter()
# Everything but liveness, readiness and metrics; with DIGITREC_API_KEY set, only for its holders.
keyed = APIRouter(dependencies=[ApiKeyDep])

MAX_PAGE_ROWS = 1000
MAX_OFFSET = 2**31 - 1  # SQLite and PostgreSQL integers overflow past 64 bits; stay well inside

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorPublic, "description": "No such prediction or model."}}
UNAVAILABLE: Responses = {503: {"model": ErrorPublic, "description": "The database is down."}}
UPLOAD_REFUSED: Responses = {
    413: {"model": ErrorPublic, "description": "The upload or image is too large."},
    415: {"model": ErrorPublic, "description": "Neither JSON nor a multipart upload."},
}
DENIED: Responses = {
    401: {"model": ErrorPublic, "description": "The admin token (or API key) is missing."},
    403: {"model": ErrorPublic, "description": "Views across sessions are off."},
}


class HealthPublic(BaseModel):
    """The process is up."""

    status: str = "ok"


class OutboxPublic(BaseModel):
    """Writes waiting in the outbox for the database, and how many it may hold."""

    pending: int
    capacity: int


class ReadinessPublic(BaseModel):
    """Whether predictions can be accepted: the model loads, and the database takes writes or
    the outbox has room for them (HTTP 503 otherwise)."""

    model: bool = Field(description="The default model loads.")
    database: bool = Field(description="The database takes a write now.")
    outbox: OutboxPublic

    @property
    def accepting(self) -> bool:
        """Whether a prediction would be answered and kept."""
        has_room = self.outbox.pending < self.outbox.capacity
        return self.model and (self.database or has_room)


@keyed.post(
    "/predict",
    tags=["predictions"],
    openapi_extra=PREDICT_REQUEST_BODY,
    responses={**NOT_FOUND, **UPLOAD_REFUSED},
)
async def predict(body: PredictInputDep, service: ServiceDep) -> PredictionPublic:
    """Recognise the digit in a PNG, JPEG or WebP image and log the prediction.

    Any other format is refused (422); over 12 megapixels (WebP: over 1920x1080) is a 413.
    Send JSON `{"image": <base64>, "session_id": ..., "model": ...}` or a multipart upload with
    the image in the field `file`. Without a session id the prediction starts a new session:
    keep the `session_id` of the answer, it is what lets you see and label your predictions.
    An `Idempotency-Key` header (with a session id) makes a retry return the first answer.
    """
    prediction = await service.predict_async(
        body.image,
        session_id=body.session_id,
        model=body.model,
        idempotency_key=body.idempotency_key,
    )
    record_prediction(prediction)
    return prediction


@keyed.post(
    "/predict/compare",
    tags=["predictions"],
    openapi_extra=PREDICT_REQUEST_BODY,
    responses=UPLOAD_REFUSED,
)
def compare(body: PredictInputDep, service: ServiceDep) -> ComparisonPublic:
    """Every model on the same drawing, side by side: one logged row per model.

    The body is `/predict`'s; its `model` is not used, since every model answers. The rows share
    the answer's `request_id`, each with its own `id` for feedback, and its own latency (the
    shared preprocessing plus that model's inference).
    """
    comparison = service.compare(
        body.image, session_id=body.session_id, idempotency_key=body.idempotency_key
    )
    for prediction in comparison.predictions:
        record_prediction(prediction)
    return comparison


@keyed.post(
    "/predictions/{prediction_id}/feedback",
    tags=["predictions"],
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def submit_feedback(
    prediction_id: Annotated[str, Path(pattern=PREDICTION_ID_PATTERN)],
    feedback: FeedbackIn,
    service: ServiceDep,
    session_id: SessionDep,
) -> PredictionPublic:
    """Record the true digit of a prediction, or that it is not a digit
    (`{"not_a_digit": true}`); sending a label again replaces it.

    Only the session that made the prediction may label it (`session_id` in the body or the
    query, or the X-Session-ID header); for any other the prediction is not found.
    """
    owner = feedback.session_id or session_id
    if owner is None:
        raise SessionRequiredError(f"send the session_id (or {SESSION_ID_HEADER}) to label")
    return service.submit_feedback(prediction_id, feedback.actual, session_id=owner)


@keyed.get(
    "/predictions/{prediction_id}/image",
    tags=["predictions"],
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The 28x28 model input, PNG."},
        **NOT_FOUND,
        **UNAVAILABLE,
        **DENIED,
    },
)
def prediction_image(
    prediction_id: Annotated[str, Path(pattern=PREDICTION_ID_PATTERN)],
    service: ServiceDep,
    session_id: SessionOrAdminDep,
) -> Response:
    """The 28x28 image the model saw for one of this session's predictions (any, for the admin)."""
    return Response(service.image_png(prediction_id, session_id=session_id), media_type="image/png")


@keyed.get("/predictions", tags=["predictions"], responses={**UNAVAILABLE, **DENIED})
def history(
    service: ServiceDep,
    session_id: SessionOrAdminDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PredictionsPublic:
    """This session's predictions, newest first, with their total count (every session's,
    for the admin, when no session is named)."""
    return service.history(session_id=session_id, limit=limit, offset=offset)


@keyed.get("/stats", tags=["predictions"], responses={**UNAVAILABLE, **DENIED})
def stats(service: ServiceDep, session_id: SessionOrAdminDep) -> StatsPublic:
    """Accuracy as people reported it, per digit, and the confusion matrix: this session's (or
    over every session, for the admin, when no session is named)."""
    return service.stats(session_id=session_id)


@keyed.get("/models", tags=["models"])
def models(service: ServiceDep) -> list[ModelPublic]:
    """The models a prediction may ask for: the version that serves each, and every version
    in the registry with its metrics, gate results and standing."""
    return service.model_catalog()


@router.get("/health", tags=["operations"])
async def health() -> HealthPublic:
    """Liveness: the process answers."""
    return HealthPublic()


@router.get(
    "/ready",
    tags=["operations"],
    responses={503: {"model": ReadinessPublic, "description": "Not ready to serve."}},
)
async def ready(service: ServiceDep, response: Response) -> ReadinessPublic:
    """Readiness: the model loads, and predictions are kept (in the database, or in the
    outbox while it has room). Answers within about a second, whatever the database does."""
    # Not on the request threads: a probe must be answered even while they are all busy.
    readiness = ReadinessPublic.model_validate(await asyncio.to_thread(service.ready))
    record_outbox_pending(readiness.outbox.pending)
    if not readiness.accepting:
        response.status_code = 503
    return readiness


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
        **DENIED,
    },
    dependencies=[AdminDep],
)
def metrics() -> Response:
    """Prometheus metrics, summed over all workers of this server."""
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
