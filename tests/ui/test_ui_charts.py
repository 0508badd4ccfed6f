"""The Insights plots as Vega-Lite specs: what each draws from the service's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from digitrec.schemas import DigitAccuracyPublic, PeriodAccuracyPublic, PromotionPublic
from digitrec.ui import charts
from digitrec.ui.insights_page import gate_line

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("layer", [spec])


def _values(layer: dict[str, Any]) -> list[dict[str, Any]]:
    return layer["data"]["values"]


def test_per_digit_bars_skip_unlabelled_digits_and_say_right_over_labelled() -> None:
    per_digit = [
        DigitAccuracyPublic(digit=d, labelled=n, correct=k, accuracy=k / n if n else None)
        for d, (n, k) in enumerate([(2, 1), (0, 0), (3, 0)] + [(0, 0)] * 7)
    ]
    spec = charts.per_digit_accuracy(per_digit).to_dict()
    bars, tallies = _layers(spec)
    rows = _values(spec)  # the layers share the chart's data
    assert [(r["digit"], r["tally"]) for r in rows] == [("0", "1/2"), ("2", "0/3")]
    assert bars["mark"]["type"] == "bar" and tallies["mark"]["type"] == "text"


def test_confusion_heatmap_has_a_cell_per_pair_and_writes_nonzero_counts() -> None:
    confusion = [[0] * 10 for _ in range(10)]
    confusion[3][8] = 4
    spec = charts.confusion_heatmap(confusion).to_dict()
    cells = _values(spec)
    assert len(cells) == 100
    assert {"actual": "3", "predicted": "8", "rows": 4} in cells
    assert {layer["mark"]["type"] for layer in _layers(spec)} == {"rect", "text"}


def test_accuracy_over_time_draws_a_rule_per_promotion_on_a_utc_axis() -> None:
    points = [
        PeriodAccuracyPublic(start=T0, model="default", labelled=4, correct=3, accuracy=0.75),
        PeriodAccuracyPublic(
            start=T0 + timedelta(hours=1), model="default", labelled=2, correct=2, accuracy=1.0
        ),
    ]
    promotion = PromotionPublic(
        at=T0 + timedelta(minutes=30),
        model="default",
        version=2,
        status="champion",
        by="learner",
        reason="every gate held",
    )
    lines, rules = _layers(charts.accuracy_over_time(points, [promotion], "hour").to_dict())
    assert [v["when"] for v in _values(lines)] == [
        "2026-03-01 10:00–11:00",
        "2026-03-01 11:00–12:00",
    ]
    # Each point at the middle of its hour: the promotion at 10:30 is drawn beside the first.
    assert _values(lines)[0]["middle"] == promotion.at.isoformat()
    assert lines["encoding"]["x"]["field"] == "middle"
    assert lines["encoding"]["x"]["scale"] == {"type": "utc"}
    (mark,) = _values(rules)
    assert (mark["change"], mark["reason"]) == ("default v2 promoted", "every gate held")
    assert rules["mark"]["type"] == "rule"


def test_a_days_accuracy_is_drawn_at_noon_and_named_by_its_date() -> None:
    day = PeriodAccuracyPublic(start=T0, model="default", labelled=1, correct=1, accuracy=1.0)

    lines, _ = _layers(charts.accuracy_over_time([day], [], "day").to_dict())

    (value,) = _values(lines)
    assert (value["when"], value["middle"]) == (
        "2026-03-01",
        (T0 + timedelta(hours=12)).isoformat(),
    )


def test_gate_lines_mark_pass_and_fail() -> None:
    assert gate_line("labelled rows: 60 (at least 50 needed): pass").startswith(":green[")
    assert gate_line("held-out accuracy: fail").startswith(":red[")
    assert gate_line("not measured") == "not measured"


def test_probability_chart_has_a_fixed_0_to_1_axis_and_dark_labels() -> None:
    spec = charts.probabilities([0.05] * 9 + [0.55])

    y = spec["encoding"]["y"]
    assert y["scale"]["domain"] == [0, 1]  # a 55 % bar looks like 55 %, not like a full one
    for axis in (y["axis"], spec["encoding"]["x"]["axis"]):
        assert axis["labelColor"] == axis["titleColor"] == charts.AXIS_TEXT_COLOUR
    assert [row["digit"] for row in spec["data"]["values"]] == [str(d) for d in range(10)]
