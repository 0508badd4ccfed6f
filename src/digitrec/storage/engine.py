"""Engines for SQLite (the zero-setup default) and PostgreSQL, tuned for many short writes."""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# Every wait on the database has a bound. (A request's write has a shorter one on top:
# digitrec.storage.guard; a call stuck on a silent socket is cut: digitrec.storage.watchdog.)
# A writer waits this long for SQLite's write lock before the row goes to the outbox.
SQLITE_BUSY_TIMEOUT_S = 5.0
# A PostgreSQL host that does not answer is reported unavailable after this long (whole
# seconds, at least 2: libpq's and psycopg's minimum).
PG_CONNECT_TIMEOUT_S = 2
# Server side, per session: no statement runs longer, no lock is waited for longer, and a
# transaction whose client went silent is ended (its locks released).
PG_STATEMENT_TIMEOUT_S = 5.0
PG_LOCK_TIMEOUT_S = 1.0
PG_IDLE_IN_TRANSACTION_TIMEOUT_S = 30.0
# TCP keepalives and an unacknowledged-data limit: a peer that vanished (host down, network
# cut) is noticed within about 20 s even while a call waits on the socket.
PG_KEEPALIVE_IDLE_S = 10
PG_KEEPALIVE_INTERVAL_S = 3
PG_KEEPALIVE_COUNT = 3
PG_TCP_USER_TIMEOUT_MS = 10_000
# Per process: the API runs a few threads per worker; PostgreSQL's default allows 100 clients.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
# A call waits this long for a free pooled connection before it is reported unavailable.
POOL_TIMEOUT_S = 1.0
# Recycle connections before server or proxy idle timeouts cut them.
POOL_RECYCLE_S = 1800
# Between tries to put a new SQLite file in WAL mode while another connection holds it.
WAL_RETRY_MS = 10


def is_sqlite(url: str | URL) -> bool:
    """Whether the URL names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_engine_from_url(
    url: str | URL,
    *,
    busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
    connect_timeout_s: int = PG_CONNECT_TIMEOUT_S,
    statement_timeout_s: float | None = PG_STATEMENT_TIMEOUT_S,
    lock_timeout_s: float | None = PG_LOCK_TIMEOUT_S,
    **kwargs: Any,
) -> Engine:
    """An engine for the URL: SQLite in WAL mode with a busy timeout, or pooled PostgreSQL
    whose sessions time out statements and lock waits (None: no limit, for migrations)."""
    if is_sqlite(url):
        return _sqlite_engine(url, busy_timeout_s, **kwargs)
    options: dict[str, Any] = {
        "connect_args": {
            "connect_timeout": connect_timeout_s,
            "keepalives": 1,
            "keepalives_idle": PG_KEEPALIVE_IDLE_S,
            "keepalives_interval": PG_KEEPALIVE_INTERVAL_S,
            "keepalives_count": PG_KEEPALIVE_COUNT,
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
        }
    }
    if "poolclass" not in kwargs:
        # No pre-ping: it costs a round trip per request; the repository retries once
        # instead when a pooled connection turns out to be dead (after a server restart).
        options.update(
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_timeout=POOL_TIMEOUT_S,
            pool_recycle=POOL_RECYCLE_S,
        )
    options.update(kwargs)
    engine = create_engine(url, **options)
    session_settings = {
        "statement_timeout": statement_timeout_s,
        "lock_timeout": lock_timeout_s,
        "idle_in_transaction_session_timeout": PG_IDLE_IN_TRANSACTION_TIMEOUT_S,
    }
    limits = {
        name: f"{round(seconds * 1000)}ms"
        for name, seconds in session_settings.items()
        if seconds is not None
    }
    event.listen(engine, "connect", functools.partial(_set_session_limits, limits=limits))
    return engine


def _set_session_limits(dbapi_connection: Any, _record: Any, *, limits: dict[str, str]) -> None:
    # SET on each new connection rather than the `options` startup parameter, which poolers
    # such as PgBouncer refuse by default. One round trip, committed so that it stays.
    calls = ", ".join(f"set_config('{name}', %s, false)" for name in limits)
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", list(limits.values()))
    dbapi_connection.commit()


def _sqlite_engine(url: str | URL, busy_timeout_s: float, **kwargs: Any) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # sqlite3's own timeout installs SQLite's busy handler: writers queue, not fail.
    options: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_s}}
    if "poolclass" not in kwargs:
        options["pool_timeout"] = POOL_TIMEOUT_S
    options.update(kwargs)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer and a commit is one append to the log.
        _switch_to_wal(cursor)
        # NORMAL in WAL mode: durable against process crashes, fsync only at checkpoints.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database file in WAL mode (it stays so), waiting out other first connections.

    Switching needs the file to itself, and SQLite may refuse it at once ("database is
    locked") without calling the busy handler while other connections open a new database
    at the same moment (several workers starting on an empty file): retry for as long as the
    connection's busy timeout.
    """
    waited_ms = 0
    busy_timeout_ms = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or waited_ms >= busy_timeout_ms:
                raise
        time.sleep(WAL_RETRY_MS / 1000)
        waited_ms += WAL_RETRY_MS
