"""The database as the service reaches it: guarded, migrated on first contact, an outbox behind.

Every write a request waits for goes through the guard (a deadline and a breaker); a read is
refused at once while the database is not answering; writes that could not be made wait in
the outbox and a background replayer applies them when the database takes writes again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from digitrec.contract import StorageUnavailableError
from digitrec.storage.guard import DatabaseGuard
from digitrec.storage.migrate import upgrade
from digitrec.storage.outbox import Outbox
from digitrec.storage.records import PredictionRecord
from digitrec.storage.replayer import REPLAY_INTERVAL_S, Replayer
from digitrec.storage.repository import apply_pending, check_writable

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StorageGateway:
    """One engine, its guard and its outbox; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox,
        *,
        schema_ready: bool = True,
        guard: DatabaseGuard | None = None,
        replay_interval_s: float | None = REPLAY_INTERVAL_S,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.guard = guard or DatabaseGuard()
        # False when the database was down at start: migrate before its first use.
        self._schema_ready = schema_ready
        self._schema_lock = threading.Lock()
        # Queued writes are replayed by a thread of this object (None: only `flush`).
        self._replayer: Replayer | None = None
        if replay_interval_s is not None:
            self._replayer = Replayer(self._replay_when_writable, interval_s=replay_interval_s)
            self._replayer.start()

    def write(self, write: Callable[..., T], *args: Any) -> T:
        """`write(engine, *args)` through the guard: StorageUnavailableError within the write
        deadline if the database does not take it."""
        was_closed = self.guard.closed
        result = self.guard.call(lambda: write(self._migrated_engine(), *args))
        self._after_write(was_closed)
        return result

    async def write_async(self, write: Callable[..., T], *args: Any) -> T:
        """`write` for an event loop, which serves other requests while the database works."""
        was_closed = self.guard.closed
        result = await self.guard.call_async(lambda: write(self._migrated_engine(), *args))
        self._after_write(was_closed)
        return result

    def read_engine(self) -> Engine:
        """The engine for a read: none while the database is not answering (a read would
        hang until the call limit; a 503 now is better). Reads never replay the outbox
        themselves (a request must not wait for it); they ask the replayer to look now."""
        if self._replayer is not None:
            self._replayer.wake()
        if self.guard.stalled:
            raise StorageUnavailableError("the database is not answering; try again shortly")
        return self._migrated_engine()

    def queued_prediction(
        self, prediction_id: str, session_id: str | None
    ) -> PredictionRecord | None:
        """A prediction waiting in the outbox (of `session_id`, when one is given)."""
        queued = self.outbox.find_prediction(prediction_id)
        if queued is None or session_id not in (None, queued.session_id):
            return None
        return queued

    def flush(self) -> int:
        """Write the queued rows and labels now; returns how many (raises if still down)."""
        return self._replay_queued(wait=True)

    def migrate(self) -> None:
        """Bring the schema to the latest revision (raises StorageUnavailableError if down)."""
        with self._schema_lock:
            upgrade(self.engine.url)
            self._schema_ready = True

    def close(self) -> None:
        """Stop replaying; release the guard's threads, pooled connections, the outbox file."""
        if self._replayer is not None:
            self._replayer.stop()
        self.guard.close()
        self.engine.dispose()
        self.outbox.close()

    def _after_write(self, was_closed: bool) -> None:
        if not was_closed and self._replayer is not None:
            self._replayer.wake()  # the database is back: replay what queued meanwhile

    def _migrated_engine(self) -> Engine:
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    upgrade(self.engine.url)
                    self._schema_ready = True
        return self.engine

    def _replay_when_writable(self) -> int:
        """The background replay: if anything waits and the database takes a write now."""
        if self.guard.closed and self._schema_ready and not self.outbox.has_pending():
            return 0
        self.write(check_writable)  # also the breaker's trial, and the first migration
        try:
            return self._replay_queued(wait=False)
        except StorageUnavailableError as exc:  # it took a write, yet refused the queue
            logger.warning("the outbox could not be replayed: %s", exc)
            raise

    def _replay_queued(self, *, wait: bool) -> int:
        if not self.outbox.has_pending():
            return 0
        engine = self._migrated_engine()
        # Raises StorageUnavailableError when the database refuses a batch; everything stays
        # queued and the replayer tries again later.
        return self.outbox.drain(lambda r, f: apply_pending(engine, r, f), wait=wait)
