"""The durable outbox: fsync'ed appends, replay in order, safety across threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digitrec.contract import OutboxFullError
from digitrec.storage import Feedback, Outbox, PredictionRecord
from digitrec.storage.outbox import QUEUE_SUFFIX

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_record(
    uid: str | None = None, canvas: bytes | None = b"\x89PNG canvas"
) -> PredictionRecord:
    return PredictionRecord(
        uid=uid or uuid.uuid4().hex,
        timestamp=T0,
        session_id="s1",
        model="default",
        prediction=3,
        confidence=0.9,
        probabilities=[0.1] * 10,
        latency_ms=2.0,
        image_png=b"\x89PNG\x00\xff binary",
        canvas_png=canvas,
    )


class Collector:
    """Stands in for the database: remembers what each drain applied."""

    def __init__(self, fail: bool = False) -> None:
        self.records: list[PredictionRecord] = []
        self.feedback: list[Feedback] = []
        self.fail = fail

    def __call__(self, records: Sequence[PredictionRecord], feedback: Sequence[Feedback]) -> None:
        if self.fail:
            raise ConnectionError("database down")
        self.records.extend(records)
        self.feedback.extend(feedback)


def test_outbox_round_trips_records_and_feedback_exactly(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    record, bare = make_record(), make_record(canvas=None)
    outbox.append_prediction(record)
    outbox.append_prediction(bare)
    outbox.append_feedback(Feedback(uid=record.uid, actual=7, feedback_at=T0))
    assert outbox.has_pending() and outbox.count() == 3

    applied = Collector()
    assert outbox.drain(applied) == 3
    assert applied.records == [record, bare]
    assert applied.feedback == [Feedback(uid=record.uid, actual=7, feedback_at=T0)]
    assert not outbox.has_pending() and outbox.count() == 0


def test_outbox_round_trips_a_refusal_and_a_not_a_digit_label(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    refused = make_record().model_copy(update={"is_digit": False, "digit_probability": 0.02})
    outbox.append_prediction(refused)
    outbox.append_feedback(Feedback(uid=refused.uid, actual=None, feedback_at=T0))

    applied = Collector()
    assert outbox.drain(applied) == 2
    assert applied.records == [refused]
    assert applied.feedback == [Feedback(uid=refused.uid, actual=None, feedback_at=T0)]


def test_outbox_empty_or_missing_folder_has_nothing_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "never-made")
    assert not outbox.has_pending()
    assert outbox.count() == 0
    assert outbox.drain(Collector()) == 0
    assert outbox.find_prediction("x") is None


def test_outbox_keeps_everything_when_the_replay_fails(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.append_prediction(make_record())
    with pytest.raises(ConnectionError):
        outbox.drain(Collector(fail=True))
    assert outbox.count() == 1
    assert outbox.drain(Collector()) == 1


def test_outbox_appends_after_a_drain_go_to_a_new_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    first, second = make_record(), make_record()
    outbox.append_prediction(first)
    outbox.drain(Collector())
    outbox.append_prediction(second)  # its old file was deleted under it
    applied = Collector()
    outbox.drain(applied)
    assert applied.records == [second]


def test_outbox_replays_feedback_oldest_first_across_files(tmp_path: Path) -> None:
    worker_a, worker_b = Outbox(tmp_path), Outbox(tmp_path)  # two processes' files
    record = make_record()
    worker_a.append_prediction(record)
    worker_b.append_feedback(
        Feedback(uid=record.uid, actual=2, feedback_at=T0 + timedelta(seconds=2))
    )
    worker_a.append_feedback(
        Feedback(uid=record.uid, actual=1, feedback_at=T0 + timedelta(seconds=1))
    )
    applied = Collector()
    worker_b.drain(applied)
    assert applied.records == [record]
    assert [f.actual for f in applied.feedback] == [1, 2]


def test_outbox_find_prediction_sees_every_process_file(tmp_path: Path) -> None:
    record = make_record()
    Outbox(tmp_path).append_prediction(record)
    assert Outbox(tmp_path).find_prediction(record.uid) == record
    assert Outbox(tmp_path).find_prediction("other") is None


def test_outbox_skips_a_torn_last_line(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    record = make_record()
    outbox.append_prediction(record)
    (queue_file,) = tmp_path.glob("*.jsonl")
    with queue_file.open("ab") as f:
        f.write(b'{"op":"insert","uid":"tor')  # a crash in the middle of an append
    applied = Collector()
    assert outbox.drain(applied) == 1
    assert applied.records == [record]
    assert not list(tmp_path.glob("*.jsonl"))


def test_outbox_drain_without_wait_returns_when_another_drain_runs(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.append_prediction(make_record())
    inside, release = threading.Event(), threading.Event()

    def slow_apply(records: Sequence[PredictionRecord], feedback: Sequence[Feedback]) -> None:
        inside.set()
        release.wait(10)

    runner = threading.Thread(target=outbox.drain, args=(slow_apply,))
    runner.start()
    assert inside.wait(10)
    assert outbox.drain(Collector(), wait=False) == 0
    release.set()
    runner.join(10)
    assert outbox.count() == 0


def test_outbox_concurrent_appends_and_drains_lose_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    applied = Collector()
    records = [make_record() for _ in range(60)]

    def append(chunk: list[PredictionRecord]) -> None:
        for record in chunk:
            outbox.append_prediction(record)
            outbox.drain(applied, wait=False)

    threads = [threading.Thread(target=append, args=(records[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outbox.drain(applied)
    assert sorted(r.uid for r in applied.records) == sorted(r.uid for r in records)


def _append_from_process(folder: str, uids: list[str]) -> None:
    outbox = Outbox(Path(folder))
    for uid in uids:
        outbox.append_prediction(make_record(uid))


def test_outbox_several_processes_append_safely(tmp_path: Path) -> None:
    uids = [uuid.uuid4().hex for _ in range(40)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_from_process, args=(str(tmp_path), uids[i::2]))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    applied = Collector()
    while any(w.is_alive() for w in workers):
        Outbox(tmp_path).drain(applied)  # drains race the appenders
        time.sleep(0.01)
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    Outbox(tmp_path).drain(applied)
    assert sorted(r.uid for r in applied.records) == sorted(uids)


def test_outbox_reads_lines_written_before_the_record_codec(tmp_path: Path) -> None:
    # A queue file left by the previous release (datetime.isoformat, hand-made base64) must
    # still replay after an upgrade.
    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "1-old.jsonl").write_text(
        '{"op":"insert","uid":"a1","timestamp":"2024-05-01T12:00:00+00:00","session_id":"s1",'
        '"model":"default","prediction":3,"confidence":0.9,"probabilities":[0.1,0.1,0.1,0.1,'
        '0.1,0.1,0.1,0.1,0.1,0.1],"latency_ms":2.0,"image_png":"iVBORw==","canvas_png":null}\n'
        '{"op":"feedback","uid":"a1","actual":7,"feedback_at":"2024-05-01T12:00:00+00:00"}\n'
    )
    applied = Collector()
    assert Outbox(folder).drain(applied) == 2
    assert applied.records == [
        make_record("a1", canvas=None).model_copy(update={"image_png": b"\x89PNG"})
    ]
    assert applied.feedback == [Feedback(uid="a1", actual=7, feedback_at=T0)]


# --- cost on the request path, the cap, replays that run beside appends --------------------

QUEUED_ROWS = 10_000


def _forbid_reading_queue_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every read of a queue file (.jsonl) fail; returns the files that were opened."""
    opened: list[str] = []

    def is_queue(fd: int) -> bool:
        return os.readlink(f"/proc/self/fd/{fd}").endswith(QUEUE_SUFFIX)

    real_read, real_pread, real_open = os.read, os.pread, os.open

    def guarded_read(fd: int, n: int) -> bytes:
        assert not is_queue(fd), "a queue file was read"
        return real_read(fd, n)

    def guarded_pread(fd: int, n: int, offset: int) -> bytes:
        assert not is_queue(fd), "a queue file was read"
        return real_pread(fd, n, offset)

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a queue file was read")

    monkeypatch.setattr(os, "read", guarded_read)
    monkeypatch.setattr(os, "pread", guarded_pread)
    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "open", refuse)
    return opened


def test_outbox_count_and_append_do_not_read_queue_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    this_process, other_process = Outbox(tmp_path), Outbox(tmp_path)
    with monkeypatch.context() as fast:
        fast.setattr(os, "fsync", lambda fd: None)  # filling 10k rows needs no durability
        for i in range(QUEUED_ROWS):
            (this_process if i % 2 else other_process).append_prediction(make_record())

    opened = _forbid_reading_queue_files(monkeypatch)
    assert this_process.count() == QUEUED_ROWS
    this_process.append_prediction(make_record())
    other_process.append_feedback(Feedback(uid="x", actual=1, feedback_at=T0))
    assert Outbox(tmp_path).count() == QUEUED_ROWS + 2  # a third process sees all of them
    assert this_process.has_pending()
    # Appends open no queue file for reading (the own file stays open for writing).
    assert not [path for path in opened if path.endswith(QUEUE_SUFFIX)]


def test_outbox_refuses_appends_past_its_capacity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path, capacity=2)
    outbox.append_prediction(make_record())
    Outbox(tmp_path, capacity=2).append_prediction(make_record())  # another process's row

    with pytest.raises(OutboxFullError, match="outbox is full"):
        outbox.append_prediction(make_record())
    with pytest.raises(OutboxFullError):
        outbox.append_feedback(Feedback(uid="x", actual=1, feedback_at=T0))
    assert outbox.count() == 2
    assert [r.message for r in caplog.records].count(
        f"outbox {tmp_path} is full (2 writes queued, capacity 2): refusing writes until "
        "the database takes them"
    ) == 1  # logged once, not once per refusal

    assert outbox.drain(Collector()) == 2
    outbox.append_prediction(make_record())  # room again
    assert outbox.count() == 1


def test_outbox_appends_go_on_while_a_replay_applies(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    first, during = make_record(), make_record()
    outbox.append_prediction(first)
    inside, release = threading.Event(), threading.Event()
    applied = Collector()

    def slow_apply(records: Sequence[PredictionRecord], feedback: Sequence[Feedback]) -> None:
        inside.set()
        release.wait(10)
        applied(records, feedback)

    replay = threading.Thread(target=outbox.drain, args=(slow_apply,))
    replay.start()
    assert inside.wait(10)
    appender = threading.Thread(target=outbox.append_prediction, args=(during,))
    appender.start()
    appender.join(10)
    appended_during_replay = not appender.is_alive()
    release.set()
    replay.join(10)

    assert appended_during_replay  # it did not wait for the replay's transaction
    assert applied.records == [first]
    assert outbox.count() == 1 and outbox.find_prediction(during.uid) == during


def test_outbox_replays_in_batches_inserts_before_feedback(tmp_path: Path) -> None:
    worker_a, worker_b = Outbox(tmp_path), Outbox(tmp_path)
    records = [make_record() for _ in range(5)]
    for i, record in enumerate(records):
        (worker_a if i % 2 else worker_b).append_prediction(record)
    labels = [
        Feedback(uid=records[i].uid, actual=i, feedback_at=T0 + timedelta(seconds=10 - i))
        for i in range(3)
    ]
    worker_b.append_feedback(labels[0])
    worker_a.append_feedback(labels[1])
    worker_a.append_feedback(labels[2])
    calls: list[tuple[list[str], list[int]]] = []

    def apply(batch: Sequence[PredictionRecord], feedback: Sequence[Feedback]) -> None:
        calls.append(([r.uid for r in batch], [f.actual for f in feedback]))

    assert worker_a.drain(apply, batch_rows=2) == 8

    assert all(len(uids) <= 2 and len(actuals) <= 2 for uids, actuals in calls)
    inserted = [uid for uids, _ in calls for uid in uids]
    assert sorted(inserted) == sorted(r.uid for r in records)
    first_feedback = next(i for i, (_, actuals) in enumerate(calls) if actuals)
    assert not any(uids for uids, _ in calls[first_feedback + 1 :])  # no insert after it
    assert [a for _, actuals in calls for a in actuals] == [2, 1, 0]  # oldest label first


def test_outbox_a_replay_cut_short_is_applied_again_in_full(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    records = [make_record() for _ in range(3)]
    for record in records:
        outbox.append_prediction(record)
    seen: list[str] = []

    def fail_on_second_batch(
        batch: Sequence[PredictionRecord], feedback: Sequence[Feedback]
    ) -> None:
        if seen:
            raise ConnectionError("the database went away mid-replay")
        seen.extend(r.uid for r in batch)

    with pytest.raises(ConnectionError):
        outbox.drain(fail_on_second_batch, batch_rows=2)
    assert outbox.count() == 3 and outbox.has_pending()
    assert outbox.find_prediction(records[2].uid) == records[2]  # claimed, still findable

    applied = Collector()
    assert outbox.drain(applied) == 3  # the first batch again too: inserts are idempotent
    assert [r.uid for r in applied.records] == [r.uid for r in records]
    assert outbox.count() == 0 and not outbox.has_pending()
