"""The durable outbox: fsync'ed appends, replay in order, safety across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digitrec.storage import Feedback, Outbox, PredictionRecord

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
