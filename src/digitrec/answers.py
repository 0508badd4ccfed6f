"""What a client is told about a prediction: its public id, and its answer, built from a row of
the log or from the record the service made (logged, or queued in the outbox)."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.engine import RowMapping

from digitrec.schemas import PredictionFields, PredictionPublic
from digitrec.storage import Feedback, PredictionRecord


def prediction_uid(session_id: str, idempotency_key: str | None) -> str:
    """A new prediction's public id: random, or fixed by its session and idempotency key."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    # Scoped to the session: another session's press with the same key is another row.
    digest = hashlib.sha256(f"{session_id}\n{idempotency_key}".encode()).hexdigest()
    return digest[:32]


def answer_from_logged(record: PredictionRecord, first: RowMapping | None) -> PredictionPublic:
    """The answer to a logged prediction: its own row, or the first row of a repeated press."""
    return answer_from_record(record, logged=True) if first is None else answer_from_row(first)


def answer_from_row(row: RowMapping) -> PredictionPublic:
    """The answer for a row of the log."""
    return PredictionPublic.model_validate(dict(row))


def answer_from_record(
    record: PredictionRecord, *, logged: bool, feedback: Feedback | None = None
) -> PredictionPublic:
    """The answer for a record the service made: `logged`, or queued in the outbox (with the
    label queued behind it, if any)."""
    return PredictionPublic(
        **record.model_dump(include=set(PredictionFields.model_fields)),
        id=record.uid,
        actual=None if feedback is None else feedback.actual,
        not_a_digit=feedback is not None and feedback.actual is None,
        feedback_at=None if feedback is None else feedback.feedback_at,
        logged=logged,
    )
