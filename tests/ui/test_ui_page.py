"""The page's behaviour in Streamlit's AppTest: the real script, service, database and models."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from drawing import DIGITS, draw_strokes
from page_driver import press_clear, press_predict, texts
from PIL import Image
from streamlit.testing.v1 import AppTest

from digitrec.config import Settings, get_settings
from digitrec.contract import EmptyDrawingError
from digitrec.inference import available_models
from digitrec.service import PredictionService
from digitrec.ui import formatting, sections

STATS_LINE = re.compile(
    r"Total Attempts: (\d+) \| Correct Predictions: (\d+) \| Realized Accuracy: ([^\s(]+)"
)


def predict(at: AppTest, digit: int | None, drawing: str | None = None) -> AppTest:
    """Draw `digit` (None: nothing) and press Predict."""
    return press_predict(at, None if digit is None else draw_strokes(DIGITS[digit]), drawing)


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
    assert row["Prediction"] == str(digit)
    assert row["Actual"] == ""


def test_result_stays_on_screen_across_reruns_until_cleared(app: AppTest) -> None:
    predict(app, 7)
    app.run()  # any later interaction reruns the script
    app.run()
    assert shown_prediction(app) == 7

    press_clear(app)

    assert shown_prediction(app) is None
    assert stats(app)[0] == 1  # clearing forgets the screen, not the history


def test_empty_slate_gets_friendly_message_at_once_and_logs_nothing(app: AppTest) -> None:
    predict(app, None)

    assert not app.exception
    assert formatting.EMPTY_MESSAGE in [i.value for i in app.info]
    assert shown_prediction(app) is None
    assert stats(app)[0] == 0


def test_strokes_without_readable_ink_count_as_empty(app: AppTest) -> None:
    press_predict(app, np.zeros((280, 280), dtype=np.uint8))

    assert formatting.EMPTY_MESSAGE in [i.value for i in app.info]
    assert stats(app)[0] == 0


def test_a_mark_the_service_cannot_read_gets_its_reason(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise EmptyDrawingError("the mark is too small to read")

    monkeypatch.setattr(PredictionService, "predict", refuse)
    predict(app, 1)

    assert "The mark is too small to read: draw one digit" in texts(app)
    assert shown_prediction(app) is None


def test_a_dot_gets_the_services_reason_not_a_digit(app: AppTest) -> None:
    press_predict(app, draw_strokes([[(140, 140)]]))  # one tap: an 18 px dot

    assert shown_prediction(app) is None
    infos = [i.value for i in app.info]
    assert len(infos) == 1 and infos[0].endswith(formatting.DRAW_ADVICE), infos
    assert infos[0] != formatting.EMPTY_MESSAGE  # the reason is the service's own
    assert stats(app)[0] == 0


def test_the_press_carries_its_drawing_so_the_first_click_is_served(app: AppTest) -> None:
    predict(app, 1)  # the drawing comes with the press: nothing to wait for

    assert shown_prediction(app) == 1
    assert stats(app)[0] == 1
    app.run()
    assert shown_prediction(app) == 1  # served once, and it stays
    assert stats(app)[0] == 1


def test_more_strokes_make_a_new_drawing_and_a_new_row(app: AppTest) -> None:
    predict(app, 1, drawing="a" * 32)
    press_predict(app, draw_strokes([*DIGITS[1], [(120, 60), (180, 60)]]), drawing="b" * 32)

    assert stats(app)[0] == 2


def test_pressing_predict_again_on_the_same_drawing_logs_it_once(app: AppTest) -> None:
    drawing = str(uuid.uuid4())
    for _ in range(5):  # five rapid clicks: one drawing, one row
        predict(app, 7, drawing)

    assert shown_prediction(app) == 7
    assert stats(app)[0] == 1


def test_presses_racing_each_other_log_one_row(
    app: AppTest, page_service: Callable[[], PredictionService]
) -> None:
    # Two presses of one drawing that both reach the service (the second before the first
    # has come back): the press's idempotency key makes them one row.
    drawing = str(uuid.uuid4())
    predict(app, 7, drawing)
    press_clear(app)  # the page forgets what it served; the service does not
    predict(app, 7, drawing)

    assert shown_prediction(app) == 7
    assert len(page_service().history(app.query_params["session"]).data) == 1


def test_another_model_reads_the_drawing_again_and_says_so(app: AppTest) -> None:
    drawing = str(uuid.uuid4())
    predict(app, 7, drawing)
    assert "Model default" in texts(app)

    app.sidebar.selectbox(key="model").select("lenet5").run()

    # The old answer is gone, feedback with it, and the slate is asked for its drawing again.
    assert shown_prediction(app) is None
    assert "reading the drawing again with lenet5" in texts(app)
    assert not [b for b in app.button if b.key == "digit-7"]
    (slate,) = app.get("bidi_component")
    assert json.loads(slate.proto.mixed.json or slate.proto.json)["repredict"] == 1

    predict(app, 7, drawing)  # what the slate sends back at once
    assert shown_prediction(app) == 7
    assert "Model lenet5" in texts(app)
    assert stats(app)[0] == 2


def test_another_model_with_an_empty_slate_just_forgets_the_result(app: AppTest) -> None:
    predict(app, 7)
    app.sidebar.selectbox(key="model").select("lenet5").run()

    press_predict(app, None, again=True)  # the slate answers: nothing on it

    assert shown_prediction(app) is None
    assert formatting.EMPTY_MESSAGE not in texts(app)
    assert "The prediction appears here." in texts(app)


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
    press_clear(first)
    predict(first, 0)
    first.button(key="digit-6").click().run()
    session = first.query_params["session"]

    reloaded = make_app(session=session).run()  # a new browser session, same link

    assert reloaded.query_params["session"] == session
    rows = history_rows(reloaded)
    assert [(r["Index"], r["Prediction"], r["Actual"]) for r in rows] == [
        (2, "0", "6"),
        (1, "1", ""),
    ]
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
    assert list(selector.options) == [formatting.model_option(m) for m in shipped]
    assert "lenet5" in shipped
    assert selector.options[shipped.index("lenet5")] == (
        "lenet5 — LeNet-5 (LeCun et al., 1998), ReLU and max-pooling"
    )
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
    options = at.sidebar.selectbox(key="model").options
    assert list(options) == [formatting.model_option(m) for m in available_models()]

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
    # The model service is down, not the database: the history says so, and promises nothing.
    assert [w.value for w in at.warning] == [formatting.HISTORY_SERVICE_DOWN_MESSAGE]

    predict(at, 7)

    assert not at.exception
    assert formatting.SERVICE_DOWN_MESSAGE in [e.value for e in at.error]
    assert shown_prediction(at) is None


def test_compare_reads_the_drawing_with_every_model_and_logs_a_row_each(
    app: AppTest, page_service: Callable[[], PredictionService]
) -> None:
    predict(app, 7)
    assert not app.button(key="compare").disabled

    app.button(key="compare").click().run()

    assert not app.exception
    table = app.dataframe[0].value.to_dict("records")
    models = [row["Model"].split(" v")[0] for row in table]
    assert models == available_models()
    assert all(row["Latency"].endswith(" ms") for row in table)
    assert len(app.get("image")) >= 1  # the model input, shown once above
    session = app.query_params["session"]
    logged = page_service().history(session).data
    assert len(logged) == 1 + len(available_models())
    compared = [p for p in logged if p.request_id == logged[0].request_id]
    assert sorted(p.model for p in compared) == sorted(available_models())

    app.button(key="compare").click().run()  # again: the same rows, nothing new logged
    assert len(page_service().history(session).data) == 1 + len(available_models())
