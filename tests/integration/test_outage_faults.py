"""Databases that hang or refuse writes: requests still answer in about a second, every
prediction is queued instead of failing, /ready tells the truth, and the background replay
writes everything once the database is back, with no request needed and no row twice."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from event_loops import run_in_new_loop
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool
from tcp_proxy import TcpProxy

from digitrec.api.app import create_app
from digitrec.config import Settings
from digitrec.contract import StorageUnavailableError
from digitrec.schemas import PredictionPublic
from digitrec.service import PredictionService, build_service
from digitrec.storage import repository

Draw = Callable[..., np.ndarray]

# A request that meets a silent database answers after the write deadline (0.75 s); this
# leaves room for a busy test machine and still says "about a second".
ANSWER_WITHIN_S = 1.5
SESSION = "5e55101d" * 4  # a session id as the API makes them: 32 hex digits
REPLAY_WITHIN_S = 30.0
MOVED_TABLE = "prediction_logs_moved"
HUNG_WRITE_DEADLINE_S = 4.0


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A pausable TCP proxy in front of the PostgreSQL server of `postgres_url`."""
    with TcpProxy(_upstream(make_url(postgres_url))) as made:
        yield made


@pytest.fixture
def proxied_url(postgres_url: str, proxy: TcpProxy) -> str:
    """`postgres_url`, reached through the proxy."""
    url = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port, query={})
    return url.render_as_string(hide_password=False)


def _upstream(url: URL) -> tuple[str, int] | str:
    if url.host:
        return url.host, url.port or 5432
    socket_dir = url.query["host"]  # a server reached over its Unix socket (pgserver)
    return f"{socket_dir}/.s.PGSQL.{url.port or 5432}"


def make_service(url: str, tmp_path: Path, model_dir: Path) -> PredictionService:
    settings = Settings(data_dir=tmp_path / "data", database_url=url, model_dir=model_dir)
    return build_service(settings)


def direct_engine(url: str) -> Engine:
    """An engine of the test's own, past the proxy and the service, to look at the rows."""
    return create_engine(url, poolclass=NullPool)


def table_rows(engine: Engine, table: str = "prediction_logs") -> dict[str, int | None]:
    """uid -> actual of every row; fails if a uid is there twice."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT uid, actual FROM {table}")).all()
    assert len(rows) == len({uid for uid, _ in rows})
    return dict(rows)  # type: ignore[arg-type]


def wait_for_rows(engine: Engine, expected: dict[str, int | None]) -> None:
    """Wait, sending the service no request, until the table holds exactly `expected`."""
    deadline = time.monotonic() + REPLAY_WITHIN_S
    while table_rows(engine) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert table_rows(engine) == expected


def timed_predict(service: PredictionService, image: np.ndarray) -> tuple[PredictionPublic, float]:
    started = time.perf_counter()
    prediction = service.predict(image, session_id=SESSION)
    return prediction, time.perf_counter() - started


# --- a database that stops answering ------------------------------------------------------


@pytest.mark.postgres
def test_outage_hung_database_predictions_answer_fast_and_land_once(
    postgres_url: str,
    proxied_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    service = make_service(proxied_url, tmp_path, tiny_model_dir)
    first = service.predict(make_digit("one"), session_id=SESSION)
    assert first.logged  # a pooled connection, now through the proxy

    proxy.pause()
    with ThreadPoolExecutor(max_workers=4) as clients:
        during = list(clients.map(lambda _: timed_predict(service, make_digit("zero")), range(16)))
    ready_started = time.perf_counter()
    readiness = service.ready()
    ready_s = time.perf_counter() - ready_started
    with TestClient(create_app(service=service)) as api:
        probe_started = time.perf_counter()
        probe = api.get("/ready")
        probe_s = time.perf_counter() - probe_started

    assert max(seconds for _, seconds in during) < ANSWER_WITHIN_S
    assert not any(prediction.logged for prediction, _ in during)
    assert ready_s < 1.0 and probe_s < 1.0
    assert readiness["database"] is False and readiness["outbox"]["pending"] == 16
    assert probe.status_code == 200  # predictions are still accepted: the outbox has room
    assert probe.json()["database"] is False

    proxy.resume()
    expected = {p.id: None for p in [first, *(prediction for prediction, _ in during)]}
    engine = direct_engine(postgres_url)
    wait_for_rows(engine, expected)  # every one, once, replayed with no request sent
    assert service.outbox.count() == 0
    assert service.predict(make_digit("one"), session_id=SESSION).logged
    service.close()
    engine.dispose()


@pytest.mark.postgres
def test_outage_hung_database_does_not_stall_the_workers_other_requests(
    proxied_url: str, proxy: TcpProxy, settings: Settings, digit_png: bytes
) -> None:
    # A long write deadline, so that a request stuck behind the waiting prediction would show.
    hung = {"database_url": proxied_url, "db_write_deadline_s": HUNG_WRITE_DEADLINE_S}
    settings = settings.model_copy(update=hung)
    service = build_service(settings)
    assert service.predict(digit_png, session_id=SESSION).logged  # a pooled connection
    body = {"image": base64.b64encode(digit_png).decode("ascii"), "session_id": SESSION}

    async def scenario() -> dict[str, tuple[httpx.Response, float]]:
        transport = httpx.ASGITransport(app=create_app(settings, service))
        started = time.perf_counter()
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

            async def timed(name: str, delay_s: float, **request: Any) -> None:
                await asyncio.sleep(delay_s)
                response = await client.request(**request)
                answers[name] = response, time.perf_counter() - started

            answers: dict[str, tuple[httpx.Response, float]] = {}
            await asyncio.gather(
                timed("predict", 0.0, method="POST", url="/predict", json=body),
                # Once the prediction waits for the silent database:
                timed("health", 0.3, method="GET", url="/health"),
            )
            return answers

    proxy.pause()
    answers = run_in_new_loop(scenario())
    proxy.resume()
    (health, health_s), (prediction, prediction_s) = answers["health"], answers["predict"]
    assert health.status_code == 200 and health_s < HUNG_WRITE_DEADLINE_S / 2
    assert prediction_s > HUNG_WRITE_DEADLINE_S * 0.9  # it waited out the deadline meanwhile
    assert prediction.status_code == 200 and prediction.json()["logged"] is False
    service.close()


@pytest.mark.postgres
def test_outage_hung_database_read_is_cut_at_the_call_limit(
    proxied_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service(proxied_url, tmp_path, tiny_model_dir)
    assert service.history().count == 0
    monkeypatch.setattr(repository, "CALL_LIMIT_S", 1.0)

    proxy.pause()
    started = time.perf_counter()
    with pytest.raises(StorageUnavailableError, match="no answer within 1 s"):
        service.history()  # no write failed yet, so the read goes to the silent database
    assert time.perf_counter() - started < 3.0  # not forever

    proxy.resume()
    assert service.history().count == 0  # the cut connection was replaced
    service.close()


# --- a database that answers, but takes no writes -----------------------------------------


@pytest.mark.postgres
def test_outage_read_only_database_queues_predictions_and_ready_says_so(
    postgres_url: str,
    postgres_admin: Engine,
    tmp_path: Path,
    tiny_model_dir: Path,
    make_digit: Draw,
) -> None:
    name = make_url(postgres_url).database
    service = make_service(postgres_url, tmp_path, tiny_model_dir)
    first = service.predict(make_digit("one"), session_id=SESSION)

    with postgres_admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    service.engine.dispose()  # new connections get the new default
    queued = service.predict(make_digit("zero"), session_id=SESSION)  # not a 500
    labelled = service.submit_feedback(queued.id, 3)
    readiness = service.ready()

    assert not queued.logged and (labelled.actual, labelled.logged) == (3, False)
    assert readiness["database"] is False and readiness["outbox"]["pending"] == 2
    assert service.history().count == 1  # reads still work on a read-only database

    with postgres_admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
    service.engine.dispose()
    engine = direct_engine(postgres_url)
    wait_for_rows(engine, {first.id: None, queued.id: 3})
    service.close()
    engine.dispose()


def test_outage_renamed_table_queues_writes_and_replays_when_it_is_back(
    database_url: str, tmp_path: Path, tiny_model_dir: Path, make_digit: Draw
) -> None:
    service = make_service(database_url, tmp_path, tiny_model_dir)
    first = service.predict(make_digit("one"), session_id=SESSION)
    engine = direct_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE prediction_logs RENAME TO {MOVED_TABLE}"))

    queued = service.predict(make_digit("seven"), session_id=SESSION)
    labelled = service.submit_feedback(queued.id, 7)
    assert not queued.logged and labelled.actual == 7
    with pytest.raises(StorageUnavailableError):
        service.history()  # 503, not a 500
    assert service.ready()["database"] is False

    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {MOVED_TABLE} RENAME TO prediction_logs"))
    wait_for_rows(engine, {first.id: None, queued.id: 7})
    service.close()
    engine.dispose()


@pytest.mark.postgres
def test_outage_locked_table_queues_within_the_deadline(
    postgres_url: str, tmp_path: Path, tiny_model_dir: Path, make_digit: Draw
) -> None:
    service = make_service(postgres_url, tmp_path, tiny_model_dir)
    engine = direct_engine(postgres_url)
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE prediction_logs IN ACCESS EXCLUSIVE MODE"))
        queued, seconds = timed_predict(service, make_digit("one"))
        readiness = service.ready()
        blocker.rollback()

    assert not queued.logged and seconds < ANSWER_WITHIN_S
    assert readiness["database"] is False
    wait_for_rows(engine, {queued.id: None})
    service.close()
    engine.dispose()


# --- replay after a restart, with no traffic ----------------------------------------------


def test_outage_queued_writes_replay_after_a_restart_without_any_request(
    database_url: str, tmp_path: Path, tiny_model_dir: Path, make_digit: Draw
) -> None:
    engine = direct_engine(database_url)
    before = make_service(database_url, tmp_path, tiny_model_dir)
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE prediction_logs RENAME TO {MOVED_TABLE}"))
    queued = [before.predict(make_digit("one"), session_id=SESSION) for _ in range(3)]
    before.close()  # the process ends with three rows queued
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {MOVED_TABLE} RENAME TO prediction_logs"))

    after = make_service(database_url, tmp_path, tiny_model_dir)  # the restart

    wait_for_rows(engine, {p.id: None for p in queued})
    after.close()
    engine.dispose()
