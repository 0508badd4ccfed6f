"""What the storage layer writes: a prediction row and a label, with one codec for both.

The same models serve the database (`model_dump()`, one key per column) and the outbox
(`model_dump(mode="json")`, with the PNG bytes as base64), so a new column is added to the
table, to `PredictionFields` or `PredictionRecord`, and to a migration, and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from digitrec.schemas import Digit, PredictionFields


def _from_base64(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError("not base64") from exc
    return value


# Raw bytes in Python; base64 text in JSON (the outbox's lines).
Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), when_used="json"),
]


class PredictionRecord(PredictionFields):
    """A prediction row to insert; the database adds `id`."""

    model_config = ConfigDict(frozen=True)

    # Public identifier (uuid4 hex), made before the row is written.
    uid: str
    image_png: Base64Bytes = Field(repr=False)  # the 28x28 model input
    canvas_png: Base64Bytes | None = Field(default=None, repr=False)  # the picture as drawn


class Feedback(BaseModel):
    """The person's label for a prediction, and when it was given (the latest one wins)."""

    model_config = ConfigDict(frozen=True)

    uid: str
    actual: Digit | None  # None: the person says the drawing is not a digit
    feedback_at: datetime
