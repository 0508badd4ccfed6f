"""The words and table rows the page shows."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from digitrec.contract import EmptyDrawingError, StorageUnavailableError
from digitrec.schemas import ComparisonPublic, PredictionPublic, StatsPublic
from digitrec.ui import formatting


def prediction(
    digit: int,
    confidence: float,
    runner_up: int,
    actual: int | None = None,
    version: int | None = None,
) -> PredictionPublic:
    probabilities = [0.0] * 10
    probabilities[digit] = confidence
    probabilities[runner_up] = 1.0 - confidence
    return PredictionPublic(
        id="b" * 32,
        timestamp=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        session_id="s",
        model="default",
        model_version=version,
        prediction=digit,
        confidence=confidence,
        probabilities=probabilities,
        latency_ms=2.0,
        actual=actual,
    )


def stats(**overrides: object) -> StatsPublic:
    values: dict[str, object] = {
        "total": 7,
        "correct": 6,
        "confirmed": 2,
        "corrected": 1,
        "no_feedback": 4,
        "realized_accuracy": 6 / 7,
        "per_digit_accuracy": dict.fromkeys(range(10)),
        "confusion": [[0] * 10 for _ in range(10)],
    }
    return StatsPublic.model_validate(values | overrides)


def test_prediction_and_confidence_lines_read_like_the_reference_app() -> None:
    shown = prediction(3, 0.994, 8)
    assert formatting.prediction_line(shown) == "Prediction: 3"
    assert formatting.confidence_line(shown) == "Confidence: 99%"


def test_a_confident_answer_has_no_hedge() -> None:
    assert formatting.uncertainty_note(prediction(3, 0.6, 8)) is None


def test_a_low_confidence_answer_names_the_two_likeliest_digits() -> None:
    assert formatting.uncertainty_note(prediction(4, 0.55, 9)) == "Not sure — is it a 4 or a 9?"


@pytest.mark.parametrize(("typed", "digit"), [("0", 0), ("7", 7), (" 9 ", 9)])
def test_parse_digit_accepts_one_digit(typed: str, digit: int) -> None:
    assert formatting.parse_digit(typed) == digit


@pytest.mark.parametrize("typed", ["", " ", "10", "-1", "3.0", "x", "٣", "7a", "½"])
def test_parse_digit_refuses_anything_else(typed: str) -> None:
    assert formatting.parse_digit(typed) is None


def test_history_rows_number_attempts_from_the_oldest_and_leave_actual_blank() -> None:
    newest_first = [prediction(1, 0.9, 7, actual=7, version=2), prediction(0, 0.8, 6)]
    rows = formatting.history_rows(newest_first, count=5)
    assert rows == [
        {
            "Index": 5,
            "Prediction": "1",
            "Actual": "7",
            "Confidence": "90%",
            "Model": "default v2",
            "Time": "2026-03-04 05:06:07",
        },
        {
            "Index": 4,
            "Prediction": "0",
            "Actual": "",
            "Confidence": "80%",
            "Model": "default",
            "Time": "2026-03-04 05:06:07",
        },
    ]
    assert tuple(rows[0]) == formatting.HISTORY_COLUMNS


def test_a_refusal_and_a_not_a_digit_label_read_as_not_a_digit() -> None:
    refused = prediction(4, 0.7, 1).model_copy(
        update={"is_digit": False, "digit_probability": 0.03, "not_a_digit": True}
    )

    (row,) = formatting.history_rows([refused], count=1)

    assert (row["Prediction"], row["Actual"]) == ("not a digit", "not a digit")
    assert row["Confidence"] == "97%"  # that it is not a digit, not the closest digit's 70 %
    comparison = ComparisonPublic(request_id="r", session_id="s", predictions=[refused])
    (compared,) = formatting.comparison_rows(comparison)
    assert (compared["Answer"], compared["Confidence"], compared["One digit"]) == (
        "not a digit",
        "97%",
        "3%",
    )
    assert formatting.prediction_line(refused) == formatting.NOT_A_DIGIT_MESSAGE
    assert formatting.confidence_line(refused) == (
        "Chance it is one digit: 3% · closest digit 4 (70%)"
    )
    assert formatting.uncertainty_note(refused) is None
    assert formatting.feedback_thanks(refused) == "Thanks: recorded as not a digit."


def test_a_digit_label_on_a_refusal_is_a_correction() -> None:
    refused = prediction(4, 0.7, 1, actual=4).model_copy(update={"is_digit": False})

    assert formatting.feedback_thanks(refused) == "Thanks: recorded 4 as the right answer."


@pytest.mark.parametrize(
    ("digit", "is_digit", "answer"),
    [(7, True, "7"), (None, False, "not a digit"), (None, True, "unsure")],
)
def test_a_chat_models_answer_shows_its_confidence_as_unknown(
    digit: int | None, is_digit: bool, answer: str
) -> None:
    chat = prediction(7, 0.9, 1).model_copy(
        update={
            "model": "llm",
            "prediction": digit,
            "confidence": None,
            "probabilities": None,
            "is_digit": is_digit,
        }
    )
    comparison = ComparisonPublic(request_id="r", session_id="s", predictions=[chat])

    (history,) = formatting.history_rows([chat], count=1)
    (compared,) = formatting.comparison_rows(comparison)

    assert (history["Prediction"], history["Confidence"]) == (answer, "unknown")
    assert (compared["Answer"], compared["Confidence"]) == (answer, "unknown")
    assert formatting.uncertainty_note(chat) is None


def test_history_times_are_shown_in_the_browsers_time_zone() -> None:
    (row,) = formatting.history_rows([prediction(1, 0.9, 7)], count=1, zone=ZoneInfo("Asia/Tokyo"))
    assert row["Time"] == "2026-03-04 14:06:07"  # 05:06:07 UTC is 14:06:07 in Tokyo


def test_stats_lines_say_how_many_count_as_correct_unreviewed() -> None:
    assert formatting.stats_line(stats()) == (
        "Total Attempts: 7 | Correct Predictions: 6 | Realized Accuracy: 85.7% "
        "(4 of 7 not reviewed, counted as correct)"
    )
    reviewed = stats(confirmed=5, corrected=2, no_feedback=0, correct=5)
    assert formatting.stats_line(reviewed).endswith(
        "Correct Predictions: 5 | Realized Accuracy: 85.7%"
    )
    assert formatting.feedback_line(stats()) == "Confirmed: 2 | Corrected: 1 | No feedback: 4"
    empty = stats(total=0, correct=0, confirmed=0, corrected=0, no_feedback=0)
    empty = empty.model_copy(update={"realized_accuracy": None})
    assert formatting.stats_line(empty).endswith("Realized Accuracy: n/a")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (StorageUnavailableError("down"), formatting.HISTORY_DOWN_MESSAGE),
        (ConnectionError("refused"), formatting.HISTORY_SERVICE_DOWN_MESSAGE),
    ],
)
def test_unavailable_message_names_what_cannot_be_reached(error: Exception, shown: str) -> None:
    assert formatting.unavailable_message(error, "history") == shown
    assert "model service" in formatting.unavailable_message(ConnectionError(), "feedback")


def test_empty_message_gives_the_services_reason_for_a_mark_it_cannot_read() -> None:
    assert formatting.empty_message(EmptyDrawingError("nothing is drawn")) == (
        formatting.EMPTY_MESSAGE
    )
    assert formatting.empty_message(EmptyDrawingError("the mark is too small to read.")) == (
        "The mark is too small to read: draw one digit, large and centred, then press Predict."
    )


def test_feedback_thanks_says_whether_it_confirmed_or_corrected() -> None:
    assert formatting.feedback_thanks(prediction(3, 0.9, 8, actual=3)) == "Thanks: 3 confirmed."
    assert (
        formatting.feedback_thanks(prediction(3, 0.9, 8, actual=8))
        == "Thanks: recorded 8 as the right answer."
    )
