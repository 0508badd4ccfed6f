"""Nothing is lost while the database is down: writes queue in the outbox and replay later."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from credentials import sid

from digitrec.config import Settings
from digitrec.service import PredictionService, build_service
from digitrec.storage import Outbox, StorageUnavailableError, create_engine_from_url, upgrade

if TYPE_CHECKING:
    from tests.conftest import DisposablePostgres

Draw = Callable[..., np.ndarray]


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A migrated SQLite database and a second connection that can hold its write lock."""
    path = tmp_path / "digitrec.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    blocker = sqlite3.connect(path, isolation_level=None)
    yield url, blocker
    blocker.close()


def quick_service(url: str, outbox_dir: Path, model_dir: Path) -> PredictionService:
    """A service that gives up on a locked SQLite after 0.2 s instead of 5 s, and replays
    its outbox only when the test says so (flush_outbox), not in the background."""
    engine = create_engine_from_url(url, busy_timeout_s=0.2)
    return PredictionService(
        engine, Outbox(outbox_dir), model_dir=model_dir, replay_interval_s=None
    )


def wait_until_replayed(service: PredictionService, timeout_s: float = 30.0) -> None:
    """Wait, sending no request, until the service's background replay emptied the outbox."""
    deadline = time.monotonic() + timeout_s
    while service.outbox.count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service.outbox.count() == 0, "the outbox was not replayed"


def test_outage_sqlite_locked_queues_writes_and_flush_replays_them(
    locked_sqlite: tuple[str, sqlite3.Connection],
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    url, blocker = locked_sqlite
    service = quick_service(url, tmp_path / "outbox", tiny_model_dir)
    before = service.predict(make_digit("one"), session_id=sid("s"))
    assert before.logged

    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock past the busy timeout
    queued = [service.predict(make_digit("zero"), session_id=sid("s")) for _ in range(3)]
    assert [q.logged for q in queued] == [False] * 3
    labelled = service.submit_feedback(queued[0].id, 5)
    relabelled = service.submit_feedback(queued[0].id, 6)
    assert (labelled.actual, relabelled.actual, relabelled.logged) == (5, 6, False)
    with pytest.raises(StorageUnavailableError, match="try again"):
        service.submit_feedback(before.id, 2)  # logged row, database locked: say so
    stats = service.stats()  # WAL readers are not blocked by the writer
    assert (stats.total, stats.pending_writes) == (1, 5)
    assert service.image_png(queued[1].id).startswith(b"\x89PNG")

    blocker.execute("ROLLBACK")
    assert service.flush_outbox() == 5

    history = service.history(session_id=sid("s"))
    assert history.count == 4
    assert {p.id: p.actual for p in history.data} == {
        before.id: None,
        queued[0].id: 6,
        queued[1].id: None,
        queued[2].id: None,
    }
    assert service.stats().pending_writes == 0
    service.close()


def test_outage_another_worker_replays_a_queued_row_and_its_feedback(
    locked_sqlite: tuple[str, sqlite3.Connection],
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    url, blocker = locked_sqlite
    worker_a = quick_service(url, tmp_path / "outbox", tiny_model_dir)
    worker_b = quick_service(url, tmp_path / "outbox", tiny_model_dir)

    blocker.execute("BEGIN EXCLUSIVE")
    queued = worker_a.predict(make_digit("seven"), session_id=sid("s"))
    worker_b.submit_feedback(queued.id, 7)  # the feedback request lands on the other worker
    blocker.execute("ROLLBACK")

    assert worker_b.flush_outbox() == 2  # worker A's row, then worker B's label on it
    rows = {p.id: p.actual for p in worker_a.history().data}
    assert rows == {queued.id: 7}
    worker_a.close()
    worker_b.close()


@pytest.mark.postgres
def test_outage_postgres_killed_mid_session_loses_no_row(
    disposable_postgres: DisposablePostgres,
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    url = disposable_postgres.url.render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path / "data", database_url=url, model_dir=tiny_model_dir)
    service = build_service(settings)
    logged = [service.predict(make_digit("one"), session_id=sid("s")) for _ in range(3)]
    service.submit_feedback(logged[0].id, 1)
    assert all(p.logged for p in logged)

    disposable_postgres.stop()
    queued = [service.predict(make_digit("zero"), session_id=sid("s")) for _ in range(4)]
    assert not any(p.logged for p in queued)
    assert service.submit_feedback(queued[1].id, 7).actual == 7
    assert service.ready()["database"] is False
    with pytest.raises(StorageUnavailableError):
        service.history()
    with pytest.raises(StorageUnavailableError):
        service.stats()
    with pytest.raises(StorageUnavailableError):
        service.submit_feedback(logged[1].id, 3)
    assert (settings.outbox_path).is_dir()

    disposable_postgres.start()
    wait_until_replayed(service)  # in the background: no request needed
    after = service.predict(make_digit("seven"), session_id=sid("s"))
    assert after.logged

    history = service.history(session_id=sid("s"), limit=100)
    ids = [p.id for p in history.data]
    assert history.count == len(ids) == 8
    assert sorted(ids) == sorted(p.id for p in [*logged, *queued, after])
    actuals = {p.id: p.actual for p in history.data}
    assert (actuals[logged[0].id], actuals[queued[1].id]) == (1, 7)
    assert service.stats().pending_writes == 0
    assert service.ready() == {
        "model": True,
        "database": True,
        "outbox": {"pending": 0, "capacity": settings.outbox_capacity},
    }
    service.close()


@pytest.mark.postgres
def test_outage_postgres_restart_between_requests_needs_no_outbox(
    disposable_postgres: DisposablePostgres,
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    url = disposable_postgres.url.render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path / "data", database_url=url, model_dir=tiny_model_dir)
    service = build_service(settings)
    assert service.predict(make_digit("one"), session_id=sid("s")).logged  # leaves a pooled conn

    disposable_postgres.stop()
    disposable_postgres.start()
    # The pooled connection died with the server: it is replaced, not reported as an outage.
    assert service.predict(make_digit("one"), session_id=sid("s")).logged
    assert service.history().count == 2
    service.close()


@pytest.mark.postgres
def test_outage_postgres_down_at_start_migrates_and_replays_when_back(
    disposable_postgres: DisposablePostgres,
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    url = disposable_postgres.url.render_as_string(hide_password=False)
    disposable_postgres.stop()
    settings = Settings(data_dir=tmp_path / "data", database_url=url, model_dir=tiny_model_dir)
    service = build_service(settings)  # starts anyway
    queued = service.predict(make_digit("one"), session_id=sid("s"))
    assert not queued.logged

    disposable_postgres.start()
    wait_until_replayed(service)  # migrated, then replayed, by the background thread
    assert [p.id for p in service.history().data] == [queued.id]
    service.close()
