"""The API as deployed: `python -m digitrec serve --workers 2` in a subprocess, over TCP.

Covers what only a real server shows: metrics summed over worker processes, graceful
shutdown, and PostgreSQL going away and coming back under load without losing a row.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from credentials import ADMIN, ADMIN_TOKEN, sid
from deadlines import PATIENT_WRITE_DEADLINE_S
from PIL import Image
from ports import free_port

from digitrec.api.client import ApiClient

START_TIMEOUT_S = 60
WORKERS = 2


@dataclass
class LiveServer:
    """A running server process and its address."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def stop(self) -> int:
        """SIGTERM, as a container runtime sends it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp_path: Path,
    database_url: str,
    model_dir: Path,
    write_deadline_s: float | None = PATIENT_WRITE_DEADLINE_S,
) -> LiveServer:
    """Start the server on a free port and wait until it answers /health; `write_deadline_s`
    None: the service's own write deadline (the outage test's subject)."""
    port = free_port()
    # Only what this test sets: nothing from the developer's DIGITREC_* environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITREC_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DIGITREC_DATA_DIR=str(tmp_path / "data"),
        DIGITREC_DATABASE_URL=database_url,
        DIGITREC_MODEL_DIR=str(model_dir),
        DIGITREC_LOG_LEVEL="INFO",
        DIGITREC_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    if write_deadline_s is not None:
        env["DIGITREC_DB_WRITE_DEADLINE_S"] = str(write_deadline_s)
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port)]
    with log_path.open("w") as log:  # the server holds its own copy of the file
        process = subprocess.Popen(
            [*command, "--workers", str(WORKERS)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"the server did not start in {START_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture
def live_server(tmp_path: Path, database_url: str, tiny_model_dir: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path, database_url, tiny_model_dir)
    yield server
    server.stop()


def _metric_total(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


@pytest.mark.slow
def test_two_workers_serve_and_metrics_add_up_over_both(
    live_server: LiveServer, digit_png: bytes
) -> None:
    def predict_batch(session: int) -> list[str]:
        with ApiClient(live_server.url) as api:  # one connection, kept alive, per thread
            return [api.predict(digit_png, session_id=sid(f"s{session}")).id for _ in range(10)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [i for batch in pool.map(predict_batch, range(4)) for i in batch]

    assert len(set(ids)) == 40
    # Fresh connections land on either worker; each must report both workers' counts.
    for _ in range(6):
        text = httpx.get(
            f"{live_server.url}/metrics", headers={"Connection": "close", **ADMIN}
        ).text
        assert _metric_total(text, "digitrec_predictions_total") == 40
    with ApiClient(live_server.url, admin_token=ADMIN_TOKEN) as api:
        assert api.history(limit=1).count == 40
        readiness = api.ready()
        assert readiness["model"] is True and readiness["database"] is True


@pytest.mark.slow
def test_keep_alive_requests_do_not_wait_for_delayed_acks(live_server: LiveServer) -> None:
    # Without TCP_NODELAY on the workers' connections, each request after the first on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK.
    with httpx.Client(base_url=live_server.url) as http:
        timings = []
        for _ in range(21):
            started = time.perf_counter()
            http.get("/health").raise_for_status()
            timings.append(time.perf_counter() - started)

    assert sorted(timings)[10] < 0.02


@pytest.mark.slow
def test_live_server_refuses_bad_input_with_json_4xx(
    live_server: LiveServer, digit_png: bytes
) -> None:
    huge = io.BytesIO()
    Image.new("L", (7072, 7072), 0).save(huge, format="PNG")  # 50 megapixels, ~50 kB
    digit_b64 = base64.b64encode(digit_png).decode()
    limit = 5 * 1024 * 1024  # Settings' default DIGITREC_MAX_UPLOAD_BYTES
    json_type = {"content-type": "application/json"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for _ in range(limit // 65536 + 20):
            yield b"x" * 65536

    session = {"session_id": sid("s")}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        cases = [
            (http.post("/predict", content=b"x" * (limit + 1), headers=json_type), 413),
            (http.post("/predict", content=chunks(), headers=json_type), 413),
            (http.post("/predict", files={"file": ("a.png", huge.getvalue(), "image/png")}), 413),
            (http.post("/predict", files={"file": ("a.txt", b"text", "text/plain")}), 422),
            (http.post("/predict", json={"image": digit_b64, "model": "nope"}), 404),
            (http.post("/predictions/abc/feedback", json={"actual": 12, **session}), 422),
            (http.post("/predictions/abc/feedback", json={"actual": 1, **session}), 404),
        ]
        # The connection survives refusals: a good request still works after them.
        ok = http.post("/predict", files={"file": ("d.png", digit_png, "image/png")})

    for response, status in cases:
        assert response.status_code == status, response.text
        assert list(response.json()) == ["detail"], response.text
    assert ok.status_code == 200


@pytest.mark.slow
def test_sigterm_stops_the_server_cleanly(live_server: LiveServer) -> None:
    assert live_server.stop() == 0
    assert "Traceback" not in live_server.log()


@pytest.mark.slow
@pytest.mark.postgres
def test_database_outage_under_load_loses_no_prediction(
    tmp_path: Path, disposable_postgres: Any, tiny_model_dir: Path, digit_png: bytes
) -> None:
    database = disposable_postgres  # tests/conftest.py's DisposablePostgres
    server = start_server(tmp_path, str(database.url), tiny_model_dir, write_deadline_s=None)
    answered: list[tuple[str, bool]] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_predicting(worker: int) -> None:
        with ApiClient(server.url) as api:
            while not stop.is_set():
                try:
                    result = api.predict(digit_png, session_id=sid(f"load{worker}"))
                    answered.append((result.id, result.logged))
                except Exception as exc:  # any failure is a finding
                    failures.append(repr(exc))
                time.sleep(0.01)

    threads = [threading.Thread(target=keep_predicting, args=(w,)) for w in range(3)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        database.stop()
        time.sleep(2.0)
        with ApiClient(server.url) as api:
            assert api.ready()["database"] is False
            down = httpx.get(f"{server.url}/stats", headers=ADMIN)
            assert down.status_code == 503
        database.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    try:
        assert failures == []
        assert any(not logged for _, logged in answered), "no prediction was queued"
        with ApiClient(server.url, admin_token=ADMIN_TOKEN) as api:
            deadline = time.monotonic() + 30
            while api.stats().pending_writes and time.monotonic() < deadline:
                time.sleep(0.5)  # each read replays what the outbox holds
            page = api.history(limit=1000)
        print(f"{len(answered)} answered, {sum(not q for _, q in answered)} queued")
        assert page.count == len(answered)
        assert {row.id for row in page.data} == {uid for uid, _ in answered}
    finally:
        server.stop()
