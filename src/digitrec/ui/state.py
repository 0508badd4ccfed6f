"""What the page remembers between reruns, and what a press on the slate calls for.

The slate sends its picture together with the Predict press (see `digitrec.ui.slate`), so a
press is served in the run it arrives in. A press names the drawing it shows (an id the
browser renews with every stroke and Clear): pressing again on the same drawing, for the same
model, keeps the result on screen, and its idempotency key makes the service log it once even
when two presses race each other.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from digitrec.schemas import (
    ComparisonPublic,
    PredictionPublic,
    PredictionsPublic,
    StatsPublic,
    new_session_id,
)
from digitrec.ui.slate import Press

_RESULT = "result"
_PREVIEW = "preview"
_HISTORY = "history"
_SERVED = "served_request"
_NOTICE = "notice"
_FEEDBACK_NOTICE = "feedback_notice"
_SESSION_ID = "session_id"
_REPREDICT = "repredict"
_PNG = "served_png"  # the picture of the result on screen, for a comparison
_COMPARISON = "comparison"


class Action(Enum):
    """What to do with the press in this run."""

    NONE = "none"  # no press
    PREDICT = "predict"  # a drawing (or model) not yet read: ask the service
    EMPTY = "empty"  # Predict on an empty slate: say so
    KEEP = "keep"  # the result on screen already answers it
    FORGET = "forget"  # the page asked the slate again after a model change, and it is empty


def request_key(press: Press, model: str) -> str | None:
    """What a prediction answers: this drawing read by this model; None when nothing is drawn."""
    return None if press.png is None else f"{model}:{press.drawing}"


def idempotency_key(request: str) -> str:
    """The service's Idempotency-Key for a request: one row per drawing and model."""
    return hashlib.sha256(request.encode()).hexdigest()[:32]


def decide(press: Press | None, model: str, served: str | None) -> Action:
    """Serve a press; `served` is the request key of the result on screen."""
    if press is None:
        return Action.NONE
    request = request_key(press, model)
    if request is None:
        return Action.FORGET if press.again else Action.EMPTY
    return Action.KEEP if request == served else Action.PREDICT


@dataclass(frozen=True)
class Notice:
    """A message shown until the next action replaces it."""

    level: str  # "info", "success", "warning" or "error"
    text: str


class PageState:
    """Typed access to the page's keys in a session-state mapping."""

    def __init__(self, store: MutableMapping[Any, Any]) -> None:
        self._store = store

    def clear_slate(self) -> None:
        """Forget the result shown for the drawing the slate no longer holds."""
        for key in (_RESULT, _PREVIEW, _SERVED, _NOTICE, _FEEDBACK_NOTICE, _PNG, _COMPARISON):
            self._store.pop(key, None)

    def next_action(self, press: Press | None, model: str) -> Action:
        """What the press calls for in this run."""
        return decide(press, model, self._store.get(_SERVED))

    def serve(self, result: PredictionPublic, press: Press, model: str) -> None:
        """Keep a new prediction on screen until the slate is cleared or another arrives."""
        self._store[_RESULT] = result
        self._store.pop(_PREVIEW, None)
        self._store[_PNG] = press.png
        self._store.pop(_COMPARISON, None)
        self._store[_SERVED] = request_key(press, model)
        self._store.pop(_NOTICE, None)
        self._store.pop(_FEEDBACK_NOTICE, None)
        self.forget_history()

    def refuse(self, notice: Notice) -> None:
        """Answer a press with a message instead of a prediction."""
        self._store[_NOTICE] = notice

    def choose_model(self) -> None:
        """Another model was chosen: ask the slate for its drawing again if a result is shown."""
        if self.result is not None:
            self._store[_REPREDICT] = self.repredict + 1

    @property
    def repredict(self) -> int:
        """How often the page has asked the slate to send its drawing again."""
        return int(self._store.get(_REPREDICT, 0))

    def is_stale(self, model: str) -> bool:
        """True when the result on screen was made by a model other than the chosen one."""
        result = self.result
        return result is not None and result.model != model

    @property
    def result(self) -> PredictionPublic | None:
        return self._store.get(_RESULT)

    @result.setter
    def result(self, value: PredictionPublic) -> None:
        self._store[_RESULT] = value
        self.forget_history()

    @property
    def history(self) -> tuple[PredictionsPublic, StatsPublic] | None:
        """The history and totals last read, while nothing has been logged since."""
        return self._store.get(_HISTORY)

    @history.setter
    def history(self, value: tuple[PredictionsPublic, StatsPublic]) -> None:
        self._store[_HISTORY] = value

    def forget_history(self) -> None:
        """Read the history anew next time (something was logged, or the page reloaded)."""
        self._store.pop(_HISTORY, None)

    @property
    def preview(self) -> np.ndarray | None:
        """The 28x28 float image in [0, 1] the model saw; None until `make_preview`."""
        return self._store.get(_PREVIEW)

    def make_preview(self, preprocess: Callable[[bytes], np.ndarray | None]) -> None:
        """Make the model's input for the result on screen, once (after the answer is shown:
        the page preprocesses the drawing a second time, for this picture only)."""
        drawing = self._store.get(_PNG)
        if drawing is not None and _PREVIEW not in self._store:
            self._store[_PREVIEW] = preprocess(drawing)

    @property
    def served_png(self) -> bytes | None:
        """The picture the result on screen answers (what a comparison reads)."""
        return self._store.get(_PNG)

    @property
    def served_request(self) -> str | None:
        """The request key of the result on screen."""
        return self._store.get(_SERVED)

    @property
    def comparison(self) -> ComparisonPublic | None:
        """Every model's answer to the drawing on screen, once asked for."""
        return self._store.get(_COMPARISON)

    @comparison.setter
    def comparison(self, value: ComparisonPublic) -> None:
        self._store[_COMPARISON] = value
        self.forget_history()

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
