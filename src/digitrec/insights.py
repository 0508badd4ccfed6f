"""What people's labels say about the models: the running totals (/stats), and for the
Insights page per-digit accuracy, the confusion matrix, accuracy over time beside the
registry's promotions, the latest corrected drawings, every version.

Built from the prediction log (one session's rows, or every session's) and the model registry,
which every session shares. The service and the API both answer with `build_insights`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from digitrec.evaluation import MNIST_TEST
from digitrec.schemas import (
    CorrectionPublic,
    DigitAccuracyPublic,
    InsightsPublic,
    PeriodAccuracyPublic,
    PromotionPublic,
    StatsPublic,
    VersionSummaryPublic,
)
from digitrec.storage.registry import CHAMPION, RETIRED, list_versions
from digitrec.storage.reports import accuracy_by_period, latest_corrections
from digitrec.storage.repository import Outcome, count_outcomes

DIGITS = range(10)
CORRECTIONS_SHOWN = 12  # two rows of six drawings on the page
# The registry's columns a version shows as they are; its metrics are read, not shown whole.
_VERSION_FIELDS = (
    "name",
    "version",
    "parent_version",
    "created_at",
    "status",
    "status_changed_at",
    "status_by",
    "status_reason",
)


def build_insights(
    engine: Engine, session_id: str | None = None, *, corrections: int = CORRECTIONS_SHOWN
) -> InsightsPublic:
    """The Insights of one session (None: of every session), with the whole registry."""
    confusion, unlabelled = confusion_matrix(count_outcomes(engine, session_id))
    period, points = accuracy_by_period(engine, session_id)
    versions = list_versions(engine)
    labelled = sum(map(sum, confusion))
    correct = sum(confusion[d][d] for d in DIGITS)
    return InsightsPublic(
        session_id=session_id,
        predictions=labelled + unlabelled,
        labelled=labelled,
        corrected=labelled - correct,
        per_digit=[_digit_accuracy(d, confusion[d]) for d in DIGITS],
        confusion=confusion,
        period=period,
        accuracy_over_time=[
            PeriodAccuracyPublic(**p._asdict(), accuracy=p.correct / p.labelled) for p in points
        ],
        promotions=promotions(versions),
        corrections=[
            _correction(row) for row in latest_corrections(engine, session_id, corrections)
        ],
        versions=[version_public(row) for row in versions],
    )


def confusion_matrix(outcomes: Sequence[Outcome]) -> tuple[list[list[int]], int]:
    """confusion[actual][predicted] over rows labelled with a digit that the model answered
    with a digit, and the number of rows without feedback, from `count_outcomes`."""
    confusion = [[0] * 10 for _ in DIGITS]
    unlabelled = 0
    for outcome in outcomes:
        if outcome.actual is not None:
            if outcome.prediction is not None:
                confusion[outcome.actual][outcome.prediction] += outcome.rows
        elif not outcome.not_a_digit:
            unlabelled += outcome.rows
    return confusion, unlabelled


def promotions(versions: Sequence[Mapping[Any, Any]]) -> list[PromotionPublic]:
    """Each moment a name's champion changed, oldest first: the champion's promotion, and
    each retired version's replacement (the same moment as its successor's promotion is
    shown once, as the promotion)."""
    found: dict[tuple[str, Any], PromotionPublic] = {}
    for row in versions:
        if row["status"] not in (CHAMPION, RETIRED):
            continue
        key = (row["name"], row["status_changed_at"])
        if key in found and found[key].status == CHAMPION:
            continue
        found[key] = PromotionPublic(
            at=row["status_changed_at"],
            model=row["name"],
            version=row["version"],
            status=row["status"],
            by=row["status_by"],
            reason=row["status_reason"],
        )
    return sorted(found.values(), key=lambda p: (p.at, p.model))


def version_public(row: Mapping[Any, Any]) -> VersionSummaryPublic:
    """A registry row (without its bytes) as the page and the API show it."""
    metrics: Mapping[str, Any] = row["metrics"] or {}
    gates, passed = gate_results(metrics.get("gates"))
    return VersionSummaryPublic(
        **{name: row[name] for name in _VERSION_FIELDS},
        accuracy=accuracies(metrics),
        gates=gates,
        gates_passed=passed,
    )


def accuracies(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """A version's accuracy per data set: as learning measured it (`mnist_test`,
    `feedback_held_out`...), and for a shipped file the MNIST test accuracy in its ONNX
    metadata (`test_accuracy`), which is the same measure."""
    found = {
        name: value["accuracy"]
        for name, value in metrics.items()
        if isinstance(value, Mapping) and "accuracy" in value
    }
    shipped = metrics.get("test_accuracy")
    if MNIST_TEST not in found and isinstance(shipped, int | float):
        found[MNIST_TEST] = float(shipped)
    return found


def gate_results(recorded: Any) -> tuple[list[str], bool | None]:
    """Each gate's reading and whether all held, from what learning stored in the metrics:
    `{"promoted": bool, "reasons": [...]}`, a list of readings ("<gate>: pass"), or a
    mapping gate -> bool or reading. ([], None) when nothing was recorded."""
    if isinstance(recorded, Mapping) and "reasons" in recorded:
        reasons = [str(r) for r in recorded["reasons"]]
        promoted = recorded.get("promoted")
        return reasons, bool(promoted) if promoted is not None else _all_pass(reasons)
    if isinstance(recorded, Mapping):
        readings = [
            f"{gate}: {_pass_fail(held) if isinstance(held, bool) else held}"
            for gate, held in recorded.items()
        ]
        return readings, _all_pass(readings) if readings else None
    if isinstance(recorded, list | tuple):
        readings = [str(r) for r in recorded]
        return readings, _all_pass(readings) if readings else None
    return [], None


def _pass_fail(held: bool) -> str:
    return "pass" if held else "fail"


def _all_pass(readings: Sequence[str]) -> bool:
    return all(reading.rstrip().endswith("pass") for reading in readings)


def _digit_accuracy(digit: int, row: Sequence[int]) -> DigitAccuracyPublic:
    labelled = sum(row)
    return DigitAccuracyPublic(
        digit=digit,
        labelled=labelled,
        correct=row[digit],
        accuracy=row[digit] / labelled if labelled else None,
    )


def _correction(row: RowMapping) -> CorrectionPublic:
    fields = {key: value for key, value in row.items() if key != "image_png"}
    return CorrectionPublic(**fields, image_png=base64.b64encode(row["image_png"]).decode("ascii"))


def summarise_outcomes(outcomes: Sequence[Outcome], *, pending_writes: int) -> StatsPublic:
    """The running totals: an uncorrected prediction counts as correct (the reference app's
    definition), per-digit accuracy and confusion over labelled rows. A drawing the person
    says is not a digit was answered right if the model said so too."""
    confusion, no_feedback = confusion_matrix(outcomes)
    not_digit = sum(o.rows for o in outcomes if o.not_a_digit)
    not_digit_refused = sum(o.rows for o in outcomes if o.not_a_digit and not o.is_digit)
    # Labelled with a digit, answered with none (the chat model): wrong, outside the matrix.
    unanswered = sum(o.rows for o in outcomes if o.actual is not None and o.prediction is None)
    total = no_feedback + sum(map(sum, confusion)) + not_digit + unanswered
    confirmed = sum(confusion[d][d] for d in DIGITS) + not_digit_refused
    correct = no_feedback + confirmed
    return StatsPublic(
        total=total,
        correct=correct,
        confirmed=confirmed,
        corrected=total - correct,
        no_feedback=no_feedback,
        not_a_digit=not_digit,
        realized_accuracy=correct / total if total else None,
        per_digit_accuracy={
            d: confusion[d][d] / sum(confusion[d]) if sum(confusion[d]) else None for d in DIGITS
        },
        confusion=confusion,
        pending_writes=pending_writes,
    )
