"""A background thread that replays the outbox into the database, never a request's work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from digitrec.contract import StorageUnavailableError

logger = logging.getLogger(__name__)

# How often an idle process looks for queued writes (a directory listing) and, while the
# database is failing, how often it tries it at first; each failure doubles the wait, up to
# the maximum, so a long outage costs a probe every few seconds, not a replay every second.
REPLAY_INTERVAL_S = 1.0
REPLAY_MAX_BACKOFF_S = 8.0
STOP_TIMEOUT_S = 15.0  # a replay in progress is bounded by the database call limit


class Replayer:
    """Calls `replay` (which replays the outbox if the database takes writes, and raises
    StorageUnavailableError if not) every `interval_s`, and when woken."""

    def __init__(
        self,
        replay: Callable[[], int],
        *,
        interval_s: float = REPLAY_INTERVAL_S,
        max_backoff_s: float = REPLAY_MAX_BACKOFF_S,
    ) -> None:
        self._replay = replay
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digitrec-replay", daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def wake(self) -> None:
        """Try now instead of at the next interval (e.g. the database just took a write)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread, letting a replay in progress finish."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)

    def _run(self) -> None:
        delay = self.interval_s
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                replayed = self._replay()
            except StorageUnavailableError as exc:
                logger.debug("outbox not replayed: %s", exc)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except Exception:  # a bug must not end the thread: log it and try again later
                logger.exception("the outbox could not be replayed")
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if replayed:
                logger.info("replayed %d queued writes into the database", replayed)
            delay = self.interval_s
