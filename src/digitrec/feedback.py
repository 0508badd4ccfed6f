"""Labelled predictions as arrays: split by session, weighted so that no session can poison.

People confirm or correct what the model said, and `learning` fine-tunes on their labels. Not
every label is honest or careful: one session can label hundreds of drawings wrongly, by
mistake or on purpose. So a session is never split between training and evaluation, no
session weighs more than SESSION_CAP_ROWS rows in a training run (nor in the evaluation), and
a session that contradicts the champion's confident predictions counts for less.
Plain numpy and Pillow: no torch, no database.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import numpy as np
from PIL import Image

from digitrec.preprocessing import PreprocessingError, as_canvas, to_mnist

logger = logging.getLogger(__name__)

EVAL_FRACTION = 0.2  # of the sessions, held out for the gates
# At most this many rows' worth of weight per session. A fixed number, not a share: a share
# grows with the poisoner's own rows, and with few honest sessions 10 % of the rows would cut
# every session. 50 is more than most people label in one sitting (the pen-drawn writers made
# 2 to 57 digits each), so honest sessions keep their full weight, and a session of 300 rows
# keeps all its drawings (more variety than a sample of 50) at 1/6 of a row's weight each.
SESSION_CAP_ROWS = 50.0
# A correction is chosen digit by digit and marks where the champion is wrong: the signal. A
# confirmation costs one click, may be careless, and agrees with the champion, whose own
# predictions the replay and distillation already keep: it counts half.
CORRECTION_WEIGHT = 1.0
CONFIRMATION_WEIGHT = 0.5
# Trust: the share of a session's rows on which the champion was confident (>= CONFIDENT_P)
# that its labels agree with. Honest people rarely contradict a confident champion (it is
# seldom confidently wrong); someone labelling 300 drawings wrongly contradicts it on nearly
# every one. Below MIN_EVIDENCE_ROWS confident rows, the missing ones count as agreeing, so
# one disagreement in a short session does not zero it.
CONFIDENT_P = 0.9
MIN_EVIDENCE_ROWS = 5
# A digit field with no digit in it: `predicted` of a row whose reader gave none (any label of
# it is a correction), the label of a row a person said is not a digit.
NO_DIGIT = -1


@dataclass(frozen=True)
class LabelledRow:
    """A logged prediction that a person labelled: what learning reads from the log."""

    session_id: str
    image_png: bytes  # the 28x28 model input as logged: a grey PNG, white digit on black
    predicted: int  # the digit the person was shown; NO_DIGIT: none
    actual: int | None  # the person's digit; None: no digit to learn from (not a digit)
    feedback_at: datetime | None = None
    canvas_png: bytes | None = None  # the picture as drawn; unused: the model input suffices
    refused: bool = False  # the person was told it is not a digit, instead of `predicted`


@dataclass(frozen=True)
class FeedbackSet:
    """Labelled rows as arrays, one entry per row."""

    images: np.ndarray  # (N, 28, 28) uint8, the model input as logged
    labels: np.ndarray  # (N,) int64, the person's digit
    predicted: np.ndarray  # (N,) int64, the digit shown
    sessions: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> FeedbackSet:
        """The rows at `idx` (indices or a boolean mask)."""
        return FeedbackSet(
            self.images[idx], self.labels[idx], self.predicted[idx], self.sessions[idx]
        )

    def as_dataset(self) -> tuple[np.ndarray, np.ndarray]:
        """Images (N, 28, 28) float32 in [0, 1] and labels, as `gating.measure` takes them."""
        return self.images.astype(np.float32) / 255, self.labels


class _HasSession(Protocol):
    @property
    def session_id(self) -> str: ...


Row = TypeVar("Row", bound=_HasSession)


def rows_to_arrays(rows: Iterable[LabelledRow]) -> FeedbackSet:
    """The rows labelled with a digit, decoded; rows with no digit or a bad image are left out."""
    return _decoded_set(r for r in rows if r.actual is not None and 0 <= r.actual <= 9)


def not_a_digit_rows(rows: Iterable[LabelledRow]) -> FeedbackSet:
    """The rows a person said are not a digit, decoded, labelled NO_DIGIT; bad images left out."""
    return _decoded_set(r for r in rows if r.actual is None)


def _decoded_set(rows: Iterable[LabelledRow]) -> FeedbackSet:
    images, labels, predicted, sessions = [], [], [], []
    for row in rows:
        pixels = _decoded(row.image_png)
        if pixels is None or pixels.shape != (28, 28):
            logger.warning("left out a row of session %s: no 28x28 drawing in it", row.session_id)
            continue
        images.append(pixels)
        labels.append(NO_DIGIT if row.actual is None else row.actual)
        predicted.append(row.predicted)
        sessions.append(row.session_id)
    return FeedbackSet(
        images=np.array(images, dtype=np.uint8).reshape(-1, 28, 28),
        labels=np.array(labels, dtype=np.int64),
        predicted=np.array(predicted, dtype=np.int64),
        sessions=np.array(sessions, dtype=str),
    )


def _decoded(png: bytes) -> np.ndarray | None:
    """The logged image as (H, W) uint8 grey, or None if it cannot be read or holds no digit."""
    try:
        canvas = as_canvas(png)
        pixels = np.asarray(canvas.convert("L")) if isinstance(canvas, Image.Image) else canvas
        to_mnist(pixels)  # training preprocesses it again: a blank one would stop the run
    except PreprocessingError:
        return None
    return pixels


def is_evaluation_session(session_id: str, eval_fraction: float = EVAL_FRACTION) -> bool:
    """Whether a session is held out: the first 8 bytes of its sha256, as a fraction of 2**64."""
    digest = hashlib.sha256(session_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def split_by_session(
    rows: Sequence[Row], eval_fraction: float = EVAL_FRACTION
) -> tuple[list[Row], list[Row]]:
    """(training rows, evaluation rows): whole sessions, the same ones on every run."""
    # A fixed hash, not a seeded draw: a session held out once stays held out, so no later
    # candidate is measured on a session that its champion was fine-tuned on.
    held_out = {s: is_evaluation_session(s, eval_fraction) for s in {r.session_id for r in rows}}
    return (
        [r for r in rows if not held_out[r.session_id]],
        [r for r in rows if held_out[r.session_id]],
    )


def session_trust(feedback: FeedbackSet, champion_probs: np.ndarray) -> dict[str, float]:
    """Per session, in [0, 1]: 1 minus its disagreement rate with the champion's confident calls."""
    confident = champion_probs.max(axis=1) >= CONFIDENT_P  # champion_probs: (N, 10)
    disagrees = confident & (champion_probs.argmax(axis=1) != feedback.labels)
    trust = {}
    for session in np.unique(feedback.sessions):
        mine = feedback.sessions == session
        evidence = max(int(confident[mine].sum()), MIN_EVIDENCE_ROWS)
        trust[str(session)] = 1.0 - int(disagrees[mine].sum()) / evidence
    return trust


def training_weights(
    feedback: FeedbackSet, champion_probs: np.ndarray, cap: float = SESSION_CAP_ROWS
) -> np.ndarray:
    """A weight per row (N,): correction or confirmation, times its session's cap and trust."""
    kind = np.where(feedback.labels != feedback.predicted, CORRECTION_WEIGHT, CONFIRMATION_WEIGHT)
    trust = session_trust(feedback, champion_probs)
    weights = np.empty(len(feedback), dtype=np.float32)
    for session, session_trust_ in trust.items():
        mine = feedback.sessions == session
        # Scaled so the session's rows sum to at most `cap`, then by how far it is trusted.
        scale = min(1.0, cap / kind[mine].sum())
        weights[mine] = kind[mine] * scale * session_trust_
    return weights


def session_capped_weights(sessions: np.ndarray, cap: float = SESSION_CAP_ROWS) -> np.ndarray:
    """A weight per row (N,): 1, but a session of more than `cap` rows sums to `cap`."""
    _, index, counts = np.unique(sessions, return_inverse=True, return_counts=True)
    return np.minimum(1.0, cap / counts[index].reshape(-1)).astype(np.float32)


def capped(feedback: FeedbackSet, cap: int = int(SESSION_CAP_ROWS)) -> FeedbackSet:
    """At most `cap` rows per session, evenly spread over each larger one: fair evaluation data."""
    keep = []
    for session in np.unique(feedback.sessions):
        mine = np.flatnonzero(feedback.sessions == session)
        if len(mine) > cap:
            mine = mine[np.linspace(0, len(mine) - 1, cap).round().astype(int)]
        keep.append(mine)
    return feedback.subset(np.sort(np.concatenate(keep)) if keep else np.array([], dtype=int))
