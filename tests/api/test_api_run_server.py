"""run_server's pieces: the TCP listener, the shared metrics folder, the command line."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from digitrec.api import server
from digitrec.cli import main


def test_listener_for_workers_is_marked_tcp_so_connections_get_nodelay() -> None:
    config = uvicorn.Config(server.APP_FACTORY, factory=True, host="127.0.0.1", port=0)

    listener = server._tcp_listener(config)
    try:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.get_inheritable()
        listener.listen()  # each worker's server does this with the socket it inherits
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        accepted, _ = listener.accept()
        # What asyncio checks before it sets TCP_NODELAY on an accepted connection.
        assert accepted.proto == socket.IPPROTO_TCP
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
