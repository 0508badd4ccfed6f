"""What the page remembers between reruns, and when a Predict request is served.

The slate's drawing reaches Python about 200 ms after the mouse is released (the canvas
debounces its updates), so a quick click on Predict arrives in a rerun that still holds the
previous drawing, or none. The click is therefore kept as a pending request and served on the
rerun in which the fresh drawing arrives. When nothing new arrives within ``PENDING_WAIT_S``,
the slate is reported empty, or, if it holds the drawing whose result is on screen (a double
click), that result stands and nothing is logged twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from digitrec.schemas import PredictionPublic, new_session_id

# The canvas debounces by 200 ms; the rest covers the round trip to the server.
PENDING_WAIT_S = 0.5
# How often a waiting page checks whether the wait is over.
PENDING_POLL_S = 0.1

_SLATE_GENERATION = "slate_generation"
_PENDING = "pending_predict"
_RESULT = "result"
_PREVIEW = "preview"
_SERVED = "served_request"
_NOTICE = "notice"
_FEEDBACK_NOTICE = "feedback_notice"
_SESSION_ID = "session_id"


@dataclass(frozen=True)
class Slate:
    """What the canvas holds in this rerun."""

    png: bytes | None  # the whole canvas, rendered (280x280 RGBA)
    strokes: int  # objects on the canvas; 0 means nothing drawn

    @classmethod
    def from_canvas(cls, json_data: Mapping[str, Any] | None, png: bytes | None) -> Slate:
        """Read the canvas result (its Fabric.js JSON and rendered PNG)."""
        objects = (json_data or {}).get("objects") or []
        return cls(png=png, strokes=len(objects))

    @property
    def fingerprint(self) -> str | None:
        """A short digest of the rendered drawing; None when nothing is drawn."""
        if self.strokes == 0 or self.png is None:
            return None
        return hashlib.blake2b(self.png, digest_size=16).hexdigest()


@dataclass(frozen=True)
class PendingPredict:
    """A Predict click not yet served."""

    clicked_at: float  # time.monotonic() of the click


class Action(Enum):
    """What to do with the pending Predict request in this rerun."""

    NONE = "none"  # no request
    WAIT = "wait"  # the drawing may still be on its way
    PREDICT = "predict"  # serve it with the drawing now on the slate
    EMPTY = "empty"  # nothing drawn: say so
    KEEP = "keep"  # the result on screen already answers it


def request_key(slate: Slate, model: str) -> str | None:
    """What a prediction answers: this drawing read by this model; None when nothing is drawn."""
    fingerprint = slate.fingerprint
    return None if fingerprint is None else f"{model}:{fingerprint}"


def decide(
    pending: PendingPredict | None, request: str | None, served: str | None, now: float
) -> Action:
    """Serve a Predict request once the drawing it was meant for is on the slate.

    `request` is the request key of the slate in this rerun, `served` that of the result on
    screen (see `request_key`).
    """
    if pending is None:
        return Action.NONE
    if request is not None and request != served:
        # A drawing (or model) not yet predicted: it came with the click or arrived after it.
        return Action.PREDICT
    if now - pending.clicked_at < PENDING_WAIT_S:
        return Action.WAIT
    return Action.EMPTY if request is None else Action.KEEP


@dataclass(frozen=True)
class Notice:
    """A message shown until the next action replaces it."""

    level: str  # "info", "success", "warning" or "error"
    text: str


class PageState:
    """Typed access to the page's keys in a session-state mapping."""

    def __init__(self, store: MutableMapping[Any, Any]) -> None:
        self._store = store

    @property
    def canvas_key(self) -> str:
        """The widget key of the slate; a new key remounts an empty canvas."""
        return f"slate-{self._store.get(_SLATE_GENERATION, 0)}"

    def clear_slate(self) -> None:
        """Remount an empty slate and forget the result shown for the old drawing."""
        self._store[_SLATE_GENERATION] = self._store.get(_SLATE_GENERATION, 0) + 1
        for key in (_PENDING, _RESULT, _PREVIEW, _SERVED, _NOTICE, _FEEDBACK_NOTICE):
            self._store.pop(key, None)

    @property
    def pending(self) -> PendingPredict | None:
        return self._store.get(_PENDING)

    def request_predict(self, now: float) -> None:
        """Remember a Predict click until a drawing can serve it."""
        self._store[_PENDING] = PendingPredict(clicked_at=now)

    def wait_over(self, now: float) -> bool:
        """True when no request is pending, or its wait for a drawing has run out."""
        pending = self.pending
        return pending is None or now - pending.clicked_at >= PENDING_WAIT_S

    def next_action(self, slate: Slate, model: str, now: float) -> Action:
        """What the pending request calls for in this rerun."""
        return decide(self.pending, request_key(slate, model), self._store.get(_SERVED), now)

    def serve(
        self, result: PredictionPublic, preview: np.ndarray | None, slate: Slate, model: str
    ) -> None:
        """Keep a new prediction on screen until the slate is cleared or another arrives."""
        self._store[_RESULT] = result
        self._store[_PREVIEW] = preview
        self._store[_SERVED] = request_key(slate, model)
        self._store.pop(_PENDING, None)
        self._store.pop(_NOTICE, None)
        self._store.pop(_FEEDBACK_NOTICE, None)

    def close_request(self) -> None:
        """Drop the pending request: the result on screen already answers it."""
        self._store.pop(_PENDING, None)

    def refuse(self, notice: Notice) -> None:
        """Close the pending request with a message instead of a prediction."""
        self._store.pop(_PENDING, None)
        self._store[_NOTICE] = notice

    @property
    def result(self) -> PredictionPublic | None:
        return self._store.get(_RESULT)

    @result.setter
    def result(self, value: PredictionPublic) -> None:
        self._store[_RESULT] = value

    @property
    def preview(self) -> np.ndarray | None:
        """The 28x28 float image in [0, 1] the model saw."""
        return self._store.get(_PREVIEW)

    @property
    def notice(self) -> Notice | None:
        return self._store.get(_NOTICE)

    @property
    def feedback_notice(self) -> Notice | None:
        return self._store.get(_FEEDBACK_NOTICE)

    @feedback_notice.setter
    def feedback_notice(self, value: Notice | None) -> None:
        self._store[_FEEDBACK_NOTICE] = value

    def session_id(self, query_params: MutableMapping[str, str]) -> str:
        """The session in the URL, made and written there when absent or malformed."""
        wanted = normalise_session_id(query_params.get("session"))
        if wanted is None:
            wanted = self._store.get(_SESSION_ID) or new_session_id()
        if query_params.get("session") != wanted:
            query_params["session"] = wanted
        self._store[_SESSION_ID] = wanted
        return wanted


def normalise_session_id(value: str | None) -> str | None:
    """A UUID in hex form, or None when the value is not a UUID."""
    if not value:
        return None
    try:
        return uuid.UUID(value.strip()).hex
    except ValueError:
        return None
