"""A hard limit on one database call: past it, the call's PostgreSQL socket is shut down.

The server enforces statement and lock timeouts, but a server, proxy or network that stops
answering while the TCP connection stays up (a hung connection pooler, a paused VM, a
stopped process behind a live kernel) never sends that error, and the calling thread would
wait on its socket forever. The watchdog cuts the connection instead: the blocked read
returns, psycopg raises, and SQLAlchemy throws the connection away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)


class Alarm:
    """One armed call; `fired` tells whether the watchdog cut its connection."""

    __slots__ = ("connection", "deadline", "fired")

    def __init__(self, connection: Any, deadline: float) -> None:
        self.connection = connection  # the psycopg connection (DB-API level)
        self.deadline = deadline  # time.monotonic() seconds
        self.fired = False


class Watchdog:
    """One thread per process that cuts PostgreSQL connections held past their limit."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed: set[Alarm] = set()
        self._wakes_at: float | None = None  # when the thread next looks; None: sleeping
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def armed(self, dbapi_connection: Any, limit_s: float) -> Iterator[Alarm]:
        """Cut `dbapi_connection` if the block has not finished within `limit_s`."""
        alarm = Alarm(dbapi_connection, time.monotonic() + limit_s)
        if _socket_fd(dbapi_connection) is None:  # SQLite: no socket, and its waits are bounded
            yield alarm
            return
        with self._changed:
            self._armed.add(alarm)
            if self._thread is None or not self._thread.is_alive():
                # Started on first use, not at import: most processes never need it.
                self._thread = threading.Thread(
                    target=self._watch, name="digitrec-db-watchdog", daemon=True
                )
                self._thread.start()
            if self._wakes_at is None or alarm.deadline < self._wakes_at:
                self._changed.notify()
        try:
            yield alarm
        finally:
            with self._changed:
                self._armed.discard(alarm)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for alarm in [a for a in self._armed if a.deadline <= now]:
                    self._armed.discard(alarm)
                    alarm.fired = _cut(alarm.connection)
                self._wakes_at = min((a.deadline for a in self._armed), default=None)
                self._changed.wait(None if self._wakes_at is None else self._wakes_at - now)


def _socket_fd(dbapi_connection: Any) -> int | None:
    """The file descriptor of a live psycopg connection's socket; None for anything else."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None or getattr(dbapi_connection, "closed", True):
        return None
    try:
        fd = int(pgconn.socket)
    except Exception:  # psycopg raises once the connection is lost
        return None
    return fd if fd >= 0 else None


def _cut(dbapi_connection: Any) -> bool:
    # Read the descriptor now, not when armed: the call still holds the connection (it is
    # disarmed only after it lets go), so the descriptor is the connection's own.
    fd = _socket_fd(dbapi_connection)
    if fd is None:
        return False
    logger.warning("a database call exceeded its time limit; cutting its connection")
    try:
        # A duplicate shares the connection: shutting it down wakes the blocked reader with
        # end-of-file, and closing the duplicate leaves psycopg's own descriptor to psycopg.
        with socket.socket(fileno=os.dup(fd)) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True


WATCHDOG = Watchdog()
