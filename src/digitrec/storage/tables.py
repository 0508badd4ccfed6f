"""The prediction log table, declared once for the app, Alembic and the SQL scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so Alembic, db/create_table.sql and the database agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; pass a timezone-aware UTC timestamp")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite hands back what was stored: UTC without offset
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PredictionLog(Base):
    """One prediction, the model input that produced it and the person's feedback."""

    __tablename__ = "prediction_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Public identifier (uuid4 hex), made before the row is written so that feedback can
    # refer to a prediction still waiting in the outbox.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    session_id: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    # The registry version that answered; None for rows logged before the registry.
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The request that made the row: one per Predict press, shared by the rows of a comparison
    # (every model on one drawing); None for rows logged before it was recorded.
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The digit, its calibrated probability and all 10 (summing to 1). A reader that states
    # no probabilities (the chat model) leaves the last two empty, and the digit too when it
    # gave none.
    prediction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    probabilities: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)  # preprocessing plus inference
    # The model's "not a digit" detector: probability of one digit (None: no detector), and
    # its decision (rows logged before it are digits).
    digit_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_digit: Mapped[bool] = mapped_column(Boolean, server_default=true())
    image_png: Mapped[bytes] = mapped_column(LargeBinary)  # the 28x28 model input
    canvas_png: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    actual: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no digit given
    # The person said the drawing is not a digit (then `actual` is None, `feedback_at` set).
    not_a_digit: Mapped[bool] = mapped_column(Boolean, server_default=false())
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("prediction >= 0 AND prediction <= 9", name="prediction_digit"),
        CheckConstraint("actual >= 0 AND actual <= 9", name="actual_digit"),
        # History pages: one session's rows, newest first.
        Index(None, "session_id", "timestamp", "id"),
        # History and stats over every session, newest first.
        Index(None, "timestamp", "id"),
        Index(None, "request_id"),  # the rows of one comparison
    )


prediction_logs: Table = PredictionLog.__table__  # type: ignore[assignment]

# A version's standing: one champion per name serves; candidates wait for the gates.
MODEL_STATUSES = ("candidate", "champion", "rejected", "retired")


class ModelVersion(Base):
    """One trained version of a named model: its ONNX bytes, how it was made, its standing."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per name
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    onnx: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))  # of `onnx`, checked before serving it
    # torch weights (a checkpoint) the learner fine-tunes from; None: it cannot be fine-tuned.
    checkpoint: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    temperature: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)  # per data set, and the gates
    # What it learned from: {"rows": n, "sessions": n, "newest_feedback_at": iso} or shipped.
    trained_on: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_by: Mapped[str] = mapped_column(String)  # who or what changed it
    status_reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(
            "status IN ('candidate', 'champion', 'rejected', 'retired')", name="status_known"
        ),
        # What every replica polls: the champion of each name.
        Index(None, "name", "status"),
    )


model_versions: Table = ModelVersion.__table__  # type: ignore[assignment]
