"""Serve the API with uvicorn; `digitrec serve --workers 2` is the command that calls it."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from digitrec.config import get_settings

APP_FACTORY = "digitrec.api.app:create_app"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # same name as in digitrec.api.metrics
GRACEFUL_SHUTDOWN_S = 10  # in-flight requests get this long to finish on SIGTERM


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1) -> None:
    """Serve the API until interrupted; `workers` processes share the port."""
    settings = get_settings()
    level = settings.log_level.upper()
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=level.lower(),
        log_config=_log_config(level),
        # Per-request access lines cost more than the prediction; /metrics counts requests.
        access_log=level == "DEBUG",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    own_metrics_dir = _prepare_metrics_dir(make_one=workers > 1)
    try:
        if workers <= 1:
            uvicorn.Server(config).run()
            return
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[_tcp_listener(config)]).run()
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _tcp_listener(config: uvicorn.Config) -> socket.socket:
    """uvicorn's listening socket, marked as TCP so that asyncio sets TCP_NODELAY.

    uvicorn binds it with protocol 0; accepted connections inherit that, and asyncio enables
    TCP_NODELAY only on sockets that say IPPROTO_TCP. Without it every keep-alive response
    waits about 40 ms for the client's delayed ACK (uvicorn issue #3149).
    """
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    listener = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    listener.set_inheritable(True)
    return listener


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
        return None  # one process: its own in-memory registry is the whole story
    folder = Path(tempfile.mkdtemp(prefix="digitrec-metrics-"))
    # Set before uvicorn starts the workers, which inherit the environment.
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup, with digitrec's own loggers on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["digitrec"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config
