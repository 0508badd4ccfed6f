"""Health, readiness, metrics, docs, the database going away, and the last-resort handler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from credentials import ADMIN, sid
from fastapi.testclient import TestClient

from digitrec.api.app import create_app
from digitrec.config import Settings
from digitrec.service import PredictionService


def test_health_answers_while_the_process_lives(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_when_model_and_database_are(client: TestClient) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "model": True,
        "database": True,
        "outbox": {"pending": 0, "capacity": 50_000},
    }


def test_ready_answers_200_without_the_database_while_the_outbox_has_room(
    offline_client: TestClient,
) -> None:
    response = offline_client.get("/ready")

    # Predictions are still kept, in the outbox (tests/api/test_api_readiness.py).
    assert response.status_code == 200
    assert response.json() == {
        "model": True,
        "database": False,
        "outbox": {"pending": 0, "capacity": 50_000},
    }
    assert offline_client.get("/health").status_code == 200


def test_ready_answers_503_without_the_model(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"model_dir": tmp_path / "no-models"})
    (tmp_path / "no-models").mkdir()
    with TestClient(create_app(empty)) as client:
        response = client.get("/ready")

    assert response.status_code == 503
    assert response.json() == {
        "model": False,
        "database": True,
        "outbox": {"pending": 0, "capacity": 50_000},
    }


def test_without_the_database_reads_answer_503_and_predictions_still_work(
    offline_client: TestClient, digit_b64: str
) -> None:
    prediction = offline_client.post("/predict", json={"image": digit_b64, "session_id": sid("s")})

    assert prediction.status_code == 200
    assert prediction.json()["logged"] is False  # queued in the outbox
    for path in ("/predictions", "/stats"):
        response = offline_client.get(path, params={"session_id": sid("s")})
        assert response.status_code == 503
        assert response.headers["x-error-code"] == "storage_unavailable"
        assert "database is unavailable" in response.json()["detail"]
        assert response.headers["retry-after"].isdigit()
    # Feedback on a queued prediction is queued behind it.
    feedback = offline_client.post(
        f"/predictions/{prediction.json()['id']}/feedback",
        json={"actual": 4, "session_id": sid("s")},
    )
    assert feedback.status_code == 200
    assert feedback.json()["actual"] == 4
    unknown = offline_client.post(
        "/predictions/abc123/feedback", json={"actual": 4, "session_id": sid("s")}
    )
    assert unknown.status_code == 503


def test_metrics_count_requests_by_route_and_predictions_by_digit(
    client: TestClient, digit_b64: str
) -> None:
    digit = client.post("/predict", json={"image": digit_b64}).json()["prediction"]
    client.get("/predictions/nothing-here/image", headers={"X-Session-ID": sid("s")})
    client.get("/no/such/path/12345")

    response = client.get("/metrics", headers=ADMIN)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'digitrec_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'route="/predictions/{prediction_id}/image",status="404"' in text
    assert 'route="unmatched",status="404"' in text  # never one series per unknown path
    assert "/no/such/path" not in text
    assert f'digitrec_predictions_total{{digit="{digit}",model="default"}}' in text
    assert 'digitrec_http_request_duration_seconds_bucket{le="0.005"' in text


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"/predictions", "/stats", "/models", "/health", "/ready", "/metrics"} <= set(
        schema["paths"]
    )


class _BrokenService(PredictionService):
    def stats(self, session_id: str | None = None) -> object:  # type: ignore[override]
        raise RuntimeError("secret internals /etc/passwd")


def test_an_unexpected_error_answers_json_500_without_a_trace(
    settings: Settings, service: PredictionService, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _BrokenService(service.engine, service.outbox, model_dir=settings.model_dir)
    app = create_app(settings, broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/stats", headers=ADMIN)

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; it has been logged"}
    assert "secret" not in response.text
    assert "secret internals" in caplog.text  # logged with its traceback


def test_serving_never_imports_torch() -> None:
    code = (
        "import sys, tempfile, pathlib\n"
        "from digitrec.api.app import create_app\n"
        "from digitrec.config import Settings\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "create_app(Settings(data_dir=d, database_url=f'sqlite:///{d}/x.db'))\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'onnx') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )

    assert result.stdout.strip() == ""
