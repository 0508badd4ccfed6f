"""When a Predict click is served, and what the page keeps between reruns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digitrec.schemas import PredictionPublic
from digitrec.ui.state import (
    PENDING_WAIT_S,
    Action,
    Notice,
    PageState,
    PendingPredict,
    Slate,
    decide,
    normalise_session_id,
    request_key,
)

EMPTY = Slate(png=None, strokes=0)
DRAWN = Slate(png=b"png of a 7", strokes=1)
MORE = Slate(png=b"png of a 7 with a bar", strokes=2)
CLICK = PendingPredict(clicked_at=100.0)
SOON = 100.0 + PENDING_WAIT_S / 2
LATER = 100.0 + PENDING_WAIT_S


def result(prediction: int = 7) -> PredictionPublic:
    return PredictionPublic(
        id="a" * 32,
        timestamp=datetime.now(UTC),
        session_id="s",
        model="default",
        prediction=prediction,
        confidence=0.9,
        probabilities=[0.1 / 9] * 7 + [0.9] + [0.1 / 9] * 2,
        latency_ms=1.0,
    )


def key(slate: Slate, model: str = "default") -> str | None:
    return request_key(slate, model)


def test_decide_without_a_click_does_nothing() -> None:
    assert decide(None, key(DRAWN), None, SOON) is Action.NONE


def test_decide_serves_a_new_drawing_at_once() -> None:
    assert decide(CLICK, key(DRAWN), None, 100.0) is Action.PREDICT
    assert decide(CLICK, key(MORE), key(DRAWN), 100.0) is Action.PREDICT


def test_decide_serves_the_same_drawing_at_once_for_another_model() -> None:
    assert decide(CLICK, key(DRAWN, "lenet5"), key(DRAWN), 100.0) is Action.PREDICT


@pytest.mark.parametrize("slate", [EMPTY, Slate(png=b"blank", strokes=0), Slate(None, 1)])
def test_decide_waits_for_a_drawing_then_calls_the_slate_empty(slate: Slate) -> None:
    assert key(slate) is None
    assert decide(CLICK, key(slate), None, SOON) is Action.WAIT
    assert decide(CLICK, key(slate), None, LATER) is Action.EMPTY


def test_decide_waits_for_strokes_after_a_served_drawing_then_keeps_the_result() -> None:
    served = key(DRAWN)
    assert decide(CLICK, key(DRAWN), served, SOON) is Action.WAIT
    assert decide(CLICK, key(MORE), served, SOON) is Action.PREDICT  # the new strokes arrived
    # None came (a double click, say): the result on screen answers it; nothing is logged again.
    assert decide(CLICK, key(DRAWN), served, LATER) is Action.KEEP


def test_slate_fingerprint_follows_the_image_and_ignores_blank_slates() -> None:
    assert DRAWN.fingerprint == Slate(png=b"png of a 7", strokes=3).fingerprint
    assert DRAWN.fingerprint != MORE.fingerprint
    assert EMPTY.fingerprint is None
    assert Slate.from_canvas({"objects": []}, b"blank").fingerprint is None
    assert Slate.from_canvas(None, None) == EMPTY
    assert Slate.from_canvas({"objects": [{}, {}]}, b"x").strokes == 2


def test_page_state_serves_once_and_keeps_the_result_until_cleared() -> None:
    store: dict[str, object] = {}
    state = PageState(store)
    first_key = state.canvas_key
    state.request_predict(now=100.0)
    assert state.next_action(DRAWN, "default", 100.0) is Action.PREDICT

    state.serve(result(), None, DRAWN, "default")
    assert state.pending is None
    assert state.next_action(DRAWN, "default", SOON) is Action.NONE
    assert state.result == result().model_copy(update={"timestamp": state.result.timestamp})

    state.clear_slate()
    assert state.canvas_key != first_key  # a new key remounts an empty canvas
    assert state.result is None
    state.request_predict(now=100.0)
    assert state.next_action(DRAWN, "default", 100.0) is Action.PREDICT  # forgotten drawing


def test_page_state_refusal_closes_the_request_with_a_message() -> None:
    state = PageState({})
    state.request_predict(now=100.0)
    state.refuse(Notice("info", "empty"))
    assert state.pending is None
    assert state.notice == Notice("info", "empty")
    assert state.wait_over(now=100.0)


def test_wait_is_over_after_the_wait_time() -> None:
    state = PageState({})
    state.request_predict(now=100.0)
    assert not state.wait_over(SOON)
    assert state.wait_over(LATER)


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
