""" "Not a digit" over HTTP with the shipped default: the answer, the logged row, the label."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from credentials import sid
from drawing import draw_strokes, rgba_canvas
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.api.app import create_app
from digitrec.config import Settings
from digitrec.inference import shipped_model_dir
from digitrec.schemas import PredictionPublic
from digitrec.service import build_service

LETTER_X = [[(60, 50), (220, 230)], [(220, 50), (60, 230)]]
SEVEN = [[(70, 50), (210, 50), (120, 240)]]


@pytest.fixture
def shipped_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API with the shipped models, on each backend in turn (SQLite, then PostgreSQL)."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, model_dir=shipped_model_dir()
    )
    service = build_service(settings)
    with TestClient(create_app(settings, service)) as client:
        yield client
    service.close()


def _b64(strokes: list[list[tuple[int, int]]]) -> str:
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgba_canvas(draw_strokes(strokes, supersample=4))).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _predict(client: TestClient, strokes: list[list[tuple[int, int]]]) -> PredictionPublic:
    body = {"image": _b64(strokes), "session_id": sid("s"), "model": "default"}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return PredictionPublic.model_validate(response.json())


def test_a_letter_is_answered_not_a_digit_and_logged_so(shipped_client: TestClient) -> None:
    answer = _predict(shipped_client, LETTER_X)

    assert answer.is_digit is False
    assert answer.digit_probability is not None and answer.digit_probability < 0.5
    assert sum(answer.probabilities) == pytest.approx(1.0, abs=1e-5)  # still there to see
    rows = shipped_client.get("/predictions", params={"session_id": sid("s")}).json()["data"]
    (row,) = rows
    assert row["is_digit"] is False
    assert row["digit_probability"] == pytest.approx(answer.digit_probability)


def test_a_digit_is_answered_with_its_probability_of_being_one(
    shipped_client: TestClient,
) -> None:
    answer = _predict(shipped_client, SEVEN)

    assert answer.is_digit is True
    assert answer.prediction == 7
    assert answer.digit_probability is not None and answer.digit_probability > 0.5


def test_a_person_can_agree_it_is_not_a_digit_or_name_the_digit(
    shipped_client: TestClient,
) -> None:
    answer = _predict(shipped_client, LETTER_X)
    path = f"/predictions/{answer.id}/feedback"

    agreed = shipped_client.post(path, json={"not_a_digit": True, "session_id": sid("s")})
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["not_a_digit"] is True
    assert agreed.json()["actual"] is None
    stats = shipped_client.get("/stats", params={"session_id": sid("s")}).json()
    assert (stats["not_a_digit"], stats["correct"], stats["no_feedback"]) == (1, 1, 0)

    named = shipped_client.post(path, json={"actual": 7, "session_id": sid("s")})
    assert named.status_code == 200, named.text
    assert (named.json()["actual"], named.json()["not_a_digit"]) == (7, False)
    stats = shipped_client.get("/stats", params={"session_id": sid("s")}).json()
    assert (stats["not_a_digit"], stats["corrected"]) == (0, 1)


@pytest.mark.parametrize(
    "body",
    [{}, {"actual": 3, "not_a_digit": True}, {"not_a_digit": False}, {"not_a_digit": "yes"}],
    ids=["nothing", "both", "neither", "not-a-bool"],
)
def test_feedback_needs_exactly_one_label(shipped_client: TestClient, body: dict) -> None:
    answer = _predict(shipped_client, SEVEN)

    response = shipped_client.post(
        f"/predictions/{answer.id}/feedback", json={**body, "session_id": sid("s")}
    )

    assert response.status_code == 422
    assert response.json()["detail"]
