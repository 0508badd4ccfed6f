"""The pages' plots, as Altair (Vega-Lite) charts built from the service's answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt

from digitrec.schemas import DigitAccuracyPublic, PeriodAccuracyPublic, PromotionPublic

DIGIT_LABELS = [str(d) for d in range(10)]
CHART_HEIGHT_PX = 280
PERCENT = alt.Axis(format="%")
# Times in UTC, as the history table shows them.
UTC_SCALE = alt.Scale(type="utc")
HOUR_FORMAT, DAY_FORMAT = "%d %b %H:%M", "%d %b %Y"  # axis labels
PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}  # of the accuracy over time
EMPTY_CELL_COLOUR = "#f0f2f6"  # Streamlit's light grey
# Axis text on the white page: #31333F is Streamlit's body text, 12.6:1 (the theme's default
# axis grey is below the 4.5:1 that WCAG asks of text).
AXIS_TEXT_COLOUR = "#31333F"
PROBABILITY_CHART_HEIGHT_PX = 150


def probabilities(values: Sequence[float]) -> dict[str, Any]:
    """The model's probability for each digit, on an axis fixed at 0 to 1, as a Vega-Lite spec.

    A plain spec rather than an Altair chart: it is drawn on every prediction, and building and
    validating an Altair chart costs tens of milliseconds of the page's reply.
    """
    axis_text = {"labelColor": AXIS_TEXT_COLOUR, "titleColor": AXIS_TEXT_COLOUR}
    return {
        "height": PROBABILITY_CHART_HEIGHT_PX,
        "data": {"values": [{"digit": str(d), "probability": p} for d, p in enumerate(values)]},
        "mark": {"type": "bar"},
        "encoding": {
            "x": {
                "field": "digit",
                "type": "ordinal",
                "title": "Digit",
                "axis": {"labelAngle": 0, **axis_text},
            },
            "y": {
                "field": "probability",
                "type": "quantitative",
                "title": "Probability",
                "scale": {"domain": [0, 1]},
                "axis": {"format": "%", "tickCount": 5, **axis_text},
            },
            "tooltip": [
                {"field": "digit", "type": "ordinal", "title": "Digit"},
                {"field": "probability", "type": "quantitative", "format": ".1%"},
            ],
        },
    }


def per_digit_accuracy(per_digit: Sequence[DigitAccuracyPublic]) -> alt.LayerChart:
    """A bar per digit drawn: how often the model was right about it, with "right/labelled"
    over it (so a 0% bar still shows); no bar for a digit nobody labelled."""
    values = [
        d.model_dump() | {"digit": str(d.digit), "tally": f"{d.correct}/{d.labelled}"}
        for d in per_digit
        if d.labelled
    ]
    base = alt.Chart(alt.Data(values=values), height=CHART_HEIGHT_PX).encode(
        x=alt.X("digit:O", title="Digit drawn", scale=alt.Scale(domain=DIGIT_LABELS)),
        y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1]), axis=PERCENT),
        tooltip=[
            alt.Tooltip("digit:O", title="Digit drawn"),
            alt.Tooltip("accuracy:Q", title="Accuracy", format=".0%"),
            alt.Tooltip("correct:Q", title="Right"),
            alt.Tooltip("labelled:Q", title="Labelled"),
        ],
    )
    bars = base.mark_bar()
    tallies = base.mark_text(baseline="bottom", dy=-3, fontSize=10).encode(text="tally:N")
    return bars + tallies


def confusion_heatmap(confusion: Sequence[Sequence[int]]) -> alt.LayerChart:
    """Digit drawn (rows) against digit predicted (columns), shaded by count, counts written."""
    values = [
        {"actual": str(actual), "predicted": str(predicted), "rows": rows}
        for actual, row in enumerate(confusion)
        for predicted, rows in enumerate(row)
    ]
    busiest = max((max(row) for row in confusion), default=0)
    base = alt.Chart(alt.Data(values=values), height=CHART_HEIGHT_PX).encode(
        x=alt.X("predicted:O", title="Predicted", scale=alt.Scale(domain=DIGIT_LABELS)),
        y=alt.Y("actual:O", title="Digit drawn", scale=alt.Scale(domain=DIGIT_LABELS)),
    )
    shade = alt.Color("rows:Q", title="Drawings", scale=alt.Scale(scheme="blues"), legend=None)
    cells = base.mark_rect().encode(
        # Empty cells stay neutral, so the few that hold drawings stand out.
        color=alt.condition("datum.rows > 0", shade, alt.value(EMPTY_CELL_COLOUR)),
        tooltip=[
            alt.Tooltip("actual:O", title="Digit drawn"),
            alt.Tooltip("predicted:O", title="Predicted"),
            alt.Tooltip("rows:Q", title="Drawings"),
        ],
    )
    counts = base.mark_text(fontSize=11).encode(
        text=alt.condition("datum.rows > 0", alt.Text("rows:Q"), alt.value("")),
        # Light text on the darker half of the scale, so every count stays readable.
        color=alt.condition(f"datum.rows > {busiest / 2}", alt.value("white"), alt.value("black")),
    )
    return cells + counts


def accuracy_over_time(
    points: Sequence[PeriodAccuracyPublic], promotions: Sequence[PromotionPublic], period: str
) -> alt.LayerChart:
    """Each model's accuracy per hour or day, with a dashed rule at each change of champion."""
    # Formatted in UTC through the utc scale: Streamlit's Vega (its CSP-safe expression
    # interpreter) ignores a `formatType` of "utc" and falls back to its own labels.
    time_axis = alt.Axis(format=DAY_FORMAT if period == "day" else HOUR_FORMAT)
    lines = _accuracy_lines(points, period, time_axis)
    return alt.LayerChart(layer=[lines, _promotion_rules(promotions, time_axis)])


def _accuracy_lines(
    points: Sequence[PeriodAccuracyPublic], period: str, time_axis: alt.Axis
) -> alt.Chart:
    # Each point sits at the middle of the period it sums up, so that a promotion made during
    # that hour (or day) is drawn beside it, not after it.
    length = PERIODS[period]
    values = [
        {
            "middle": (p.start + length / 2).isoformat(),
            "when": _period_text(p.start, period),
            "model": p.model,
            "accuracy": p.accuracy,
            "n": p.labelled,
        }
        for p in points
    ]
    return (
        alt.Chart(alt.Data(values=values), height=CHART_HEIGHT_PX)
        .mark_line(point=alt.OverlayMarkDef(size=60))
        .encode(
            x=alt.X(
                "middle:T",
                title=f"{period.capitalize()} (UTC)",
                scale=UTC_SCALE,
                axis=time_axis,
            ),
            y=alt.Y("accuracy:Q", title="Accuracy", scale=alt.Scale(domain=[0, 1]), axis=PERCENT),
            color=alt.Color("model:N", title="Model"),
            tooltip=[
                alt.Tooltip("when:N", title=f"{period.capitalize()} (UTC)"),
                alt.Tooltip("model:N", title="Model"),
                alt.Tooltip("accuracy:Q", title="Accuracy", format=".0%"),
                alt.Tooltip("n:Q", title="Labelled"),
            ],
        )
    )


def _promotion_rules(promotions: Sequence[PromotionPublic], time_axis: alt.Axis) -> alt.Chart:
    marks = [
        {
            "at": p.at.isoformat(),
            "when": _utc_text(p.at),
            "change": f"{p.model} v{p.version} {_change(p.status)}",
            "by": p.by,
            "reason": p.reason,
        }
        for p in promotions
    ]
    return (
        alt.Chart(alt.Data(values=marks))
        .mark_rule(strokeDash=[4, 4], color="gray", strokeWidth=2)
        .encode(
            x=alt.X("at:T", scale=UTC_SCALE, axis=time_axis),  # the layers share one axis
            tooltip=[
                alt.Tooltip("when:N", title="When (UTC)"),
                alt.Tooltip("change:N", title="Registry"),
                alt.Tooltip("by:N", title="By"),
                alt.Tooltip("reason:N", title="Why"),
            ],
        )
    )


def _change(status: str) -> str:
    return "promoted" if status == "champion" else "retired (replaced)"


def _period_text(start: datetime, period: str) -> str:
    """The period a point sums up, in UTC: "2026-03-01 10:00–11:00", or the day."""
    if period == "day":
        return start.astimezone(UTC).strftime("%Y-%m-%d")
    return f"{_utc_text(start)}–{(start + PERIODS[period]).astimezone(UTC):%H:%M}"


def _utc_text(moment: datetime) -> str:
    """A timestamp for a tooltip, in UTC to the minute (as the history table writes them)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
