"""Repository functions against both backends: inserts, feedback, pages, counts, images."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import IntegrityError

from digitrec.storage import (
    Feedback,
    PredictionRecord,
    StorageUnavailableError,
    apply_pending,
    check_writable,
    count_outcomes,
    fetch_image_png,
    insert_prediction,
    list_predictions,
    ping,
    prediction_logs,
    set_feedback,
)
from digitrec.storage.reports import labelled_predictions

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_record(
    prediction: int = 3, *, session_id: str = "s1", at: datetime = T0, uid: str | None = None
) -> PredictionRecord:
    probabilities = [0.0] * 10
    probabilities[prediction] = 1.0
    return PredictionRecord(
        uid=uid or uuid.uuid4().hex,
        timestamp=at,
        session_id=session_id,
        model="default",
        prediction=prediction,
        confidence=1.0,
        probabilities=probabilities,
        latency_ms=1.5,
        image_png=b"\x89PNG-28x28",
        canvas_png=b"\x89PNG-canvas",
    )


def test_repository_insert_then_list_round_trips_a_row(engine: Engine) -> None:
    record = make_record(7)
    insert_prediction(engine, record)
    rows, count = list_predictions(engine)
    assert count == 1
    row = rows[0]
    assert row["id"] == record.uid
    assert row["timestamp"] == T0
    assert row["timestamp"].tzinfo is not None
    assert row["probabilities"] == record.probabilities
    assert (row["prediction"], row["actual"], row["feedback_at"]) == (7, None, None)
    assert "image_png" not in row


def test_repository_insert_same_uid_twice_keeps_one_row(engine: Engine) -> None:
    record = make_record()
    assert insert_prediction(engine, record) is True
    assert insert_prediction(engine, record) is False  # already there
    assert list_predictions(engine)[1] == 1


def test_repository_list_is_newest_first_filtered_and_paged(engine: Engine) -> None:
    for minute in range(5):
        insert_prediction(engine, make_record(at=T0 + timedelta(minutes=minute)))
    insert_prediction(engine, make_record(session_id="other", at=T0 + timedelta(hours=1)))

    rows, count = list_predictions(engine, session_id="s1", limit=2, offset=1)
    assert count == 5
    assert [r["timestamp"] for r in rows] == [T0 + timedelta(minutes=m) for m in (3, 2)]
    everything, total = list_predictions(engine)
    assert total == 6
    assert everything[0]["session_id"] == "other"


def test_repository_set_feedback_returns_the_row_and_overwrites(engine: Engine) -> None:
    record = make_record(4)
    insert_prediction(engine, record)
    first = set_feedback(
        engine, Feedback(uid=record.uid, actual=9, feedback_at=T0 + timedelta(seconds=1))
    )
    second = set_feedback(
        engine, Feedback(uid=record.uid, actual=4, feedback_at=T0 + timedelta(seconds=2))
    )
    assert first is not None and first["actual"] == 9
    assert second is not None and second["actual"] == 4
    assert second["feedback_at"] == T0 + timedelta(seconds=2)


def test_repository_set_feedback_unknown_uid_returns_none(engine: Engine) -> None:
    assert set_feedback(engine, Feedback(uid="nope", actual=1, feedback_at=T0)) is None


def test_repository_apply_pending_is_idempotent_and_keeps_newer_feedback(engine: Engine) -> None:
    landed, queued = make_record(1), make_record(2)
    insert_prediction(engine, landed)
    set_feedback(engine, Feedback(uid=landed.uid, actual=5, feedback_at=T0 + timedelta(minutes=10)))
    older = Feedback(
        uid=landed.uid, actual=6, feedback_at=T0 + timedelta(minutes=5)
    )  # queued before the live one
    fresh = Feedback(uid=queued.uid, actual=8, feedback_at=T0 + timedelta(minutes=1))

    for _ in range(2):  # a replay interrupted before the outbox was cleared runs again
        apply_pending(engine, [landed, queued], [older, fresh])

    rows, count = list_predictions(engine)
    assert count == 2
    assert {r["id"]: r["actual"] for r in rows} == {landed.uid: 5, queued.uid: 8}


def test_repository_count_outcomes_groups_actual_and_prediction(engine: Engine) -> None:
    records = [make_record(d) for d in (1, 1, 2, 3)]
    for record in records:
        insert_prediction(engine, record)
    insert_prediction(engine, make_record(5, session_id="other"))
    set_feedback(engine, Feedback(uid=records[0].uid, actual=1, feedback_at=T0))
    set_feedback(engine, Feedback(uid=records[2].uid, actual=7, feedback_at=T0))

    set_feedback(engine, Feedback(uid=records[3].uid, actual=None, feedback_at=T0))

    assert sorted(count_outcomes(engine, "s1"), key=str) == sorted(
        [
            (1, 1, 1, False, True),
            (None, 1, 1, False, True),
            (7, 2, 1, False, True),
            (None, 3, 1, True, True),
        ],
        key=str,
    )
    assert sum(o.rows for o in count_outcomes(engine)) == 5


def test_repository_fetch_image_png_returns_bytes_or_none(engine: Engine) -> None:
    record = make_record()
    insert_prediction(engine, record)
    assert fetch_image_png(engine, record.uid) == record.image_png
    assert fetch_image_png(engine, "missing") is None


def test_repository_rejects_non_digit_predictions_and_labels(engine: Engine) -> None:
    row = {
        "uid": "x" * 32,
        "timestamp": T0,
        "session_id": "s",
        "model": "m",
        "prediction": 10,
        "confidence": 0.5,
        "probabilities": [0.1] * 10,
        "latency_ms": 1.0,
        "image_png": b"",
    }
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(prediction_logs), [row])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(prediction_logs), [{**row, "prediction": 1, "actual": -1}])


def test_repository_ping_answers_true_when_up(engine: Engine) -> None:
    assert ping(engine)


def test_repository_set_feedback_never_replaces_a_newer_label(engine: Engine) -> None:
    record = make_record(4)
    insert_prediction(engine, record)
    newer = Feedback(uid=record.uid, actual=9, feedback_at=T0 + timedelta(seconds=2))
    older = Feedback(uid=record.uid, actual=1, feedback_at=T0 + timedelta(seconds=1))
    set_feedback(engine, newer)

    row = set_feedback(engine, older)  # arrives later, was given earlier

    assert row is not None  # the row exists: the answer is the row as it stands
    assert (row["actual"], row["feedback_at"]) == (9, newer.feedback_at)


CONTENDED_ROWS = 40
LABELS_PER_ROW = 8


def test_repository_concurrent_labels_the_newest_always_wins(engine: Engine) -> None:
    # Each row gets 8 labels at once, from threads (live requests and outbox replays mixed)
    # that commit in whatever order the database lets them; the newest must stay.
    records = [make_record(1) for _ in range(CONTENDED_ROWS)]
    apply_pending(engine, records, [])
    rng = random.Random(0)
    jobs = []
    for record in records:
        for i in range(LABELS_PER_ROW):
            label = Feedback(uid=record.uid, actual=i, feedback_at=T0 + timedelta(seconds=i))
            jobs.append((label, rng.random() < 0.5))
    rng.shuffle(jobs)
    start = threading.Barrier(8)

    def write(job: tuple[Feedback, bool]) -> None:
        label, replayed = job
        if replayed:
            apply_pending(engine, [], [label])
        else:
            set_feedback(engine, label)

    def worker(chunk: list[tuple[Feedback, bool]]) -> None:
        start.wait(30)
        for job in chunk:
            write(job)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, [jobs[i::8] for i in range(8)]))

    rows, count = list_predictions(engine, limit=1000)
    assert count == CONTENDED_ROWS
    newest = T0 + timedelta(seconds=LABELS_PER_ROW - 1)
    assert {(r["actual"], r["feedback_at"]) for r in rows} == {(LABELS_PER_ROW - 1, newest)}


def test_repository_every_database_error_is_storage_unavailable(engine: Engine) -> None:
    insert_prediction(engine, make_record())
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE prediction_logs RENAME TO prediction_logs_moved"))

    with pytest.raises(StorageUnavailableError, match="database unavailable"):
        insert_prediction(engine, make_record())
    with pytest.raises(StorageUnavailableError):
        list_predictions(engine)
    with pytest.raises(StorageUnavailableError):
        check_writable(engine)


def test_repository_check_writable_passes_and_writes_nothing(engine: Engine) -> None:
    check_writable(engine)
    assert list_predictions(engine)[1] == 0


def test_learning_reads_rows_labelled_with_a_digit_or_as_not_a_digit(engine: Engine) -> None:
    labelled, not_digit, unlabelled = make_record(3), make_record(4), make_record(5)
    for record in (labelled, not_digit, unlabelled):
        insert_prediction(engine, record)
    set_feedback(engine, Feedback(uid=labelled.uid, actual=8, feedback_at=T0))
    set_feedback(engine, Feedback(uid=not_digit.uid, actual=None, feedback_at=T0))

    rows = {(r.prediction, r.actual) for r in labelled_predictions(engine)}

    assert rows == {(3, 8), (4, None)}
