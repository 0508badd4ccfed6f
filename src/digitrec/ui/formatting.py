"""The words and tables the page shows, as plain functions of the service's answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

from digitrec.contract import StorageUnavailableError
from digitrec.schemas import ComparisonPublic, PredictionPublic, StatsPublic

# Below this calibrated confidence the page names the two likeliest digits.
LOW_CONFIDENCE = 0.6
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# What a phone must show without scrolling sideways comes first; the time last.
HISTORY_COLUMNS = ("Index", "Prediction", "Actual", "Confidence", "Model", "Time")
INVALID_DIGIT_MESSAGE = "Enter a single digit from 0 to 9"
NOT_A_DIGIT_MESSAGE = "That doesn't look like a single digit — draw one digit, large"
NOT_A_DIGIT = "not a digit"  # how the history shows a refusal, or such a label
UNSURE = "unsure"  # a chat model's reply that is neither a digit nor "none"
UNKNOWN = "unknown"  # the confidence of a reader that states none
EMPTY_MESSAGE = "The slate is empty: draw a digit first, then press Predict."
DRAW_ADVICE = "draw one digit, large and centred, then press Predict."
EMPTY_REASON = "nothing is drawn"  # the service's reason for an empty slate
DELAYED_MESSAGE = (
    "Logging is delayed: the database cannot be reached, so this is kept in a local outbox "
    "and written as soon as the database is back."
)
SERVICE_DOWN_MESSAGE = "The model service cannot be reached right now; try again shortly."
FEEDBACK_DOWN_MESSAGE = "Feedback cannot be saved right now: the database cannot be reached."
FEEDBACK_SERVICE_DOWN_MESSAGE = (
    "Feedback cannot be saved right now: the model service cannot be reached."
)
HISTORY_DOWN_MESSAGE = (
    "Previous predictions cannot be shown: the database cannot be reached right now. "
    "New predictions still work and are logged once it is back."
)
HISTORY_SERVICE_DOWN_MESSAGE = (
    "Previous predictions cannot be shown: the model service cannot be reached right now."
)
_UNAVAILABLE = {
    # What failed, the database or the model service, for each thing the page tried.
    "predict": (SERVICE_DOWN_MESSAGE, SERVICE_DOWN_MESSAGE),
    "feedback": (FEEDBACK_DOWN_MESSAGE, FEEDBACK_SERVICE_DOWN_MESSAGE),
    "history": (HISTORY_DOWN_MESSAGE, HISTORY_SERVICE_DOWN_MESSAGE),
}


def unavailable_message(
    error: Exception, attempt: Literal["predict", "feedback", "history"]
) -> str:
    """Which part cannot be reached: the database (either client) or the model service (over
    HTTP, a ConnectionError)."""
    database_down, service_down = _UNAVAILABLE[attempt]
    return database_down if isinstance(error, StorageUnavailableError) else service_down


def empty_message(error: Exception) -> str:
    """What to say when the service finds nothing to read: its own reason, unless the slate is
    simply empty."""
    reason = str(error).strip().rstrip(".")
    if not reason or reason == EMPTY_REASON:
        return EMPTY_MESSAGE
    return f"{reason[0].upper()}{reason[1:]}: {DRAW_ADVICE}"


def percent(fraction: float) -> str:
    """A fraction in [0, 1] as a whole percentage, e.g. ``99%``."""
    return f"{fraction:.0%}"


def prediction_line(result: PredictionPublic) -> str:
    if not result.is_digit:
        return NOT_A_DIGIT_MESSAGE
    return f"Prediction: {result.prediction}"


def confidence_line(result: PredictionPublic) -> str:
    if not result.is_digit and result.digit_probability is not None:
        return (
            f"Chance it is one digit: {percent(result.digit_probability)} · closest digit "
            f"{result.prediction} ({confidence_label(result)})"
        )
    return f"Confidence: {confidence_label(result)}"


def top_two(probabilities: Sequence[float]) -> tuple[int, int]:
    """The two likeliest digits, likeliest first."""
    ranked = sorted(range(len(probabilities)), key=lambda d: probabilities[d], reverse=True)
    return ranked[0], ranked[1]


def uncertainty_note(result: PredictionPublic) -> str | None:
    """A hedge for a low-confidence answer, naming the two likeliest digits."""
    if result.probabilities is None or result.confidence is None or not result.is_digit:
        return None  # no probabilities to hedge with, or no digit to hedge
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


def history_rows(
    predictions: Sequence[PredictionPublic], count: int, zone: tzinfo | None = None
) -> list[dict[str, Any]]:
    """Table rows, newest first; Index numbers attempts from 1 (the oldest); times in `zone`
    (the browser's), else in UTC as logged."""
    return [
        {
            "Index": count - position,
            "Prediction": answer_label(p),
            "Actual": actual_label(p),
            "Confidence": answer_confidence(p),
            "Model": model_label(p),
            "Time": local_time(p.timestamp, zone),
        }
        for position, p in enumerate(predictions)
    ]


def answer_label(result: PredictionPublic) -> str:
    """What the model answered: a digit, "not a digit", or "unsure" (a chat model that gave
    no answer it could be held to)."""
    if not result.is_digit:
        return NOT_A_DIGIT
    return UNSURE if result.prediction is None else str(result.prediction)


def confidence_label(result: PredictionPublic) -> str:
    """The calibrated confidence, or "unknown" for a reader that states none (a chat model)."""
    return UNKNOWN if result.confidence is None else percent(result.confidence)


def answer_confidence(result: PredictionPublic) -> str:
    """How sure the model is of `answer_label`: of its digit, or for a refusal, that the
    drawing is not one digit (the closest digit's confidence would read as "70 % not a digit")."""
    if not result.is_digit and result.digit_probability is not None:
        return percent(1.0 - result.digit_probability)
    return confidence_label(result)


def actual_label(result: PredictionPublic) -> str:
    """The person's label as the history shows it: a digit, "not a digit", or nothing."""
    if result.not_a_digit:
        return NOT_A_DIGIT
    return "" if result.actual is None else str(result.actual)


COMPARISON_COLUMNS = ("Model", "Answer", "Confidence", "One digit", "Latency")


def comparison_rows(comparison: ComparisonPublic) -> list[dict[str, Any]]:
    """One row per model: its answer to the drawing, how sure, how fast."""
    return [
        {
            "Model": model_label(p),
            "Answer": answer_label(p),
            "Confidence": answer_confidence(p),
            "One digit": "" if p.digit_probability is None else percent(p.digit_probability),
            "Latency": f"{p.latency_ms:.1f} ms",
        }
        for p in comparison.predictions
    ]


# One line per model, from its card (models/NAME.md): what the model selector shows.
MODEL_SUMMARIES = {
    "default": "two small batch-norm CNNs trained on drawing-like digits; says 'not a digit'",
    "seed-cnn": "the reference app's two-layer CNN, retrained",
    "lenet5": "LeNet-5 (LeCun et al., 1998), ReLU and max-pooling",
    "vit": "a small Vision Transformer: 4x4 patches, a convolutional stem, 4 attention blocks",
    "capsnet": "Efficient-CapsNet: capsules with self-attention routing",
    "llm": "a vision-capable chat model, when one is configured; it states no confidence",
}


def model_option(name: str) -> str:
    """A model as the selector lists it: its name and one line on what it is."""
    summary = MODEL_SUMMARIES.get(name)
    return f"{name} — {summary}" if summary else name


def local_time(moment: datetime, zone: tzinfo | None) -> str:
    """A logged time (UTC; naive means UTC) as a clock in `zone` shows it; UTC when None."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone or UTC).strftime(TIMESTAMP_FORMAT)


def model_label(result: PredictionPublic) -> str:
    """The model and the registry version that answered: `default v2` (or just `default`)."""
    if result.model_version is None:
        return result.model
    return f"{result.model} v{result.model_version}"


def stats_line(stats: StatsPublic) -> str:
    """The running totals; a prediction nobody reviewed counts as correct (the reference app's
    rule), so the line says how many that is."""
    accuracy = "n/a" if stats.realized_accuracy is None else f"{stats.realized_accuracy:.1%}"
    line = (
        f"Total Attempts: {stats.total} | Correct Predictions: {stats.correct} | "
        f"Realized Accuracy: {accuracy}"
    )
    if stats.no_feedback:
        line += f" ({stats.no_feedback} of {stats.total} not reviewed, counted as correct)"
    return line


def feedback_line(stats: StatsPublic) -> str:
    return (
        f"Confirmed: {stats.confirmed} | Corrected: {stats.corrected} | "
        f"No feedback: {stats.no_feedback}"
    )


def feedback_thanks(result: PredictionPublic) -> str:
    if result.not_a_digit:
        return "Thanks: recorded as not a digit."
    if result.actual == result.prediction and result.is_digit:
        return f"Thanks: {result.actual} confirmed."
    return f"Thanks: recorded {result.actual} as the right answer."
