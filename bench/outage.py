"""Outage benchmark: predictions while PostgreSQL hangs, and predict latency with a full outbox.

    python bench/outage.py
    python bench/outage.py --hang-seconds 10 --clients 8 --queued 16000

It makes a fresh database on the PostgreSQL server at --postgres-url, puts a TCP proxy in
front of it (tests/integration/tcp_proxy.py: it can stop forwarding without closing any
connection, a database that hangs), and starts `python -m digitrec serve --workers 2` with
DIGITREC_DATABASE_URL pointing at the proxy (bench/load.py's helpers). Then:

1. Hang: C clients post canvas PNGs for the whole phase while the proxy stops forwarding for
   --hang-seconds in its middle. Prints p50, p99 and max latency of the predictions sent
   during the hang, how many were queued (`logged: false`), errors; then, sending no request,
   waits for the background replay and says whether every answered prediction is in the
   table, and whether any is there twice.
2. Queued rows: with the proxy paused again, one client's predict latency (p50, p99) with the
   outbox (nearly) empty, then with --queued more rows in it (written into the outbox folder
   by this process, as another worker's would be); then the proxy resumes and it prints how
   long the background replay took.

Prints numbers only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from load import DEFAULT_POSTGRES_URL, request_bytes, start_server
from slate_pngs import canvas_png
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from digitrec.preprocessing import encode_png, to_mnist
from digitrec.storage import Outbox, PredictionRecord

# The tests' pausable proxy (tests/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from tcp_proxy import TcpProxy

LEAD_S = 2.0  # load before the hang starts
TAIL_S = 4.0  # load after it ends
REPLAY_TIMEOUT_S = 180.0


@dataclass
class Answer:
    """One request: when it was sent, how long it took, what came back."""

    sent_at: float
    seconds: float
    status: int
    uid: str | None = None
    logged: bool | None = None


@dataclass
class Log:
    """Every request of a phase, and the connection errors."""

    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _client(port: int, requests: list[bytes], stop_at: float, log: Log) -> None:
    """One keep-alive connection posting back to back until `stop_at`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        i = 0
        while time.perf_counter() < stop_at:
            sent_at = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            answer = Answer(sent_at, time.perf_counter() - sent_at, status)
            if status == 200:
                fields = json.loads(body)
                answer.uid, answer.logged = fields["id"], fields["logged"]
            log.answers.append(answer)
    except (OSError, asyncio.IncompleteReadError) as exc:
        log.errors.append(repr(exc))
    finally:
        writer.close()


async def _load(requests: list[bytes], port: int, clients: int, seconds: float) -> Log:
    log = Log()
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(*(_client(port, requests, stop_at, log) for _ in range(clients)))
    return log


def load_with_hang(port: int, proxy: TcpProxy, clients: int, hang_s: float) -> tuple[Log, float]:
    """Load for LEAD_S + hang_s + TAIL_S, the proxy paused for hang_s; returns (log, pause time)."""

    requests = [request_bytes(port, digit) for digit in range(10)]  # before the clock starts

    async def run() -> tuple[Log, float]:
        loading = asyncio.create_task(_load(requests, port, clients, LEAD_S + hang_s + TAIL_S))
        await asyncio.sleep(LEAD_S)
        paused_at = time.perf_counter()
        proxy.pause()
        await asyncio.sleep(hang_s)
        proxy.resume()
        return await loading, paused_at

    return asyncio.run(run())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def describe(name: str, answers: list[Answer]) -> None:
    seconds = [a.seconds for a in answers]
    statuses: dict[int, int] = {}
    for answer in answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    queued = sum(1 for a in answers if a.logged is False)
    print(
        f"  {name}: {len(answers)} requests; p50 {_ms(_quantile(seconds, 50))}, "
        f"p99 {_ms(_quantile(seconds, 99))}, max {_ms(max(seconds))}; "
        f"status {statuses}; queued (logged: false) {queued}"
    )


def table_uids(database_url: str) -> list[str]:
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as conn:
        uids = [row[0] for row in conn.execute(text("SELECT uid FROM prediction_logs"))]
    engine.dispose()
    return uids


def wait_for_rows(database_url: str, expected: set[str]) -> tuple[float, list[str]]:
    """Poll the table (not the service) until it holds `expected`; (seconds, uids)."""
    started = time.perf_counter()
    uids = table_uids(database_url)
    while not expected <= set(uids) and time.perf_counter() - started < REPLAY_TIMEOUT_S:
        time.sleep(0.25)
        uids = table_uids(database_url)
    return time.perf_counter() - started, uids


def pending_writes(port: int) -> int:
    readiness = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()
    return int(readiness["outbox"]["pending"])


def fill_outbox(folder: Path, rows: int) -> list[str]:
    """Queue `rows` predictions of a drawn 3 in the outbox folder, as a worker would."""
    canvas = canvas_png(3)
    image = encode_png(to_mnist(canvas))
    outbox = Outbox(folder, capacity=rows + 1_000_000)
    uids = []
    for _ in range(rows):
        record = PredictionRecord(
            uid=uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            session_id="0" * 32,
            model="default",
            prediction=3,
            confidence=0.9,
            probabilities=[0.01] * 9 + [0.91],
            latency_ms=3.0,
            image_png=image,
            canvas_png=canvas,
        )
        outbox.append_prediction(record)
        uids.append(record.uid)
    outbox.close()
    return uids


def bench_hang(database_url: str, port: int, proxy: TcpProxy, args: argparse.Namespace) -> None:
    print(f"\n1. the database hangs for {args.hang_seconds:g} s under {args.clients} clients")
    log, paused_at = load_with_hang(port, proxy, args.clients, args.hang_seconds)
    resumed_at = paused_at + args.hang_seconds
    during = [a for a in log.answers if paused_at <= a.sent_at < resumed_at]
    describe("before", [a for a in log.answers if a.sent_at < paused_at])
    describe("during the hang", during)
    describe("after", [a for a in log.answers if a.sent_at >= resumed_at])
    print(f"  connection errors: {log.errors or 0}")
    answered = {a.uid for a in log.answers if a.uid is not None}
    seconds, uids = wait_for_rows(database_url, answered)
    missing = answered - set(uids)
    print(
        f"  answered 200: {len(answered)}; in the table {REPLAY_TIMEOUT_S:g} s later at most: "
        f"{len(answered) - len(missing)} (missing {len(missing)}), after {seconds:.1f} s of "
        f"background replay with no request sent; rows twice: {len(uids) - len(set(uids))}"
    )


def bench_queued(
    database_url: str, port: int, proxy: TcpProxy, outbox_dir: Path, args: argparse.Namespace
) -> None:
    print(f"\n2. one client during an outage, outbox empty vs {args.queued} queued rows")
    requests = [request_bytes(port, digit) for digit in range(10)]
    proxy.pause()
    # Each worker meets the hang, and its breaker opens.
    warmup = asyncio.run(_load(requests, port, 2, 2.0))
    answered = {a.uid for a in warmup.answers if a.uid is not None}
    for queued in (0, args.queued):
        if queued:
            started = time.perf_counter()
            answered |= set(fill_outbox(outbox_dir, queued))
            print(f"  wrote {queued} rows into the outbox in {time.perf_counter() - started:.1f} s")
        pending = pending_writes(port)
        log = asyncio.run(_load(requests, port, 1, args.seconds))
        answered |= {a.uid for a in log.answers if a.uid is not None}
        describe(f"{pending} writes pending at the start", log.answers)
    proxy.resume()
    seconds, uids = wait_for_rows(database_url, answered)
    missing = answered - set(uids)
    print(
        f"  proxy resumed: {len(answered) - len(missing)} of {len(answered)} queued rows in the "
        f"table after {seconds:.1f} s of background replay; pending now {pending_writes(port)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin URL")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=8, help="clients during the hang")
    parser.add_argument("--hang-seconds", type=float, default=10.0)
    parser.add_argument("--queued", type=int, default=16_000, help="rows put in the outbox")
    parser.add_argument("--seconds", type=float, default=5.0, help="one-client phases")
    parser.add_argument("--model-dir", default=None, help="ONNX folder (default: shipped)")
    args = parser.parse_args()

    admin_url = make_url(args.postgres_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"digitrec_outage_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        with TcpProxy(_upstream(admin_url)) as proxy, tempfile.TemporaryDirectory() as folder:
            proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
            data_dir = Path(folder)
            server, port = start_server(
                proxied.render_as_string(hide_password=False),
                data_dir,
                args.workers,
                args.model_dir,
            )
            try:
                print(f"digitrec outage benchmark: {args.workers} workers, database {name}")
                bench_hang(database_url, port, proxy, args)
                bench_queued(database_url, port, proxy, data_dir / "outbox", args)
            finally:
                proxy.resume()
                server.terminate()
                server.wait(timeout=30)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _upstream(url: URL) -> tuple[str, int]:
    return url.host or "127.0.0.1", url.port or 5432


if __name__ == "__main__":
    main()
