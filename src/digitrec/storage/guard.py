"""A deadline for each request's database write, and a breaker that skips a failing database.

A request must not wait on a database that stopped answering: its write runs on one of the
guard's own threads and the request waits at most `deadline_s` for it; past that (or on any
database error) the caller queues the write in the outbox instead. A write given up on may
still finish later on its thread; that is harmless because every write is idempotent (an
insert by uid, a label only if it is newer).

After a failure the breaker is open: for `cooldown_s` calls fail at once, without waiting,
then a single call goes through as a trial and its success closes the breaker again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from digitrec.contract import StorageUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A write on a healthy database takes milliseconds (an fsync'ed commit); 0.75 s leaves room
# for a busy one, and keeps a request that hits a dead one well under a second.
WRITE_DEADLINE_S = 0.75
# After a failure, writes go straight to the outbox this long before one tries again.
BREAKER_COOLDOWN_S = 2.0
# Threads per process for guarded calls. Each one stuck on a hung database holds one pooled
# connection until the watchdog cuts it; later calls queue behind them and time out.
GUARD_THREADS = 4


class DatabaseGuard:
    """Runs database calls on a few threads of its own, with a deadline and a breaker."""

    def __init__(
        self,
        deadline_s: float = WRITE_DEADLINE_S,
        cooldown_s: float = BREAKER_COOLDOWN_S,
        threads: int = GUARD_THREADS,
    ) -> None:
        self.deadline_s = deadline_s
        self.cooldown_s = cooldown_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="digitrec-db")
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._trial_running = False
        self._stalled = False  # the failure that opened it was a missed deadline

    @property
    def closed(self) -> bool:
        """Whether the last call succeeded (calls go to the database)."""
        return self._open_until is None

    @property
    def stalled(self) -> bool:
        """Whether the breaker is open because the database stopped answering: a read would
        hang too, so callers fail fast instead of trying."""
        return self._open_until is not None and self._stalled

    def call(self, work: Callable[[], T]) -> T:
        """`work()` within the deadline; StorageUnavailableError if it fails, misses the
        deadline, or the breaker is open."""
        future = self._submit(work)
        with self._verdict(future):
            return future.result(timeout=self.deadline_s)

    async def call_async(self, work: Callable[[], T]) -> T:
        """`call` for an event loop: the loop serves other requests while `work` runs."""
        future = self._submit(work)
        with self._verdict(future):
            return await asyncio.wait_for(asyncio.wrap_future(future), self.deadline_s)

    def _submit(self, work: Callable[[], T]) -> Future[T]:
        if not self._admit():
            raise StorageUnavailableError("the database failed a moment ago; not trying yet")
        try:
            return self._pool.submit(work)
        except RuntimeError as exc:  # shut down: the service is closing
            self._release_trial()
            raise StorageUnavailableError("the service is closing") from exc

    @contextlib.contextmanager
    def _verdict(self, future: Future[Any]) -> Iterator[None]:
        """The breaker's verdict on waiting for `future`: a missed deadline or a database
        error trips it, success closes it, anything else (not the database's fault) neither."""
        try:
            yield
        except TimeoutError as exc:
            future.cancel()  # if it has not started (all threads stuck), it never will
            self._trip(stalled=True)
            raise StorageUnavailableError(
                f"the database did not answer within {self.deadline_s:g} s"
            ) from exc
        except StorageUnavailableError:
            self._trip(stalled=False)
            raise
        except BaseException:
            self._release_trial()
            raise
        self._reset()

    def close(self) -> None:
        """Stop taking calls; calls still queued are dropped, running ones finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _admit(self) -> bool:
        with self._lock:
            if self._open_until is None:
                return True
            if self._trial_running or time.monotonic() < self._open_until:
                return False
            self._trial_running = True  # this call is the trial
            return True

    def _trip(self, *, stalled: bool) -> None:
        with self._lock:
            if self._open_until is None:
                logger.warning(
                    "database writes are failing (%s); queueing them in the outbox",
                    "no answer" if stalled else "errors",
                )
            self._open_until = time.monotonic() + self.cooldown_s
            self._stalled = stalled
            self._trial_running = False

    def _reset(self) -> None:
        with self._lock:
            if self._open_until is not None:
                logger.info("the database takes writes again")
            self._open_until = None
            self._stalled = False
            self._trial_running = False

    def _release_trial(self) -> None:
        with self._lock:
            self._trial_running = False
