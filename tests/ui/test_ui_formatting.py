"""The words and table rows the page shows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digitrec.schemas import PredictionPublic, StatsPublic
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
            "Timestamp": "2026-03-04 05:06:07",
            "Prediction": 1,
            "Confidence": "90%",
            "Actual": "7",
            "Model": "default v2",
        },
        {
            "Index": 4,
            "Timestamp": "2026-03-04 05:06:07",
            "Prediction": 0,
            "Confidence": "80%",
            "Actual": "",
            "Model": "default",
        },
    ]
    assert tuple(rows[0]) == formatting.HISTORY_COLUMNS


def test_stats_lines() -> None:
    assert (
        formatting.stats_line(stats())
        == "Total Attempts: 7 | Correct Predictions: 6 | Realized Accuracy: 85.7%"
    )
    assert formatting.feedback_line(stats()) == "Confirmed: 2 | Corrected: 1 | No feedback: 4"
    empty = stats(total=0, correct=0, confirmed=0, corrected=0, no_feedback=0)
    empty = empty.model_copy(update={"realized_accuracy": None})
    assert formatting.stats_line(empty).endswith("Realized Accuracy: n/a")


def test_feedback_thanks_says_whether_it_confirmed_or_corrected() -> None:
    assert formatting.feedback_thanks(prediction(3, 0.9, 8, actual=3)) == "Thanks: 3 confirmed."
    assert (
        formatting.feedback_thanks(prediction(3, 0.9, 8, actual=8))
        == "Thanks: recorded 8 as the right answer."
    )
