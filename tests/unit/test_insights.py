"""The Insights reports on SQLite and PostgreSQL: one session's rows or every session's,
accuracy per hour or day, the latest corrections with their drawings, the registry's changes."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from credentials import sid
from PIL import Image
from sqlalchemy import Engine

from digitrec.insights import accuracies, build_insights, gate_results, version_public
from digitrec.storage import (
    Feedback,
    PredictionRecord,
    insert_prediction,
    set_feedback,
)
from digitrec.storage.registry import (
    CANDIDATE,
    CHAMPION,
    REJECTED,
    list_versions,
    promote,
    register_version,
    set_status,
)

ALICE, BOB = sid("alice"), sid("bob")
T0 = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (28, 28), shade).save(buffer, format="PNG")
    return buffer.getvalue()


def _log(
    engine: Engine,
    session: str,
    prediction: int,
    actual: int | None = None,
    *,
    at: datetime = T0,
    model: str = "default",
    labelled_after: timedelta = timedelta(seconds=5),
) -> str:
    """Log a prediction (and its label); returns its id."""
    uid = uuid.uuid4().hex
    record = PredictionRecord(
        uid=uid,
        timestamp=at,
        session_id=session,
        model=model,
        model_version=1,
        prediction=prediction,
        confidence=0.8,
        probabilities=[0.1] * 10,
        latency_ms=1.0,
        image_png=_png(prediction * 20),
    )
    assert insert_prediction(engine, record)
    if actual is not None:
        set_feedback(engine, Feedback(uid=uid, actual=actual, feedback_at=at + labelled_after))
    return uid


def test_a_session_sees_its_own_rows_and_the_admin_sees_every_sessions(engine: Engine) -> None:
    _log(engine, ALICE, 7)  # no feedback
    _log(engine, ALICE, 7, 7)  # confirmed
    alice_wrong = _log(engine, ALICE, 3, 8)  # corrected
    bob_wrong = _log(engine, BOB, 1, 2, labelled_after=timedelta(minutes=1))

    alice = build_insights(engine, ALICE)
    assert (alice.session_id, alice.predictions, alice.labelled, alice.corrected) == (
        ALICE,
        3,
        2,
        1,
    )
    assert alice.confusion[7][7] == 1 and alice.confusion[8][3] == 1
    assert sum(map(sum, alice.confusion)) == 2
    by_digit = {d.digit: (d.labelled, d.correct, d.accuracy) for d in alice.per_digit}
    assert by_digit[7] == (1, 1, 1.0) and by_digit[8] == (1, 0, 0.0) and by_digit[0] == (0, 0, None)
    assert [c.id for c in alice.corrections] == [alice_wrong]
    drawing = Image.open(io.BytesIO(base64.b64decode(alice.corrections[0].image_png)))
    assert drawing.size == (28, 28)
    assert (alice.corrections[0].prediction, alice.corrections[0].actual) == (3, 8)

    everyone = build_insights(engine, None)
    assert (everyone.predictions, everyone.labelled, everyone.corrected) == (4, 3, 2)
    assert [c.id for c in everyone.corrections] == [bob_wrong, alice_wrong]  # newest label first
    assert build_insights(engine, sid("nobody")).labelled == 0


def test_an_empty_log_gives_empty_insights(engine: Engine) -> None:
    empty = build_insights(engine, ALICE)
    assert (empty.predictions, empty.labelled, empty.corrected) == (0, 0, 0)
    assert empty.accuracy_over_time == [] and empty.corrections == []
    assert all(d.accuracy is None for d in empty.per_digit)


def test_accuracy_is_counted_per_hour_over_a_short_span_and_per_day_over_a_long_one(
    engine: Engine,
) -> None:
    _log(engine, ALICE, 1, 1, at=T0)  # 10:15
    _log(engine, ALICE, 2, 5, at=T0 + timedelta(minutes=30))  # 10:45: same hour
    _log(engine, ALICE, 3, 3, at=T0 + timedelta(hours=1))  # 11:15
    _log(engine, ALICE, 4, 4, at=T0 + timedelta(hours=1), model="lenet5")
    _log(engine, ALICE, 9, None, at=T0 + timedelta(hours=3))  # unlabelled: not counted

    hourly = build_insights(engine, ALICE)
    assert hourly.period == "hour"
    points = [(p.start, p.model, p.labelled, p.correct) for p in hourly.accuracy_over_time]
    ten = T0.replace(minute=0)
    assert points == [
        (ten, "default", 2, 1),
        (ten + timedelta(hours=1), "default", 1, 1),
        (ten + timedelta(hours=1), "lenet5", 1, 1),
    ]
    assert hourly.accuracy_over_time[0].accuracy == 0.5

    _log(engine, ALICE, 6, 0, at=T0 + timedelta(days=5))
    daily = build_insights(engine, ALICE)
    assert daily.period == "day"
    midnight = T0.replace(hour=0, minute=0)
    assert [(p.start, p.model, p.labelled) for p in daily.accuracy_over_time] == [
        (midnight, "default", 3),
        (midnight, "lenet5", 1),
        (midnight + timedelta(days=5), "default", 1),
    ]


def test_the_latest_corrections_come_newest_label_first_and_limited(engine: Engine) -> None:
    made = [_log(engine, ALICE, 1, 7, labelled_after=timedelta(minutes=n)) for n in range(1, 16)]
    _log(engine, ALICE, 4, 4, labelled_after=timedelta(hours=1))  # confirmed: not a correction

    shown = build_insights(engine, ALICE).corrections
    assert [c.id for c in shown] == made[::-1][:12]
    assert [c.id for c in build_insights(engine, ALICE, corrections=3).corrections] == made[:-4:-1]


def _register(engine: Engine, status: str, metrics: dict[str, object] | None = None) -> int:
    return register_version(
        engine,
        "default",
        uuid.uuid4().bytes,
        temperature=1.0,
        metrics=metrics or {"mnist_test": {"accuracy": 0.99, "ece": 0.01}},
        trained_on={"rows": 60},
        status=status,
        by="test",
        reason="a test",
    )


def test_each_change_of_champion_is_a_promotion_and_every_version_is_listed(
    engine: Engine,
) -> None:
    _register(engine, CHAMPION)
    gates = {"promoted": True, "reasons": ["MNIST test accuracy: pass", "labelled rows: pass"]}
    _register(engine, CANDIDATE, {"mnist_test": {"accuracy": 0.995}, "gates": gates})
    _register(engine, CANDIDATE)
    first = build_insights(engine, ALICE).promotions
    assert [(p.version, p.status, p.reason) for p in first] == [(1, CHAMPION, "a test")]

    promote(engine, "default", 2, by="learner", reason="every gate held")
    set_status(engine, "default", 3, REJECTED, by="learner", reason="a gate failed")

    insights = build_insights(engine, ALICE)
    # Version 1's retirement and version 2's promotion are one moment: shown once.
    assert [(p.version, p.status, p.by, p.reason) for p in insights.promotions] == [
        (2, CHAMPION, "learner", "every gate held")
    ]
    versions = {v.version: v for v in insights.versions}
    assert [versions[n].status for n in (1, 2, 3)] == ["retired", "champion", "rejected"]
    assert versions[2].accuracy == {"mnist_test": 0.995}
    assert versions[2].gates == gates["reasons"] and versions[2].gates_passed is True
    assert versions[1].gates == [] and versions[1].gates_passed is None
    assert versions[3].status_reason == "a gate failed"


def test_a_version_row_reads_its_accuracy_per_data_set(engine: Engine) -> None:
    _register(engine, CHAMPION, {"test": {"accuracy": 0.5, "ece": 0.1}, "test_ece": 0.2})
    (row,) = list_versions(engine)
    assert version_public(row).accuracy == {"test": 0.5}


def test_a_shipped_version_reads_its_mnist_accuracy_from_its_onnx_metadata() -> None:
    shipped = {"test_accuracy": 0.9963, "test_ece": 0.0012, "test_ece_uncalibrated": 0.046}
    assert accuracies(shipped) == {"mnist_test": 0.9963}
    # What learning measured stands over what the file says.
    assert accuracies({**shipped, "mnist_test": {"accuracy": 0.995}}) == {"mnist_test": 0.995}


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        (None, ([], None)),
        ({"promoted": False, "reasons": ["a: pass", "b: fail"]}, (["a: pass", "b: fail"], False)),
        (["a: pass", "b: pass"], (["a: pass", "b: pass"], True)),
        ({"mnist": True, "held_out": False}, (["mnist: pass", "held_out: fail"], False)),
        ({"reasons": ["a: fail"]}, (["a: fail"], False)),
    ],
)
def test_gate_results_read_each_form_learning_may_record(
    recorded: object, expected: tuple[list[str], bool | None]
) -> None:
    assert gate_results(recorded) == expected
