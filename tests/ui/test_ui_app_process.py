"""`digitrec app` as a container runs it: SIGTERM stops the page and leaves no process behind.

Linux only (reads /proc), like the deployment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ports import free_port

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def _streamlit_pids(port: int) -> list[int]:
    """Running processes serving Streamlit on this port (zombies excluded)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone while we looked
        if b"streamlit" in argv and str(port).encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_sigterm_to_digitrec_app_leaves_no_streamlit_running(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITREC_")}
    env.update(
        DIGITREC_DATA_DIR=str(tmp_path / "data"),
        DIGITREC_DATABASE_URL=f"sqlite:///{tmp_path / 'app.sqlite3'}",
    )
    log = (tmp_path / "app.log").open("w")
    command = [sys.executable, "-m", "digitrec", "app", "--host", "127.0.0.1", "--port", str(port)]
    app = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"http://127.0.0.1:{port}/_stcore/health"):
            assert app.poll() is None, (tmp_path / "app.log").read_text()
            assert time.monotonic() < deadline, "the page did not start"
            time.sleep(0.2)

        app.send_signal(signal.SIGTERM)  # what `docker stop` sends to PID 1
        app.wait(timeout=STOP_TIMEOUT_S)

        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _streamlit_pids(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _streamlit_pids(port) == []
        assert not _answers(f"http://127.0.0.1:{port}/_stcore/health")
    finally:  # what is left only if the test failed
        if app.poll() is None:
            app.kill()
            app.wait()
        for pid in _streamlit_pids(port):
            os.kill(pid, signal.SIGKILL)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
