"""When a Predict click is served, and what the page keeps between reruns."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from digitrec.schemas import PredictionPublic, PredictionsPublic
from digitrec.ui.slate import Press
from digitrec.ui.state import (
    Action,
    Notice,
    PageState,
    decide,
    idempotency_key,
    normalise_session_id,
    request_key,
)

SEVEN = Press(png=b"png of a 7", drawing="d" * 32)
MORE = Press(png=b"png of a 7 with a bar", drawing="e" * 32)
EMPTY = Press(png=None, drawing="f" * 32)


def result(prediction: int = 7, model: str = "default") -> PredictionPublic:
    return PredictionPublic(
        id="a" * 32,
        timestamp=datetime.now(UTC),
        session_id="s",
        model=model,
        prediction=prediction,
        confidence=0.9,
        probabilities=[0.1 / 9] * 7 + [0.9] + [0.1 / 9] * 2,
        latency_ms=1.0,
    )


def test_decide_without_a_press_does_nothing() -> None:
    assert decide(None, "default", None) is Action.NONE


def test_decide_serves_a_new_drawing_at_once() -> None:
    assert decide(SEVEN, "default", None) is Action.PREDICT
    assert decide(MORE, "default", request_key(SEVEN, "default")) is Action.PREDICT


def test_decide_keeps_the_result_for_the_same_drawing_and_model() -> None:
    served = request_key(SEVEN, "default")
    assert decide(SEVEN, "default", served) is Action.KEEP
    assert decide(SEVEN, "lenet5", served) is Action.PREDICT  # another model reads it anew


def test_decide_on_an_empty_slate_says_so_unless_the_page_asked() -> None:
    assert decide(EMPTY, "default", None) is Action.EMPTY
    asked = Press(png=None, drawing="f" * 32, again=True)
    assert decide(asked, "default", request_key(SEVEN, "default")) is Action.FORGET


def test_idempotency_key_is_one_per_drawing_and_model() -> None:
    seven = request_key(SEVEN, "default")
    assert seven is not None and idempotency_key(seven) == idempotency_key(seven)
    others = {request_key(MORE, "default"), request_key(SEVEN, "lenet5")}
    assert idempotency_key(seven) not in {idempotency_key(str(k)) for k in others}
    assert len(idempotency_key(seven)) == 32


@pytest.mark.parametrize(
    "value",
    [
        None,
        "press",
        {"image": None},
        {"image": None, "drawing": "not an id"},
        {"image": "data:image/jpeg;base64,AAAA", "drawing": "d" * 32},
        {"image": "data:image/png;base64,@@@", "drawing": "d" * 32},
    ],
)
def test_press_from_a_malformed_trigger_is_ignored(value: object) -> None:
    assert Press.from_trigger(value) is None


def test_press_from_the_browser_decodes_its_picture() -> None:
    value = {"image": "data:image/png;base64,iVBORw0K", "drawing": "0" * 36, "again": True}
    assert Press.from_trigger(value) == Press(png=b"\x89PNG\r\n", drawing="0" * 36, again=True)
    assert Press.from_trigger({"image": None, "drawing": "1" * 32}) == Press(None, "1" * 32)


def test_page_state_serves_once_and_keeps_the_result_until_cleared() -> None:
    state = PageState({})
    assert state.next_action(SEVEN, "default") is Action.PREDICT

    state.serve(result(), SEVEN, "default")
    assert state.next_action(SEVEN, "default") is Action.KEEP
    assert state.result is not None and state.result.prediction == 7

    state.clear_slate()
    assert state.result is None
    assert state.next_action(SEVEN, "default") is Action.PREDICT  # forgotten drawing


def test_the_model_input_is_made_once_per_result() -> None:
    state = PageState({})
    made: list[bytes] = []

    def preprocess(png: bytes) -> np.ndarray:
        made.append(png)
        return np.zeros((28, 28), dtype=np.float32)

    state.serve(result(), SEVEN, "default")
    assert state.preview is None
    state.make_preview(preprocess)
    state.make_preview(preprocess)  # a later rerun
    assert made == [SEVEN.png]
    assert state.preview is not None and state.preview.shape == (28, 28)


def test_the_history_read_is_kept_until_something_is_logged() -> None:
    state = PageState({})
    read = (PredictionsPublic(data=[], count=0), object())
    state.history = read
    state.clear_slate()
    state.refuse(Notice("info", "empty"))
    assert state.history is read  # nothing logged: no need to ask again

    state.serve(result(), SEVEN, "default")
    assert state.history is None
    state.history = read
    state.result = result()  # feedback changed the row
    assert state.history is None


def test_page_state_refusal_shows_a_message_until_the_next_result() -> None:
    state = PageState({})
    state.refuse(Notice("info", "empty"))
    assert state.notice == Notice("info", "empty")
    state.serve(result(), SEVEN, "default")
    assert state.notice is None


def test_choosing_a_model_asks_the_slate_again_only_when_a_result_is_shown() -> None:
    state = PageState({})
    state.choose_model()
    assert state.repredict == 0  # nothing on screen to read again

    state.serve(result(model="default"), SEVEN, "default")
    assert not state.is_stale("default")
    state.choose_model()
    assert state.repredict == 1
    assert state.is_stale("lenet5")


def test_session_id_is_made_when_absent_and_kept_in_the_url() -> None:
    params: dict[str, str] = {}
    store: dict[str, object] = {}
    made = PageState(store).session_id(params)
    assert params == {"session": made}
    assert normalise_session_id(made) == made

    params.clear()  # the URL lost it: the session keeps its id
    assert PageState(store).session_id(params) == made
    assert params == {"session": made}


def test_session_id_from_the_url_wins_and_is_normalised() -> None:
    wanted = "6F9619FF-8B86-D011-B42D-00CF4FC964FF"
    params = {"session": wanted}
    assert PageState({}).session_id(params) == "6f9619ff8b86d011b42d00cf4fc964ff"
    assert params["session"] == "6f9619ff8b86d011b42d00cf4fc964ff"


@pytest.mark.parametrize("value", [None, "", "abc", "' OR 1=1 --", "1234"])
def test_malformed_session_ids_are_refused(value: str | None) -> None:
    assert normalise_session_id(value) is None
