"""`digitrec serve`'s processes: no worker outlives its arbiter; a dead worker is replaced.

Linux only (reads /proc), like the deployment.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from test_api_server import WORKERS, LiveServer, start_server

EXIT_TIMEOUT_S = 10  # workers check their parent every second, then shut down gracefully


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie holds no socket)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _port_is_free(port: int) -> bool:
    """Whether a new server could listen on the port (as gunicorn binds: SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


@pytest.fixture
def server(tmp_path: Path, sqlite_url: str, tiny_model_dir: Path) -> Iterator[LiveServer]:
    live = start_server(tmp_path, sqlite_url, tiny_model_dir)
    first_workers = _children(live.process.pid)
    yield live
    live.stop()
    for pid in first_workers:  # left behind only if the test failed
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_workers_exit_and_free_the_port_when_the_server_is_killed(server: LiveServer) -> None:
    workers = _children(server.process.pid)
    port = urlsplit(server.url).port
    assert len(workers) == WORKERS and port is not None

    server.process.kill()  # kill -9: the arbiter gets no chance to stop its workers
    server.process.wait(timeout=10)

    assert _wait_for(lambda: not any(_running(pid) for pid in workers), EXIT_TIMEOUT_S), (
        f"workers still running {EXIT_TIMEOUT_S} s after the arbiter died:\n{server.log()}"
    )
    assert _port_is_free(port)
    assert "Traceback" not in server.log()


@pytest.mark.slow
def test_a_killed_worker_is_replaced(server: LiveServer) -> None:
    first, *others = _children(server.process.pid)

    os.kill(first, signal.SIGKILL)

    def replaced() -> bool:
        children = _children(server.process.pid)
        return first not in children and len(children) == WORKERS

    assert _wait_for(replaced, EXIT_TIMEOUT_S), server.log()
    assert set(others) <= set(_children(server.process.pid))
    assert _wait_for(lambda: _answers(server.url), 30)
