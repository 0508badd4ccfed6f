"""The page's behaviour in Streamlit's AppTest: the real script, service, database and models."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from drawing import DIGITS, draw_strokes
from page_driver import draw_on_slate, texts
from PIL import Image
from streamlit.testing.v1 import AppTest

from digitrec.config import Settings, get_settings
from digitrec.inference import available_models
from digitrec.service import PredictionService
from digitrec.ui import formatting, sections
from digitrec.ui.state import PENDING_WAIT_S

STATS_LINE = re.compile(
    r"Total Attempts: (\d+) \| Correct Predictions: (\d+) \| Realized Accuracy: (\S+)"
)


def predict(at: AppTest, digit: int | None) -> AppTest:
    """Draw `digit` (None: nothing) and press Predict."""
    draw_on_slate(at, None if digit is None else draw_strokes(DIGITS[digit]))
    return at.button(key="predict").click().run()


def shown_prediction(at: AppTest) -> int | None:
    found = [s.value for s in at.subheader if str(s.value).startswith("Prediction: ")]
    return int(found[0].removeprefix("Prediction: ")) if found else None


def stats(at: AppTest) -> tuple[int, int, str]:
    match = STATS_LINE.search(texts(at))
    assert match, texts(at)
    return int(match[1]), int(match[2]), match[3]


def history_rows(at: AppTest) -> list[dict[str, object]]:
    if not at.dataframe:
        return []
    return at.dataframe[0].value.to_dict("records")


def test_page_starts_with_title_new_session_and_empty_history(app: AppTest) -> None:
    assert not app.exception
    assert app.title[0].value == "Handwritten Digit Recognition"
    session = app.query_params["session"]
    assert uuid.UUID(session).hex == session
    assert stats(app) == (0, 0, "n/a")
    assert "No predictions in this session yet." in texts(app)
    assert shown_prediction(app) is None


@pytest.mark.parametrize("digit", [1, 7, 0])
def test_predict_shows_digit_confidence_chart_and_model_input(app: AppTest, digit: int) -> None:
    predict(app, digit)

    assert not app.exception
    assert shown_prediction(app) == digit
    assert re.search(r"Confidence: \d{1,3}%", texts(app))
    assert len(app.get("vega_lite_chart")) == 1  # the ten probabilities
    assert len(app.get("image")) >= 1  # the 28x28 image the model saw
    assert stats(app) == (1, 1, "100.0%")
    (row,) = history_rows(app)
    assert row["Index"] == 1
    assert row["Prediction"] == digit
    assert row["Actual"] == ""


def test_result_stays_on_screen_across_reruns_until_cleared(app: AppTest) -> None:
    predict(app, 7)
    app.run()  # any later interaction reruns the script
    app.run()
    assert shown_prediction(app) == 7

    app.button(key="clear").click().run()

    assert shown_prediction(app) is None
    assert stats(app)[0] == 1  # clearing forgets the screen, not the history


def test_empty_slate_gets_friendly_message_and_logs_nothing(app: AppTest) -> None:
    predict(app, None)
    assert "Reading the slate…" in texts(app)  # the drawing may still be on its way
    time.sleep(PENDING_WAIT_S)
    app.run()  # what the page's timer does once the wait is over

    assert not app.exception
    assert formatting.EMPTY_MESSAGE in [i.value for i in app.info]
    assert shown_prediction(app) is None
    assert stats(app)[0] == 0


def test_strokes_without_readable_ink_count_as_empty(app: AppTest) -> None:
    draw_on_slate(app, np.zeros((280, 280), dtype=np.uint8), strokes=1)
    app.button(key="predict").click().run()

    assert formatting.EMPTY_MESSAGE in [i.value for i in app.info]
    assert stats(app)[0] == 0


def test_fast_click_is_served_when_the_drawing_arrives(app: AppTest) -> None:
    # The click's rerun still holds the empty slate: the canvas sends 200 ms after mouse-up.
    app.button(key="predict").click().run()
    assert "Reading the slate…" in texts(app)
    assert formatting.EMPTY_MESSAGE not in texts(app)

    draw_on_slate(app, draw_strokes(DIGITS[1]))
    app.run()  # the rerun in which the drawing arrives

    assert shown_prediction(app) == 1
    assert stats(app)[0] == 1
    app.run()
    assert shown_prediction(app) == 1  # served once, and it stays


def test_fast_click_after_more_strokes_predicts_the_new_drawing(app: AppTest) -> None:
    predict(app, 1)
    # Strokes added, Predict clicked before they reach Python: the slate still holds the 1.
    app.button(key="predict").click().run()
    assert shown_prediction(app) == 1
    assert "Reading the slate…" in texts(app)

    draw_on_slate(app, draw_strokes(DIGITS[1] + [[(120, 60), (180, 60)]]), strokes=2)
    app.run()

    assert stats(app)[0] == 2


def test_pressing_predict_again_on_the_same_drawing_logs_it_once(app: AppTest) -> None:
    predict(app, 7)
    app.button(key="predict").click().run()  # a double click
    assert "Reading the slate…" in texts(app)
    time.sleep(PENDING_WAIT_S)
    app.run()

    assert shown_prediction(app) == 7
    assert "Reading the slate…" not in texts(app)
    assert stats(app)[0] == 1


def test_another_model_reads_the_same_drawing_at_once(app: AppTest) -> None:
    predict(app, 7)
    app.sidebar.selectbox(key="model").select("lenet5").run()
    app.button(key="predict").click().run()

    assert shown_prediction(app) == 7
    assert "Model lenet5" in texts(app)
    assert stats(app)[0] == 2


def test_typed_feedback_is_recorded_and_can_be_changed(
    db_app: AppTest, page_service: Callable[[], PredictionService]
) -> None:
    predict(db_app, 7)

    db_app.text_input(key="feedback_text").input("2")
    db_app.button(key="submit_feedback").click().run()
    assert "Thanks: recorded 2 as the right answer." in [s.value for s in db_app.success]
    assert history_rows(db_app)[0]["Actual"] == "2"
    assert stats(db_app) == (1, 0, "0.0%")

    db_app.button(key="digit-7").click().run()  # one click changes it
    assert "Thanks: 7 confirmed." in [s.value for s in db_app.success]
    assert history_rows(db_app)[0]["Actual"] == "7"
    assert stats(db_app) == (1, 1, "100.0%")
    assert "Confirmed: 1 | Corrected: 0 | No feedback: 0" in texts(db_app)

    session = db_app.query_params["session"]
    (logged,) = page_service().history(session).data
    assert (logged.prediction, logged.actual) == (7, 7)


@pytest.mark.parametrize("typed", ["12", "a", "", " ", "-1", "3.5", "٣"])
def test_feedback_other_than_one_digit_gets_a_clear_message(app: AppTest, typed: str) -> None:
    predict(app, 1)

    app.text_input(key="feedback_text").input(typed)
    app.button(key="submit_feedback").click().run()

    assert formatting.INVALID_DIGIT_MESSAGE in [e.value for e in app.error]
    assert history_rows(app)[0]["Actual"] == ""


def test_history_is_restored_from_the_session_in_the_url(
    database_url: str,
    page_settings: Callable[[str], Settings],
    make_app: Callable[..., AppTest],
) -> None:
    page_settings(database_url)
    first = make_app().run()
    predict(first, 1)
    first.button(key="clear").click().run()
    predict(first, 0)
    first.button(key="digit-6").click().run()
    session = first.query_params["session"]

    reloaded = make_app(session=session).run()  # a new browser session, same link

    assert reloaded.query_params["session"] == session
    rows = history_rows(reloaded)
    assert [(r["Index"], r["Prediction"], r["Actual"]) for r in rows] == [(2, 0, "6"), (1, 1, "")]
    assert stats(reloaded) == (2, 1, "50.0%")
    assert "Confirmed: 0 | Corrected: 1 | No feedback: 1" in texts(reloaded)

    stranger = make_app(session=uuid.uuid4().hex).run()
    assert history_rows(stranger) == []
    assert stats(stranger)[0] == 0


def test_malformed_session_in_url_is_replaced(make_app: Callable[..., AppTest]) -> None:
    at = make_app(session="not a session").run()
    assert uuid.UUID(at.query_params["session"]).hex == at.query_params["session"]


def test_model_selector_offers_the_shipped_models_and_logs_the_choice(
    app: AppTest, page_service: Callable[[], PredictionService]
) -> None:
    selector = app.sidebar.selectbox(key="model")
    shipped = available_models()
    assert list(selector.options) == shipped
    assert "lenet5" in shipped
    assert selector.value == ("default" if "default" in shipped else shipped[0])

    selector.select("lenet5").run()
    predict(app, 7)

    assert shown_prediction(app) == 7
    assert "Model lenet5" in texts(app)
    (logged,) = page_service().history(app.query_params["session"]).data
    assert logged.model == "lenet5"


def test_database_down_still_predicts_and_warns_instead_of_history(
    page_settings: Callable[[str], Settings], make_app: Callable[..., AppTest]
) -> None:
    # Nothing listens on port 9: every connection is refused at once.
    page_settings("postgresql+psycopg://digitrec:secret@127.0.0.1:9/digitrec")
    at = make_app().run()
    assert not at.exception
    assert formatting.HISTORY_DOWN_MESSAGE in [w.value for w in at.warning]

    predict(at, 1)

    assert not at.exception
    assert shown_prediction(at) == 1
    warnings = [w.value for w in at.warning]
    assert formatting.DELAYED_MESSAGE in warnings
    assert formatting.HISTORY_DOWN_MESSAGE in warnings


def test_example_sheet_is_shown_or_a_note_when_missing(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.png"
    monkeypatch.setattr(sections, "examples_path", lambda: missing)
    app.run()
    assert any("digitrec examples" in i.value for i in app.info)

    sheet = tmp_path / "examples.png"
    Image.new("L", (60, 30), 0).save(sheet)
    monkeypatch.setattr(sections, "examples_path", lambda: sheet)
    app.run()
    assert not any("digitrec examples" in i.value for i in app.info)
    assert len(app.get("image")) >= 1


def test_page_talks_to_the_model_service_when_an_api_url_is_set(
    api_url: str,
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., AppTest],
    page_service: Callable[[], PredictionService],
) -> None:
    monkeypatch.setenv("DIGITREC_API_URL", api_url)
    get_settings.cache_clear()
    at = make_app().run()
    assert list(at.sidebar.selectbox(key="model").options) == available_models()

    predict(at, 7)
    at.button(key="digit-1").click().run()

    assert not at.exception
    assert shown_prediction(at) == 7
    assert history_rows(at)[0]["Actual"] == "1"
    (logged,) = page_service().history(at.query_params["session"]).data
    assert (logged.prediction, logged.actual) == (7, 1)


def test_unreachable_model_service_gets_a_message_not_a_stack_trace(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., AppTest]
) -> None:
    monkeypatch.setenv("DIGITREC_API_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    at = make_app().run()
    assert formatting.HISTORY_DOWN_MESSAGE in [w.value for w in at.warning]

    predict(at, 7)

    assert not at.exception
    assert formatting.SERVICE_DOWN_MESSAGE in [e.value for e in at.error]
    assert shown_prediction(at) is None
