"""Serve the API: gunicorn's arbiter over uvicorn workers; `digitrec serve` calls `run_server`.

The arbiter restarts a worker that dies or hangs, and each worker exits when the arbiter is
gone (even after `kill -9`), so no orphan keeps the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app
from PIL import PngImagePlugin
from uvicorn_worker import UvicornWorker

from digitrec.config import get_settings

APP_FACTORY = "digitrec.api.app:create_app()"  # called in each worker, after the fork
WORKER_CLASS = "digitrec.api.server.Worker"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # same name as in digitrec.api.metrics
GRACEFUL_SHUTDOWN_S = 10  # in-flight requests get this long to finish on SIGTERM
# The arbiter kills (SIGKILL) a worker still there this long after SIGTERM: past uvicorn's own
# graceful shutdown, with time for the app's lifespan shutdown (closing the database pool).
WORKER_EXIT_TIMEOUT_S = GRACEFUL_SHUTDOWN_S + 5
WORKER_TIMEOUT_S = 30  # a worker whose event loop is stuck this long is killed and replaced
PARENT_CHECK_S = 1.0  # how often a worker checks that its arbiter is alive (and heartbeats)
KEEP_ALIVE_S = 5  # idle keep-alive connections close after this (uvicorn's default)
# glibc: allocations of 1 MiB or more get their own mmap, unmapped when freed. Otherwise glibc
# raises that threshold once a large block is freed, and each thread's arena keeps the pixels
# of its largest image (bench/memory.py, four 12 MP PNGs at once: +208 MB instead of +57 MB).
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
# A PNG's text chunks, unpacked, at most (Pillow's default: 64 MB, from a 70 kB upload). The
# service never reads them; more than this is refused as unreadable (422).
PNG_TEXT_BYTES = 1 << 20


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1) -> None:
    """Serve the API until interrupted; `workers` processes share the port."""
    level = get_settings().log_level.upper()
    options: dict[str, Any] = {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "loglevel": level.lower(),
        # Per-request access lines cost more than the prediction; /metrics counts requests.
        "accesslog": "-" if level == "DEBUG" else None,
        "graceful_timeout": WORKER_EXIT_TIMEOUT_S,
        "timeout": WORKER_TIMEOUT_S,
        "keepalive": KEEP_ALIVE_S,
        # No control socket: it would be one fixed path ($HOME/.gunicorn) for every server.
        "control_socket_disable": True,
    }
    _return_freed_memory()  # before the fork: the workers inherit it, and the next line
    PngImagePlugin.MAX_TEXT_MEMORY = PNG_TEXT_BYTES
    own_metrics_dir = _prepare_metrics_dir(make_one=workers > 1)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _Application(options).run()
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


class _Application(BaseApplication):
    """gunicorn run from code: these options, no config file, no command line."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return import_app(APP_FACTORY)


class Worker(UvicornWorker):
    """uvicorn in a gunicorn worker: digitrec's logs, and an exit when the arbiter dies.

    uvicorn-worker heartbeats the arbiter but never looks at it: after a `kill -9` of the
    arbiter its workers would serve on, holding the port. This one checks its parent process
    at each heartbeat and shuts down (gracefully) once it has changed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_notify = PARENT_CHECK_S
        self.config.timeout_graceful_shutdown = GRACEFUL_SHUTDOWN_S
        self.config.access_log = self.cfg.accesslog is not None
        digitrec = logging.getLogger("digitrec")  # on the same handler as gunicorn's own lines
        digitrec.handlers = self.log.error_log.handlers
        digitrec.setLevel(self.log.error_log.level)
        digitrec.propagate = False

    async def callback_notify(self) -> None:
        if os.getppid() != self.ppid:
            self.log.warning("the arbiter (pid %s) is gone; worker %s exits", self.ppid, self.pid)
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        self.notify()


def _return_freed_memory() -> None:
    """Have glibc give large freed blocks back to the system at once (no-op elsewhere)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL(libc_name).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _prepare_metrics_dir(*, make_one: bool) -> Path | None:
    """Empty the configured metrics folder, or (`make_one`) make a temporary one for the
    workers to share; return the folder if we made it."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        # Samples of a previous run would be added to this run's: start from zero.
        for stale in folder.glob("*.db"):
            stale.unlink()
        return None
    if not make_one:
        return None  # one worker: its own in-memory registry is the whole story
    folder = Path(tempfile.mkdtemp(prefix="digitrec-metrics-"))
    # Set before gunicorn forks the workers, which inherit the environment.
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder
