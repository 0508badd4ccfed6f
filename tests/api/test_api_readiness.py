"""Readiness as deployments read it: 200 while predictions can be kept (in the database, or in
the outbox while it has room), 503 otherwise; and a full outbox refuses with `outbox_full`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from digitrec.api.app import create_app
from digitrec.api.client import ApiClient
from digitrec.config import Settings
from digitrec.contract import ERROR_CODE_HEADER, OutboxFullError
from digitrec.service import build_service

SESSION = "5e55101d" * 4  # a session id as the API makes them: 32 hex digits


@pytest.fixture
def tiny_outbox_client(settings: Settings, closed_port: int) -> Iterator[TestClient]:
    """The API with its database down (nothing listens) and room for one queued write."""
    url = f"postgresql+psycopg://digitrec@127.0.0.1:{closed_port}/digitrec"
    offline = settings.model_copy(update={"database_url": url, "outbox_capacity": 1})
    service = build_service(offline)
    with TestClient(create_app(offline, service)) as test_client:
        yield test_client
    service.close()


def test_ready_reports_model_database_and_outbox(client: TestClient, settings: Settings) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "model": True,
        "database": True,
        "outbox": {"pending": 0, "capacity": settings.outbox_capacity},
    }


def test_ready_stays_200_while_the_outbox_absorbs_an_outage(
    offline_client: TestClient, digit_b64: str
) -> None:
    answer = offline_client.post("/predict", json={"image": digit_b64, "session_id": SESSION})
    response = offline_client.get("/ready")

    assert answer.json()["logged"] is False
    assert response.status_code == 200  # do not pull the pod: predictions are still kept
    assert response.json()["database"] is False
    assert response.json()["outbox"]["pending"] == 1


def test_full_outbox_refuses_predictions_with_503_and_ready_says_503(
    tiny_outbox_client: TestClient, digit_b64: str, digit_png: bytes
) -> None:
    body = {"image": digit_b64, "session_id": SESSION}
    kept = tiny_outbox_client.post("/predict", json=body)
    refused = tiny_outbox_client.post("/predict", json=body)
    ready = tiny_outbox_client.get("/ready")

    assert kept.status_code == 200 and kept.json()["logged"] is False
    assert refused.status_code == 503
    assert refused.headers[ERROR_CODE_HEADER] == "outbox_full"
    assert ready.status_code == 503
    assert ready.json() == {
        "model": True,
        "database": False,
        "outbox": {"pending": 1, "capacity": 1},
    }
    with pytest.raises(OutboxFullError):  # the client raises what the service raised
        ApiClient("http://testserver", http=tiny_outbox_client).predict(
            digit_png, session_id=SESSION
        )


def test_metrics_report_the_writes_waiting_in_the_outbox(
    offline_client: TestClient, digit_b64: str
) -> None:
    for _ in range(2):
        offline_client.post("/predict", json={"image": digit_b64, "session_id": SESSION})

    offline_client.get("/metrics")  # counted as the scrape arrives (whoever may read it)

    assert REGISTRY.get_sample_value("digitrec_outbox_pending_writes") == 2


def test_client_ready_reads_the_outbox_and_survives_an_unreachable_service(
    offline_client: TestClient, closed_port: int
) -> None:
    assert ApiClient("http://testserver", http=offline_client).ready() == {
        "model": True,
        "database": False,
        "outbox": {"pending": 0, "capacity": 50_000},
    }
    unreachable = ApiClient(f"http://127.0.0.1:{closed_port}", timeout_s=2)
    assert unreachable.ready()["model"] is False
    unreachable.close()
