"""A durable local queue of writes the database could not take, replayed when it is back."""

# How it stays safe with several processes: each process appends JSON lines to its own file
# in the outbox folder, under that file's flock, and fsyncs each line before answering. A
# flusher (any process) takes the folder's flush lock, then every file's lock, applies all
# queued writes in one database transaction and only then deletes the files. An appender
# that finds its file deleted under it (st_nlink == 0) starts a new one.

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from digitrec.storage.records import Feedback, PredictionRecord

QUEUE_SUFFIX = ".jsonl"
FLUSH_LOCK_NAME = ".flush.lock"

INSERT, FEEDBACK = "insert", "feedback"
OPERATIONS: dict[str, type[PredictionRecord] | type[Feedback]] = {
    INSERT: PredictionRecord,
    FEEDBACK: Feedback,
}

Apply = Callable[[Sequence[PredictionRecord], Sequence[Feedback]], None]


class Outbox:
    """Append-only, fsync'ed queue files in one folder, safe across threads and processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()  # orders this process's appends to its own file
        self._fd: int | None = None
        self._owner_pid: int | None = None

    def append_prediction(self, record: PredictionRecord) -> None:
        """Queue a prediction insert; returns once it is on disk."""
        self._append(_encode(INSERT, record))

    def append_feedback(self, feedback: Feedback) -> None:
        """Queue a feedback update; returns once it is on disk."""
        self._append(_encode(FEEDBACK, feedback))

    def has_pending(self) -> bool:
        """Whether any process left queued writes (one directory listing, no reads)."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return False
        return any(e.name.endswith(QUEUE_SUFFIX) and e.stat().st_size > 0 for e in entries)

    def count(self) -> int:
        """How many writes are queued, over every process's file."""
        return sum(data.count(b"\n") for data in self._read_files())

    def find_prediction(self, uid: str) -> PredictionRecord | None:
        """The queued prediction with this uid, if it is still waiting."""
        for data in self._read_files():
            for item in _decode_lines(data):
                if isinstance(item, PredictionRecord) and item.uid == uid:
                    return item
        return None

    def drain(self, apply: Apply, *, wait: bool = True) -> int:
        """Pass every queued write to `apply`, then delete them; returns how many there were."""
        # Inserts keep queue order, feedback goes oldest first. If `apply` raises, nothing is
        # deleted. wait=False: give up at once when someone else is already draining.
        if not self.directory.is_dir():
            return 0
        with self._flush_lock(wait) as acquired:
            if not acquired:
                return 0
            with ExitStack() as held:
                records: list[PredictionRecord] = []
                feedback: list[Feedback] = []
                drained: list[Path] = []
                for path in sorted(self.directory.glob(f"*{QUEUE_SUFFIX}")):
                    data = _lock_and_read(path, held)
                    if data is None:
                        continue
                    for item in _decode_lines(data):
                        if isinstance(item, PredictionRecord):
                            records.append(item)
                        else:
                            feedback.append(item)
                    drained.append(path)
                if not drained:
                    return 0
                feedback.sort(key=lambda f: f.feedback_at)
                if records or feedback:
                    apply(records, feedback)
                for path in drained:
                    path.unlink()
                _fsync_dir(self.directory)
                return len(records) + len(feedback)

    def close(self) -> None:
        """Close this process's queue file (it stays on disk if it holds writes)."""
        with self._lock:
            if self._fd is not None and self._owner_pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _append(self, payload: bytes) -> None:
        line = payload + b"\n"
        with self._lock:
            while True:
                fd = self._own_file()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if os.fstat(fd).st_nlink == 0:
                        # A flusher applied and deleted this file: start a new one.
                        os.close(fd)
                        self._fd = None
                        continue
                    _write_all(fd, line)
                    os.fsync(fd)
                    return
                finally:
                    if self._fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)

    def _own_file(self) -> int:
        if self._fd is not None and self._owner_pid == os.getpid():
            return self._fd
        # First append in this process (or after a fork): a file of its own.
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}{QUEUE_SUFFIX}"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        self._fd = os.open(self.directory / name, flags, 0o600)
        self._owner_pid = os.getpid()
        _fsync_dir(self.directory)
        return self._fd

    def _read_files(self) -> Iterator[bytes]:
        try:
            paths = sorted(self.directory.glob(f"*{QUEUE_SUFFIX}"))
        except FileNotFoundError:
            return
        for path in paths:
            try:
                yield path.read_bytes()
            except FileNotFoundError:
                continue  # drained meanwhile

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


def _lock_and_read(path: Path, held: ExitStack) -> bytes | None:
    """Lock a queue file until `held` closes and read it; None if it is already gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    held.callback(os.close, fd)
    fcntl.flock(fd, fcntl.LOCK_EX)  # waits for an append in progress to finish
    if os.fstat(fd).st_nlink == 0:
        return None
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_lines(data: bytes) -> Iterator[PredictionRecord | Feedback]:
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            yield _decode(line)
        except (ValueError, KeyError, TypeError):
            # Only a crash in the middle of an append leaves a torn line, and that write
            # was never acknowledged to anyone. (pydantic's ValidationError is a ValueError.)
            continue


def _encode(op: str, item: PredictionRecord | Feedback) -> bytes:
    """One queue line: `{"op": ..., <the item's fields>}`, bytes as base64."""
    return (json.dumps({"op": op, **item.model_dump(mode="json")}, separators=(",", ":"))).encode()


def _decode(line: bytes) -> PredictionRecord | Feedback:
    fields = json.loads(line)
    op = fields.pop("op")
    if op not in OPERATIONS:
        raise ValueError(f"unknown outbox operation {op!r}")
    return OPERATIONS[op].model_validate(fields)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    # Makes a created or deleted queue file's directory entry itself durable.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
