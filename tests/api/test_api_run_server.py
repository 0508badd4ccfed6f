"""run_server's pieces: the TCP listener, the shared metrics folder, the command line."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from gunicorn.config import Config
from gunicorn.sock import TCPSocket

from digitrec.api import server
from digitrec.cli import main


def test_listener_gives_accepted_connections_tcp_nodelay() -> None:
    # Without TCP_NODELAY every keep-alive response waits ~40 ms for the client's delayed ACK
    # (uvicorn issue #3149). gunicorn sets it on its listener; Linux copies it to each
    # accepted connection, so the workers need not set it themselves.
    listener = TCPSocket(("127.0.0.1", 0), Config(), logging.getLogger("test"))
    try:
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        accepted, _ = listener.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        accepted.close()
        client.close()
    finally:
        listener.close()


def test_metrics_dir_is_emptied_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(server.MULTIPROC_ENV, str(tmp_path))

    assert server._prepare_metrics_dir(make_one=False) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    monkeypatch.setenv(server.MULTIPROC_ENV, str(tmp_path / "new"))
    assert server._prepare_metrics_dir(make_one=False) is None
    assert (tmp_path / "new").is_dir()  # made even for one worker: samples are written there


def test_metrics_dir_is_made_when_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(server.MULTIPROC_ENV, raising=False)
    assert server._prepare_metrics_dir(make_one=False) is None

    made = server._prepare_metrics_dir(make_one=True)

    assert made is not None and made.is_dir()
    assert os.environ[server.MULTIPROC_ENV] == str(made)
    made.rmdir()


def test_serve_command_passes_host_port_and_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(server, "run_server", lambda *args: calls.append(args))

    runner = CliRunner()
    args = ["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "3"]
    assert runner.invoke(main, args).exit_code == 0
    assert runner.invoke(main, ["serve"]).exit_code == 0

    assert calls == [("0.0.0.0", 9000, 3), (server.DEFAULT_HOST, server.DEFAULT_PORT, 1)]
