"""The words and tables the page shows, as plain functions of the service's answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from digitrec.schemas import PredictionPublic, StatsPublic

# Below this calibrated confidence the page names the two likeliest digits.
LOW_CONFIDENCE = 0.6
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
HISTORY_COLUMNS = ("Index", "Timestamp", "Prediction", "Confidence", "Actual", "Model")
INVALID_DIGIT_MESSAGE = "Enter a single digit from 0 to 9"
EMPTY_MESSAGE = "The slate is empty: draw a digit first, then press Predict."
DELAYED_MESSAGE = (
    "Logging is delayed: the database cannot be reached, so this is kept in a local outbox "
    "and written as soon as the database is back."
)
SERVICE_DOWN_MESSAGE = "The model service cannot be reached right now; try again shortly."
FEEDBACK_DOWN_MESSAGE = "Feedback cannot be saved right now: the database cannot be reached."
HISTORY_DOWN_MESSAGE = (
    "Previous predictions cannot be shown: the database cannot be reached right now. "
    "New predictions still work and are logged once it is back."
)


def percent(fraction: float) -> str:
    """A fraction in [0, 1] as a whole percentage, e.g. ``99%``."""
    return f"{fraction:.0%}"


def prediction_line(result: PredictionPublic) -> str:
    return f"Prediction: {result.prediction}"


def confidence_line(result: PredictionPublic) -> str:
    return f"Confidence: {percent(result.confidence)}"


def top_two(probabilities: Sequence[float]) -> tuple[int, int]:
    """The two likeliest digits, likeliest first."""
    ranked = sorted(range(len(probabilities)), key=lambda d: probabilities[d], reverse=True)
    return ranked[0], ranked[1]


def uncertainty_note(result: PredictionPublic) -> str | None:
    """A hedge for a low-confidence answer, naming the two likeliest digits."""
    if result.confidence >= LOW_CONFIDENCE:
        return None
    first, second = top_two(result.probabilities)
    return f"Not sure — is it a {first} or a {second}?"


def parse_digit(text: str) -> int | None:
    """The digit typed by the person, or None for anything but a single digit 0 to 9."""
    stripped = text.strip()
    if len(stripped) != 1 or stripped not in "0123456789":
        return None
    return int(stripped)


def history_rows(predictions: Sequence[PredictionPublic], count: int) -> list[dict[str, Any]]:
    """Table rows, newest first; Index numbers attempts from 1 (the oldest)."""
    return [
        {
            "Index": count - position,
            "Timestamp": p.timestamp.strftime(TIMESTAMP_FORMAT),
            "Prediction": p.prediction,
            "Confidence": percent(p.confidence),
            "Actual": "" if p.actual is None else str(p.actual),
            "Model": model_label(p),
        }
        for position, p in enumerate(predictions)
    ]


def model_label(result: PredictionPublic) -> str:
    """The model and the registry version that answered: `default v2` (or just `default`)."""
    if result.model_version is None:
        return result.model
    return f"{result.model} v{result.model_version}"


def stats_line(stats: StatsPublic) -> str:
    accuracy = "n/a" if stats.realized_accuracy is None else f"{stats.realized_accuracy:.1%}"
    return (
        f"Total Attempts: {stats.total} | Correct Predictions: {stats.correct} | "
        f"Realized Accuracy: {accuracy}"
    )


def feedback_line(stats: StatsPublic) -> str:
    return (
        f"Confirmed: {stats.confirmed} | Corrected: {stats.corrected} | "
        f"No feedback: {stats.no_feedback}"
    )


def feedback_thanks(result: PredictionPublic) -> str:
    if result.actual == result.prediction:
        return f"Thanks: {result.actual} confirmed."
    return f"Thanks: recorded {result.actual} as the right answer."
