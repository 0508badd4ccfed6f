"""The contract shared by the service, the HTTP API and the page (no FastAPI, no SQL)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

Digit = Annotated[int, Field(ge=0, le=9, description="A single digit, 0 to 9.")]
# A label as a person sends it: a JSON integer 0..9; `true`, `"7"` and `7.0` are refused.
StrictDigit = Annotated[StrictInt, Field(ge=0, le=9, description="A single digit, 0 to 9.")]

# A session is a capability: 128 random bits the server issues, as 32 lowercase hex digits.
# Whoever holds it sees and labels that session's predictions; nobody can guess one.
SESSION_ID_BYTES = 16
SESSION_ID_PATTERN = rf"^[0-9a-f]{{{2 * SESSION_ID_BYTES}}}$"
SessionId = Annotated[
    str, Field(pattern=SESSION_ID_PATTERN, examples=["3f2a9c0d5b7e4e1f8a6d2c4b9e0f1a7c"])
]


def new_session_id() -> str:
    """A fresh session id: 128 bits from the operating system's random source."""
    return secrets.token_hex(SESSION_ID_BYTES)


class PredictionFields(BaseModel):
    """What a prediction says: shared by the public view and the stored record."""

    timestamp: datetime
    session_id: str
    model: str
    # The registry version of `model` that answered; None: a model file outside the registry.
    model_version: int | None = None
    # One per request; the rows of a comparison (every model on one drawing) share it.
    request_id: str | None = None
    prediction: Digit | None = Field(
        description="The digit; None only from a reader that gave no digit (the chat model"
        " answered none, or nothing it could be held to)."
    )
    confidence: float | None = Field(
        ge=0.0,
        le=1.0,
        description="Calibrated probability of `prediction`; None: the reader states none (a"
        " chat model), and none is invented for it.",
    )
    probabilities: list[float] | None = Field(
        min_length=10, max_length=10, description="All 10 calibrated probabilities, or None."
    )
    latency_ms: float = Field(ge=0.0, description="Preprocessing plus inference time.")
    digit_probability: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Calibrated probability that the drawing is one digit at all; None: the"
        " model cannot tell (it has no detector).",
    )
    is_digit: bool = Field(
        default=True,
        description="False: the model says the drawing is not a single digit (a letter, a"
        " scribble, several digits), and `prediction` is only its best guess.",
    )


class PredictionPublic(PredictionFields):
    """One logged prediction, as the page and the API show it."""

    # A UUID (hex) made at predict time, so feedback can refer to a prediction whose
    # database write is still waiting in the outbox.
    id: str
    actual: Digit | None = Field(
        default=None, description="The person's digit; None: no feedback, or `not_a_digit`."
    )
    not_a_digit: bool = Field(default=False, description="The person says it is not a digit.")
    feedback_at: datetime | None = None
    # False while the write waits in the local outbox because the database is unreachable.
    logged: bool = True


class ComparisonPublic(BaseModel):
    """Every model's answer to one drawing, each a logged row under the same request id."""

    request_id: str
    session_id: str
    predictions: list[PredictionPublic]
    # Readers that gave no answer this time, with why (the chat model timed out, its budget
    # is spent...): they logged no row.
    unavailable: dict[str, str] = Field(default_factory=dict)


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
    """The person's correction (or confirmation) of a prediction: a digit, or not a digit."""

    actual: StrictDigit | None = None
    not_a_digit: StrictBool = Field(
        default=False, description="True (and no `actual`): the drawing is not a digit."
    )
    # The session that made the prediction (or send it in the X-Session-ID header).
    session_id: SessionId | None = None

    @model_validator(mode="after")
    def _one_label(self) -> FeedbackIn:
        if (self.actual is None) != self.not_a_digit:
            raise ValueError("give either `actual` (a digit 0-9) or `not_a_digit: true`")
        return self


class StatsPublic(BaseModel):
    """Running totals; a prediction nobody corrected counts as correct, as in the reference app."""

    total: int
    correct: int
    confirmed: int = Field(description="Feedback equal to the prediction.")
    corrected: int = Field(description="Feedback different from the prediction.")
    no_feedback: int
    not_a_digit: int = Field(
        default=0, description="Rows the person said are not a digit (right if refused)."
    )
    realized_accuracy: float | None = Field(description="correct / total; None when total is 0.")
    # Accuracy per true digit over rows with feedback; None where a digit has none.
    per_digit_accuracy: dict[int, float | None]
    # confusion[actual][predicted], counted over rows with feedback only.
    confusion: list[list[int]]
    pending_writes: int = Field(default=0, description="Writes waiting in the outbox.")


class ErrorPublic(BaseModel):
    """Every 4xx answer of the API."""

    detail: str


class DigitAccuracyPublic(BaseModel):
    """How often the model was right about one true digit, over the rows people labelled."""

    digit: Digit
    labelled: int
    correct: int
    accuracy: float | None = Field(description="correct / labelled; None when labelled is 0.")


class PeriodAccuracyPublic(BaseModel):
    """One model's accuracy over the rows labelled in one hour or day (by prediction time)."""

    start: datetime
    model: str
    labelled: int
    correct: int
    accuracy: float


class PromotionPublic(BaseModel):
    """A change of champion in the registry: a version promoted, or retired by its successor."""

    at: datetime
    model: str
    version: int
    status: str = Field(description="`champion` (promoted then) or `retired` (replaced then).")
    by: str
    reason: str


class CorrectionPublic(BaseModel):
    """A drawing the model got wrong, with what it said and what the person meant."""

    id: str
    timestamp: datetime
    feedback_at: datetime | None
    model: str
    model_version: int | None
    prediction: Digit
    actual: Digit
    confidence: float
    image_png: str = Field(description="Base64 of the 28x28 model input, a PNG.")


class VersionSummaryPublic(BaseModel):
    """A registry version as Insights lists it: its standing, who set it and why, its accuracy
    per data set and its gate results read from the metrics."""

    name: str
    version: int
    parent_version: int | None
    created_at: datetime
    status: str
    status_changed_at: datetime
    status_by: str
    status_reason: str
    # Accuracy per data set the version was measured on (`mnist_test`, ...).
    accuracy: dict[str, float | None]
    gates: list[str] = Field(description="Each learning gate's reading; empty: none recorded.")
    gates_passed: bool | None = Field(description="All gates held; None: no verdict recorded.")


class InsightsPublic(BaseModel):
    """What the Insights page shows: one session's labelled rows, or every session's."""

    session_id: str | None = Field(description="None: every session (the admin's view).")
    predictions: int
    labelled: int
    corrected: int
    per_digit: list[DigitAccuracyPublic]
    # confusion[actual][predicted], over labelled rows only.
    confusion: list[list[int]]
    period: str = Field(description="`hour` or `day`: the unit of `accuracy_over_time`.")
    accuracy_over_time: list[PeriodAccuracyPublic]
    promotions: list[PromotionPublic]
    corrections: list[CorrectionPublic] = Field(description="The latest, newest first.")
    versions: list[VersionSummaryPublic]


class RegistryVersionPublic(BaseModel):
    """One version of a model in the registry, whole: how it was made and measured, its standing."""

    name: str
    version: int
    parent_version: int | None
    created_at: datetime
    sha256: str
    temperature: float
    metrics: dict[str, Any] = Field(description="Per data set, and the gates that decided.")
    trained_on: dict[str, Any] = Field(description="Labelled rows and sessions, or shipped.")
    status: str = Field(description="candidate, champion, rejected or retired")
    status_changed_at: datetime
    status_by: str
    status_reason: str


class ModelPublic(BaseModel):
    """A model a prediction may name, the version that serves it and every version."""

    name: str
    serving: int | None = Field(description="The version that answers; None: a file, unversioned.")
    versions: list[RegistryVersionPublic]
