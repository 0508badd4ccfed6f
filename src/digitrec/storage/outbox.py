"""A durable local queue of writes the database could not take, replayed when it is back."""

# The folder is shared by every process of the app (API workers, replicas on one volume):
#
#   <pid>-<rand>.jsonl          one process's queue: JSON lines, each fsync'ed before answering
#   <pid>-<rand>.count          how many lines that queue holds (8 bytes, rewritten per append)
#   replay-<pid>-<rand>.jsonl   a queue (with its .count) claimed by a replay
#   .flush.lock                 held by the one process that replays
#
# Appending never reads a queue file, and counting reads only the .count files (one per
# process), so both cost the same with 10 writes queued as with 50,000. A replay renames
# every queue under that queue's flock (so no append is half done); the appender notices
# that its file is gone from its path and starts a new one, so appends never wait for a
# replay. The replay then applies the claimed files in short transactions, inserts first,
# then feedback oldest first, and only then deletes them. One cut short leaves them claimed
# for the next replay, which applies them again: every queued write is idempotent.

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from digitrec.contract import OutboxFullError
from digitrec.storage.outbox_lines import decode_line, encode_line, find_insert, read_lines
from digitrec.storage.records import Feedback, PredictionRecord

logger = logging.getLogger(__name__)

QUEUE_SUFFIX = ".jsonl"
COUNT_SUFFIX = ".count"
CLAIMED_PREFIX = "replay-"
FLUSH_LOCK_NAME = ".flush.lock"
COUNT_FORMAT = "<Q"  # a .count file: the queue's number of lines, unsigned 64-bit
# At about 8 kB a queued prediction (the canvas PNG and the 28x28 input, base64): ~400 MB.
DEFAULT_CAPACITY = 50_000
# Rows per replay transaction: short enough that a replay never holds the table for long.
REPLAY_BATCH_ROWS = 500

Apply = Callable[[Sequence[PredictionRecord], Sequence[Feedback]], None]


@dataclass
class _Queue:
    """This process's open queue file and its .count file."""

    name: str  # without suffix, e.g. "1234-0a1b2c3d4e5f"
    fd: int
    count_fd: int
    pid: int
    lines: int = 0

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.count_fd)


class Outbox:
    """Append-only, fsync'ed queue files in one folder, safe across threads and processes.

    `capacity` is a soft cap on queued writes over all processes: an append that finds the
    outbox full raises OutboxFullError (two processes appending at that moment may each add
    one more).
    """

    def __init__(self, directory: Path, capacity: int = DEFAULT_CAPACITY) -> None:
        self.directory = Path(directory)
        self.capacity = capacity
        self._lock = threading.Lock()  # orders this process's appends to its own file
        self._queue: _Queue | None = None
        # This process's queued predictions: uid -> (queue name, offset, length of its line).
        self._index: dict[str, tuple[str, int, int]] = {}
        self._refusing = False  # logged that the outbox is full; reset by the next append

    def append_prediction(self, record: PredictionRecord) -> None:
        """Queue a prediction insert; returns once it is on disk."""
        self._append(encode_line(record), uid=record.uid)

    def append_feedback(self, feedback: Feedback) -> None:
        """Queue a feedback update; returns once it is on disk."""
        self._append(encode_line(feedback))

    def has_pending(self) -> bool:
        """Whether any process left queued writes (one directory listing, no reads)."""
        return any(
            entry.name.endswith(QUEUE_SUFFIX) and entry.stat().st_size > 0
            for entry in self._entries()
        )

    def count(self) -> int:
        """How many writes are queued, over every process's file (reads only .count files).

        Queue files of a release before .count files existed are not counted (only replayed).
        """
        return sum(
            _read_count(entry.path)
            for entry in self._entries()
            if entry.name.endswith(COUNT_SUFFIX)
        )

    def find_prediction(self, uid: str) -> PredictionRecord | None:
        """The queued prediction with this uid, if it is still waiting.

        One line read for this process's own predictions; another process's (a request that
        lands on another worker) needs a search of the other queue files.
        """
        with self._lock:
            own = self._index.get(uid)
        if own is not None:
            return self._read_own(uid, *own)
        current = self._queue.name if self._queue is not None else None
        for path in self._queue_paths():
            if current is not None and path.name == current + QUEUE_SUFFIX:
                continue  # this process's own lines are all in the index
            with contextlib.suppress(FileNotFoundError):  # replayed meanwhile
                found = find_insert(path.read_bytes(), uid)
                if found is not None:
                    return found
        return None

    def drain(self, apply: Apply, *, wait: bool = True, batch_rows: int = REPLAY_BATCH_ROWS) -> int:
        """Pass every queued write to `apply` in batches, then delete them; returns how many.

        Inserts go first, in queue order, then feedback, oldest first. If `apply` raises,
        nothing is deleted (a later drain applies everything again). wait=False: give up at
        once when someone else is already draining.
        """
        if not self.directory.is_dir():
            return 0
        with self._flush_lock(wait) as acquired:
            if not acquired:
                return 0
            claimed = self._claim_queues()
            records: list[PredictionRecord] = []
            feedback: list[Feedback] = []
            applied = 0
            for path in claimed:
                for item in read_lines(path):
                    if isinstance(item, Feedback):
                        feedback.append(item)
                        continue
                    records.append(item)
                    if len(records) == batch_rows:
                        apply(records, [])
                        applied, records = applied + len(records), []
            feedback.sort(key=lambda f: f.feedback_at)
            batches = [feedback[i : i + batch_rows] for i in range(0, len(feedback), batch_rows)]
            for batch in batches or [[]]:
                if records or batch:
                    apply(records, batch)  # the last inserts travel with the first feedback
                applied, records = applied + len(records) + len(batch), []
            for path in claimed:
                path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    path.with_suffix(COUNT_SUFFIX).unlink()
            if claimed:
                _fsync_dir(self.directory)
            return applied

    def close(self) -> None:
        """Close this process's queue file (it stays on disk if it holds writes)."""
        with self._lock:
            if self._queue is not None and self._queue.pid == os.getpid():
                self._queue.close()
            self._queue = None

    def _append(self, payload: bytes, uid: str | None = None) -> None:
        line = payload + b"\n"
        with self._lock:
            queued = self.count()
            if queued >= self.capacity:
                self._refuse(queued)
            while True:
                queue = self._own_queue()
                fcntl.flock(queue.fd, fcntl.LOCK_EX)
                try:
                    offset = self._offset_if_still_ours(queue)
                    if offset is None:
                        # A replay claimed this file: start a new one.
                        queue.close()
                        self._queue = None
                        continue
                    self._write_line(queue, line, offset)
                finally:
                    if self._queue is queue:
                        fcntl.flock(queue.fd, fcntl.LOCK_UN)
                if uid is not None:
                    self._index[uid] = (queue.name, offset, len(line))
                self._refusing = False
                return

    def _refuse(self, queued: int) -> None:
        if not self._refusing:
            logger.warning(
                "outbox %s is full (%d writes queued, capacity %d): refusing writes until "
                "the database takes them",
                self.directory,
                queued,
                self.capacity,
            )
            self._refusing = True
        raise OutboxFullError(
            f"the database takes no writes and the outbox is full ({queued} queued)"
        )

    def _offset_if_still_ours(self, queue: _Queue) -> int | None:
        """The file's size if it is still this process's queue; None once a replay took it."""
        status = os.fstat(queue.fd)
        if status.st_nlink == 0:
            return None  # deleted (by a replay of an earlier release)
        try:
            at_path = os.stat(self.directory / (queue.name + QUEUE_SUFFIX))
        except FileNotFoundError:
            return None  # renamed to replay-...
        return status.st_size if at_path.st_ino == status.st_ino else None

    def _write_line(self, queue: _Queue, line: bytes, offset: int) -> None:
        try:
            _write_all(queue.fd, line)
            os.fsync(queue.fd)
        except OSError as exc:
            # A disk that is full: take the torn line back, so that the next append starts a
            # clean line, and refuse the write like a full outbox.
            with contextlib.suppress(OSError):
                os.ftruncate(queue.fd, offset)
            raise OutboxFullError(f"the outbox cannot be written: {exc}") from exc
        queue.lines += 1
        # Not fsync'ed: the count is for reports and the cap; the lines are the record.
        os.pwrite(queue.count_fd, struct.pack(COUNT_FORMAT, queue.lines), 0)

    def _own_queue(self) -> _Queue:
        if self._queue is not None and self._queue.pid == os.getpid():
            return self._queue
        # First append in this process (after a fork, or after a replay took the last file).
        self.directory.mkdir(parents=True, exist_ok=True)
        self._forget_replayed()
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        flags = os.O_CREAT | os.O_EXCL
        count_fd = os.open(self.directory / (name + COUNT_SUFFIX), flags | os.O_RDWR, 0o600)
        os.pwrite(count_fd, struct.pack(COUNT_FORMAT, 0), 0)
        fd = os.open(
            self.directory / (name + QUEUE_SUFFIX), flags | os.O_WRONLY | os.O_APPEND, 0o600
        )
        _fsync_dir(self.directory)
        self._queue = _Queue(name, fd, count_fd, os.getpid())
        return self._queue

    def _forget_replayed(self) -> None:
        """Drop index entries whose queue file is gone (replayed into the database)."""
        for name in {name for name, _, _ in self._index.values()}:
            if not any(path.exists() for path in self._paths_of(name)):
                self._index = {uid: at for uid, at in self._index.items() if at[0] != name}

    def _read_own(self, uid: str, name: str, offset: int, length: int) -> PredictionRecord | None:
        for path in self._paths_of(name):  # still queued, or claimed by a replay
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                line = os.pread(fd, length, offset)
            finally:
                os.close(fd)
            item = decode_line(line)
            return item if isinstance(item, PredictionRecord) and item.uid == uid else None
        return None  # replayed: the row is in the database

    def _paths_of(self, name: str) -> tuple[Path, Path]:
        return (
            self.directory / (name + QUEUE_SUFFIX),
            self.directory / (CLAIMED_PREFIX + name + QUEUE_SUFFIX),
        )

    def _claim_queues(self) -> list[Path]:
        """Rename every non-empty queue to replay-...; returns all claimed files, oldest first."""
        claimed = [p for p in self._queue_paths() if p.name.startswith(CLAIMED_PREFIX)]
        for path in self._queue_paths():
            if path.name.startswith(CLAIMED_PREFIX):
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits for an append in progress to finish
                status = os.fstat(fd)
                if status.st_nlink == 0 or status.st_size == 0:
                    continue  # gone meanwhile, or nothing queued in it yet
                target = path.with_name(CLAIMED_PREFIX + path.name)
                with contextlib.suppress(FileNotFoundError):  # an earlier release's queue
                    path.with_suffix(COUNT_SUFFIX).rename(target.with_suffix(COUNT_SUFFIX))
                path.rename(target)
                claimed.append(target)
            finally:
                os.close(fd)  # closing releases the lock
        if claimed:
            _fsync_dir(self.directory)
        return claimed

    def _queue_paths(self) -> list[Path]:
        return sorted(
            Path(entry.path) for entry in self._entries() if entry.name.endswith(QUEUE_SUFFIX)
        )

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as entries:
                return list(entries)
        except FileNotFoundError:
            return []

    @contextmanager
    def _flush_lock(self, wait: bool) -> Iterator[bool]:
        fd = os.open(self.directory / FLUSH_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock


def _read_count(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0  # replayed meanwhile
    try:
        data = os.pread(fd, struct.calcsize(COUNT_FORMAT), 0)
    finally:
        os.close(fd)
    if len(data) != struct.calcsize(COUNT_FORMAT):
        return 0  # just created, not written yet
    count: int = struct.unpack(COUNT_FORMAT, data)[0]
    return count


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    # Makes a created, renamed or deleted queue file's directory entry itself durable.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
