"""The contract shared by the service, the HTTP API and the page (no FastAPI, no SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

Digit = Annotated[int, Field(ge=0, le=9, description="A single digit, 0 to 9.")]


class PredictionFields(BaseModel):
    """What a prediction says: shared by the public view and the stored record."""

    timestamp: datetime
    session_id: str
    model: str
    prediction: Digit
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability of `prediction`.")
    probabilities: list[float] = Field(min_length=10, max_length=10)
    latency_ms: float = Field(ge=0.0, description="Preprocessing plus inference time.")


class PredictionPublic(PredictionFields):
    """One logged prediction, as the page and the API show it."""

    # A UUID (hex) made at predict time, so feedback can refer to a prediction whose
    # database write is still waiting in the outbox.
    id: str
    actual: Digit | None = Field(default=None, description="The person's label; None: no feedback.")
    feedback_at: datetime | None = None
    # False while the write waits in the local outbox because the database is unreachable.
    logged: bool = True


class PredictionsPublic(BaseModel):
    """A page of predictions and the total number of rows for the same filter."""

    data: list[PredictionPublic]
    count: int


class PredictRequest(BaseModel):
    """A prediction request carrying the image as base64 (PNG or JPEG bytes)."""

    image: str = Field(description="Base64 of a PNG or JPEG image, optionally a data: URL.")
    session_id: str | None = None
    # None: the service's default model (DIGITREC_DEFAULT_MODEL).
    model: str | None = None


class FeedbackIn(BaseModel):
    """The person's correction (or confirmation) of a prediction."""

    actual: Digit


class StatsPublic(BaseModel):
    """Running totals; a prediction nobody corrected counts as correct, as in the reference app."""

    total: int
    correct: int
    confirmed: int = Field(description="Feedback equal to the prediction.")
    corrected: int = Field(description="Feedback different from the prediction.")
    no_feedback: int
    realized_accuracy: float | None = Field(description="correct / total; None when total is 0.")
    # Accuracy per true digit over rows with feedback; None where a digit has none.
    per_digit_accuracy: dict[int, float | None]
    # confusion[actual][predicted], counted over rows with feedback only.
    confusion: list[list[int]]
    pending_writes: int = Field(default=0, description="Writes waiting in the outbox.")


class ErrorPublic(BaseModel):
    """Every 4xx answer of the API."""

    detail: str
