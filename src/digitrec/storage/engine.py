"""Engines for SQLite (the zero-setup default) and PostgreSQL, tuned for many short writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# A writer waits this long for SQLite's write lock before the row goes to the outbox.
SQLITE_BUSY_TIMEOUT_S = 5.0
# A PostgreSQL host that does not answer is reported unavailable after this long.
PG_CONNECT_TIMEOUT_S = 3
# Per process: the API runs a few threads per worker; PostgreSQL's default allows 100 clients.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
# A request waits this long for a free pooled connection before the write is queued.
POOL_TIMEOUT_S = 5.0
# Recycle connections before server or proxy idle timeouts cut them.
POOL_RECYCLE_S = 1800


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
    **kwargs: Any,
) -> Engine:
    """An engine for the URL: SQLite in WAL mode with a busy timeout, or pooled PostgreSQL."""
    if is_sqlite(url):
        return _sqlite_engine(url, busy_timeout_s, **kwargs)
    options: dict[str, Any] = {"connect_args": {"connect_timeout": connect_timeout_s}}
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
    return create_engine(url, **options)


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
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: durable against process crashes, fsync only at checkpoints.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
