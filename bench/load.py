"""Load-test the model service on loopback and check that every answered prediction was logged.

    python bench/load.py                       # SQLite and PostgreSQL, 2 workers
    python bench/load.py --database sqlite --seconds 5

For each database it starts `python -m digitrec serve --workers N` on a free port, posts
the page's own canvas PNGs (ten digits drawn with the mouse on the slate in Chromium:
bench/slate_pngs.py) as JSON, and prints:

- one client, one request at a time: p50 and p99 latency, throughput;
- C concurrent clients: throughput, p50, p99, and its ratio to (CPU cores x one-client
  throughput), in --rounds rounds of one client then C (and the median ratio);
- errors (anything but HTTP 200), and the rows in the database against the answers counted.

The load generator is this process (asyncio, raw HTTP/1.1 keep-alive: a few tens of microseconds
per request, so it takes little CPU from the server); the server is a separate process.
PostgreSQL: a fresh database on the server at --postgres-url (dropped afterwards).
Prints numbers only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from slate_pngs import canvas_png
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

WARMUP_S = 1.0  # the first requests of each worker pay for lazy imports and caches
START_TIMEOUT_S = 60
# The operator token of the servers this benchmark starts (the row count reads every session).
ADMIN_TOKEN = "bench-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DRAIN_TIMEOUT_S = 60
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def request_bytes(port: int, digit: int) -> bytes:
    """One complete keep-alive POST /predict request, JSON with the base64 canvas."""
    session_id = f"{digit:032x}"  # one session per digit (ids are 32 hex digits)
    body = json.dumps(
        {"image": base64.b64encode(canvas_png(digit)).decode(), "session_id": session_id}
    ).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Tally:
    """What one load phase measured."""

    latencies_s: list[float] = field(default_factory=list)
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    server_cpu_s: float = 0.0  # CPU the server's processes used meanwhile

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _client(port: int, requests: list[bytes], deadline: float, tally: Tally) -> None:
    """One connection sending requests back to back until the deadline; never drops one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(random.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            tally.latencies_s.append(time.perf_counter() - started)
            if status == 200:
                tally.ok += 1
            else:
                tally.error(f"HTTP {status}")
    except (OSError, asyncio.IncompleteReadError) as exc:
        tally.error(type(exc).__name__)
    finally:
        writer.close()


async def _load(port: int, requests: list[bytes], clients: int, seconds: float) -> Tally:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(port, requests, deadline, tally) for _ in range(clients)))
    tally.elapsed_s = time.perf_counter() - started
    return tally


def run_load(
    server: subprocess.Popen[bytes], port: int, requests: list[bytes], clients: int, seconds: float
) -> Tally:
    """`clients` connections posting for `seconds`; each finishes its last request."""
    cpu_before = server_cpu_s(server.pid)
    tally = asyncio.run(_load(port, requests, clients, seconds))
    tally.server_cpu_s = server_cpu_s(server.pid) - cpu_before
    return tally


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (Linux /proc)."""
    total_ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        process, parent = int(stat.parent.name), int(fields[1])
        if pid in (process, parent):
            total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return total_ticks / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    database_url: str, data_dir: Path, workers: int, model_dir: str | None
) -> tuple[subprocess.Popen[bytes], int]:
    """The API in a subprocess, as `digitrec serve` runs it; returns once /ready says yes."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITREC_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DIGITREC_DATABASE_URL=database_url,
        DIGITREC_DATA_DIR=str(data_dir),
        DIGITREC_ADMIN_TOKEN=ADMIN_TOKEN,  # the row count reads every session
    )
    if model_dir:
        env["DIGITREC_MODEL_DIR"] = model_dir
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", str(workers)], env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return server, port
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.terminate()
    raise SystemExit(f"the server was not ready within {START_TIMEOUT_S} s")


def count_rows(database_url: str, port: int) -> tuple[int, int, int]:
    """(rows in the table, the API's count, writes still queued) once the outbox drained."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    pending = -1
    while time.monotonic() < deadline:
        # A background thread of each worker replays the outbox; /ready says what still waits.
        readiness = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).json()
        pending = int(readiness["outbox"]["pending"])
        if pending == 0:
            break
        time.sleep(0.5)
    api_count = httpx.get(
        f"http://127.0.0.1:{port}/predictions?limit=1", headers=ADMIN, timeout=10
    ).json()
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = int(conn.execute(text("SELECT count(*) FROM prediction_logs")).scalar_one())
    engine.dispose()
    return rows, int(api_count["count"]), pending


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(name: str, tally: Tally) -> float:
    """Print one phase's numbers; return its throughput (requests per second)."""
    throughput = (tally.ok + sum(tally.errors.values())) / tally.elapsed_s
    print(
        f"  {name}: {tally.ok} ok in {tally.elapsed_s:.1f} s = {throughput:.0f} req/s; "
        f"p50 {_ms(_percentile(tally.latencies_s, 50))}, "
        f"p99 {_ms(_percentile(tally.latencies_s, 99))}; errors {tally.errors or 0}; "
        f"server CPU {_ms(tally.server_cpu_s / max(tally.ok, 1))} per request"
    )
    return throughput


def bench_database(name: str, database_url: str, args: argparse.Namespace) -> None:
    """Start a server on this database, load it, and compare rows with answers."""
    print(f"\n{name}: {make_url(database_url).render_as_string(hide_password=True)}")
    with tempfile.TemporaryDirectory(prefix="digitrec-bench-") as data_dir:
        server, port = start_server(database_url, Path(data_dir), args.workers, args.model_dir)
        try:
            requests = [request_bytes(port, digit) for digit in range(10)]
            answered = run_load(server, port, requests, clients=4, seconds=WARMUP_S).ok
            cores = os.cpu_count() or 1
            ratios = []
            # Rounds of one client then many, each pair measured side by side: on a shared
            # machine the ratio of one round varies more than the medians of a few.
            for round_ in range(1, args.rounds + 1):
                one = run_load(server, port, requests, clients=1, seconds=args.seconds)
                many = run_load(server, port, requests, clients=args.clients, seconds=args.seconds)
                prefix = f"round {round_}, " if args.rounds > 1 else ""
                single = report(f"{prefix}1 client", one)
                ratios.append(report(f"{prefix}{args.clients} clients", many) / (cores * single))
                answered += one.ok + many.ok
            print(
                f"  {args.clients} clients / ({cores} cores x 1 client) = "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + (f" (median {statistics.median(ratios):.2f})" if len(ratios) > 1 else "")
            )
            rows, api_count, pending = count_rows(database_url, port)
            print(
                f"  answered 200: {answered}; rows in the table: {rows}; API count: {api_count}; "
                f"still queued: {pending}; missing rows: {answered - rows}"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


def bench_postgres(admin_url: str, args: argparse.Namespace) -> None:
    """The benchmark on a fresh, throwaway database of the PostgreSQL server at admin_url."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"digitrec_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        bench_database("PostgreSQL", url, args)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="of one client, then many")
    parser.add_argument("--model-dir", default=None, help="ONNX folder (default: shipped)")
    args = parser.parse_args()
    print(f"digitrec API load test: {args.workers} workers, {os.cpu_count()} CPU cores")
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="digitrec-bench-db-") as folder:
            bench_database("SQLite", f"sqlite:///{folder}/bench.sqlite3", args)
    if args.database in ("postgres", "both"):
        bench_postgres(args.postgres_url, args)


if __name__ == "__main__":
    main()
