"""The HTTP routes: each one reads its input, calls the service and returns its answer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from digitrec.api.deps import (
    PREDICT_REQUEST_BODY,
    PREDICTION_ID_PATTERN,
    PredictInputDep,
    ServiceDep,
    SessionQuery,
)
from digitrec.api.metrics import record_outbox_pending, record_prediction, render_metrics
from digitrec.schemas import (
    ErrorPublic,
    FeedbackIn,
    PredictionPublic,
    PredictionsPublic,
    StatsPublic,
)

router = APIRouter()

MAX_PAGE_ROWS = 1000
MAX_OFFSET = 2**31 - 1  # SQLite and PostgreSQL integers overflow past 64 bits; stay well inside

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorPublic, "description": "No such prediction or model."}}
UNAVAILABLE: Responses = {503: {"model": ErrorPublic, "description": "The database is down."}}


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


@router.post(
    "/predict",
    tags=["predictions"],
    openapi_extra=PREDICT_REQUEST_BODY,
    responses={
        **NOT_FOUND,
        413: {"model": ErrorPublic, "description": "The upload or image is too large."},
        415: {"model": ErrorPublic, "description": "Neither JSON nor a multipart upload."},
    },
)
def predict(body: PredictInputDep, service: ServiceDep) -> PredictionPublic:
    """Recognise the digit in a PNG, JPEG or WebP image and log the prediction.

    Any other format is refused (422); over 12 megapixels (WebP: over 1920x1080) is a 413.
    Send JSON `{"image": <base64>, "session_id": ..., "model": ...}` or a multipart upload with
    the image in the field `file`. Without a session id the prediction starts a new session.
    """
    # A plain def: FastAPI runs it in the worker's threadpool, so one request's database commit
    # overlaps the next one's preprocessing. Measured with bench/load.py against running it
    # inline on the event loop: inline saves ~0.8 ms of CPU, but on PostgreSQL (a commit waits
    # for its fsync) it gave higher latency and lower throughput at 32 clients.
    prediction = service.predict(body.image, session_id=body.session_id, model=body.model)
    record_prediction(prediction)
    return prediction


@router.post(
    "/predictions/{prediction_id}/feedback",
    tags=["predictions"],
    responses={**NOT_FOUND, **UNAVAILABLE},
)
def submit_feedback(
    prediction_id: Annotated[str, Path(pattern=PREDICTION_ID_PATTERN)],
    feedback: FeedbackIn,
    service: ServiceDep,
) -> PredictionPublic:
    """Record the true digit of a prediction; sending it again replaces it."""
    return service.submit_feedback(prediction_id, feedback.actual)


@router.get(
    "/predictions/{prediction_id}/image",
    tags=["predictions"],
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The 28x28 model input, PNG."},
        **NOT_FOUND,
        **UNAVAILABLE,
    },
)
def prediction_image(
    prediction_id: Annotated[str, Path(pattern=PREDICTION_ID_PATTERN)], service: ServiceDep
) -> Response:
    """The 28x28 image the model saw for a prediction."""
    return Response(service.image_png(prediction_id), media_type="image/png")


@router.get("/predictions", tags=["predictions"], responses=UNAVAILABLE)
def history(
    service: ServiceDep,
    session_id: SessionQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PredictionsPublic:
    """Logged predictions, newest first, with the total count for the same filter."""
    return service.history(session_id=session_id, limit=limit, offset=offset)


@router.get("/stats", tags=["predictions"], responses=UNAVAILABLE)
def stats(service: ServiceDep, session_id: SessionQuery = None) -> StatsPublic:
    """Accuracy as people reported it, per digit, and the confusion matrix."""
    return service.stats(session_id=session_id)


@router.get("/models", tags=["models"])
def models(service: ServiceDep) -> list[str]:
    """The names of the models a prediction may ask for."""
    return service.models()


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
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics() -> Response:
    """Prometheus metrics, summed over all workers of this server."""
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
