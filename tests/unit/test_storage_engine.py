"""The engine factory: SQLite tuned for concurrent writers, URLs told apart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from digitrec.storage.engine import (
    POOL_TIMEOUT_S,
    create_engine_from_url,
    is_sqlite,
    sqlite_file,
)


def test_engine_sqlite_uses_wal_normal_sync_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_s=2.5)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2500
    engine.dispose()


def test_engine_sqlite_creates_missing_parent_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.db"
    engine = create_engine_from_url(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert path.is_file()


def test_engine_postgres_url_gets_a_pool_and_connect_timeout() -> None:
    engine = create_engine_from_url("postgresql+psycopg://u:p@127.0.0.1:1/db")
    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    assert engine.dialect.name == "postgresql"
    engine.dispose()


def test_engine_is_sqlite_tells_backends_apart(tmp_path: Path) -> None:
    assert is_sqlite("sqlite:///x.db")
    assert is_sqlite("sqlite://")
    assert not is_sqlite("postgresql+psycopg://u@h/db")
    assert sqlite_file(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None


def test_engine_postgres_sessions_time_out_statements_and_lock_waits(postgres_url: str) -> None:
    engine = create_engine_from_url(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "5s"
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "1s"
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "30s"
    engine.dispose()
    assert engine.pool.timeout() == POOL_TIMEOUT_S  # type: ignore[attr-defined]

    # Migrations: no statement or lock timeout (a second worker waits for the first's).
    unbounded = create_engine_from_url(postgres_url, statement_timeout_s=None, lock_timeout_s=None)
    with unbounded.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "0"
    unbounded.dispose()


def test_engine_sqlite_waits_for_a_writer_before_switching_to_wal(tmp_path: Path) -> None:
    # Another starter holds a new (not yet WAL) file's write lock, as a migration does. SQLite
    # refuses the switch to WAL at once then, without waiting: the engine must wait itself.
    path = tmp_path / "x.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    releasing = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releasing.start()
    engine = create_engine_from_url(f"sqlite:///{path}", busy_timeout_s=10.0)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    releasing.join()
    engine.dispose()
    other.close()
