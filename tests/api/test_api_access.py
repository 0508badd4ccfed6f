"""Who may see and change what: a session is a capability, cross-session views need the admin
token, an API key can close the service, and one Predict press logs one row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from credentials import ADMIN, sid
from fastapi.testclient import TestClient
from pydantic import SecretStr

from digitrec.api.app import create_app
from digitrec.api.client import ApiClient
from digitrec.config import Settings
from digitrec.contract import (
    ERROR_CODE_HEADER,
    PredictionNotFoundError,
    SessionRequiredError,
    UnauthorizedError,
)
from digitrec.schemas import SESSION_ID_PATTERN, PredictionPublic
from digitrec.service import PredictionService

OWNER, STRANGER = sid("owner"), sid("stranger")


def _predict(client: TestClient, digit_b64: str, session_id: str | None) -> PredictionPublic:
    body = {"image": digit_b64} | ({"session_id": session_id} if session_id else {})
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return PredictionPublic.model_validate(response.json())


@pytest.fixture
def settings_without_token(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": None})


def test_a_new_session_id_is_128_random_bits_issued_by_the_server(
    client: TestClient, digit_b64: str
) -> None:
    first, second = (_predict(client, digit_b64, None) for _ in range(2))
    assert first.session_id != second.session_id
    for issued in (first.session_id, second.session_id):
        assert len(issued) == 32 and int(issued, 16) >= 0


@pytest.mark.parametrize("invented", ["s1", "admin", "0" * 31, "ABCDEF" + "0" * 26, "../" * 11])
def test_a_short_or_malformed_session_id_is_refused(
    client: TestClient, digit_b64: str, invented: str
) -> None:
    response = client.post("/predict", json={"image": digit_b64, "session_id": invented})
    assert response.status_code == 422
    assert (
        SESSION_ID_PATTERN in response.json()["detail"] or "session_id" in response.json()["detail"]
    )


def test_another_sessions_prediction_is_not_found_on_every_route(
    client: TestClient, digit_b64: str
) -> None:
    prediction = _predict(client, digit_b64, OWNER)
    feedback = f"/predictions/{prediction.id}/feedback"
    image = f"/predictions/{prediction.id}/image"

    answers = [
        client.post(feedback, json={"actual": 3, "session_id": STRANGER}),
        client.post(feedback, json={"actual": 3}, headers={"X-Session-ID": STRANGER}),
        client.post(feedback, json={"actual": 3}, params={"session_id": STRANGER}),
        client.get(image, headers={"X-Session-ID": STRANGER}),
        client.get(image, params={"session_id": STRANGER}),
    ]

    assert [a.status_code for a in answers] == [404] * len(answers)
    assert client.get("/predictions", params={"session_id": STRANGER}).json()["count"] == 0
    assert client.get("/stats", params={"session_id": STRANGER}).json()["total"] == 0
    rows = client.get("/predictions", params={"session_id": OWNER}).json()["data"]
    assert rows[0]["actual"] is None  # untouched by the stranger


def test_feedback_without_a_session_is_refused(client: TestClient, digit_b64: str) -> None:
    prediction = _predict(client, digit_b64, OWNER)
    response = client.post(f"/predictions/{prediction.id}/feedback", json={"actual": 3})
    assert response.status_code == 422
    assert response.headers[ERROR_CODE_HEADER] == "session_required"


@pytest.mark.parametrize("path", ["/predictions", "/stats", "/metrics"])
def test_views_across_sessions_need_the_admin_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path).headers["WWW-Authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers=ADMIN).status_code == 200


def test_the_admin_sees_any_image(client: TestClient, digit_b64: str) -> None:
    prediction = _predict(client, digit_b64, OWNER)
    assert client.get(f"/predictions/{prediction.id}/image", headers=ADMIN).status_code == 200
    assert client.get(f"/predictions/{prediction.id}/image").status_code == 401


@pytest.mark.parametrize("path", ["/predictions", "/stats", "/metrics"])
def test_views_across_sessions_are_off_without_a_configured_token(
    settings_without_token: Settings, service: PredictionService, path: str
) -> None:
    with TestClient(create_app(settings_without_token, service)) as client:
        response = client.get(path, headers=ADMIN)
    assert response.status_code == 403
    assert "DIGITREC_ADMIN_TOKEN" in response.json()["detail"]


@pytest.fixture
def keyed_client(settings: Settings, service: PredictionService) -> Iterator[TestClient]:
    keyed = settings.model_copy(update={"api_key": SecretStr("page-key")})
    with TestClient(create_app(keyed, service)) as client:
        yield client


def test_an_api_key_closes_every_route_but_health_and_ready(
    keyed_client: TestClient, digit_b64: str
) -> None:
    body = {"image": digit_b64, "session_id": OWNER}
    assert keyed_client.post("/predict", json=body).status_code == 401
    assert keyed_client.get("/models").status_code == 401
    assert keyed_client.get("/health").status_code == 200
    assert keyed_client.get("/ready").status_code in (200, 503)
    answer = keyed_client.post("/predict", json=body, headers={"X-API-Key": "page-key"})
    assert answer.status_code == 200


def test_the_api_client_sends_the_key_and_the_session(
    keyed_client: TestClient, digit_png: bytes
) -> None:
    with pytest.raises(UnauthorizedError):
        ApiClient("http://testserver", http=keyed_client).models()
    api = ApiClient("http://testserver", http=keyed_client, api_key="page-key")
    prediction = api.predict(digit_png, session_id=OWNER)
    assert api.submit_feedback(prediction.id, 4, session_id=OWNER).actual == 4
    assert api.image_png(prediction.id, session_id=OWNER).startswith(b"\x89PNG")
    with pytest.raises(PredictionNotFoundError):
        api.submit_feedback(prediction.id, 5, session_id=STRANGER)
    with pytest.raises(PredictionNotFoundError):
        api.image_png(prediction.id, session_id=STRANGER)
    with pytest.raises(SessionRequiredError):
        api.submit_feedback(prediction.id, 5)


def test_one_press_logs_one_row_however_often_it_is_sent(
    db_client: TestClient, digit_b64: str
) -> None:
    body = {"image": digit_b64, "session_id": OWNER}
    press = {"Idempotency-Key": "press-1"}
    answers = [db_client.post("/predict", json=body, headers=press).json() for _ in range(3)]
    other = db_client.post("/predict", json=body, headers={"Idempotency-Key": "press-2"}).json()
    stranger = db_client.post(
        "/predict", json={**body, "session_id": STRANGER}, headers=press
    ).json()

    assert answers[0] == answers[1] == answers[2]
    assert other["id"] != answers[0]["id"] and stranger["id"] != answers[0]["id"]
    rows = db_client.get("/predictions", params={"session_id": OWNER}).json()
    assert rows["count"] == 2


def test_an_idempotency_key_needs_a_session(client: TestClient, digit_b64: str) -> None:
    response = client.post(
        "/predict", json={"image": digit_b64}, headers={"Idempotency-Key": "press-1"}
    )
    assert response.status_code == 422
    assert response.headers[ERROR_CODE_HEADER] == "session_required"


def test_a_malformed_idempotency_key_is_refused(client: TestClient, digit_b64: str) -> None:
    body = {"image": digit_b64, "session_id": OWNER}
    response = client.post("/predict", json=body, headers={"Idempotency-Key": "a b"})
    assert response.status_code == 422
