"""Feedback, history, stats, models and images over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.schemas import PredictionPublic, PredictionsPublic, StatsPublic


def _predict(client: TestClient, digit_b64: str, session_id: str) -> PredictionPublic:
    response = client.post("/predict", json={"image": digit_b64, "session_id": session_id})
    assert response.status_code == 200, response.text
    return PredictionPublic.model_validate(response.json())


def test_feedback_records_and_replaces_the_true_digit(
    db_client: TestClient, digit_b64: str
) -> None:
    prediction = _predict(db_client, digit_b64, "s")

    first = db_client.post(f"/predictions/{prediction.id}/feedback", json={"actual": 7})
    again = db_client.post(f"/predictions/{prediction.id}/feedback", json={"actual": 1})

    assert first.status_code == again.status_code == 200
    assert first.json()["actual"] == 7
    assert again.json()["actual"] == 1
    assert again.json()["feedback_at"] is not None
    rows = db_client.get("/predictions", params={"session_id": "s"}).json()["data"]
    assert [row["actual"] for row in rows] == [1]


@pytest.mark.parametrize("actual", [12, -1, 10, "seven", 3.5, None])
def test_feedback_refuses_anything_but_a_digit_with_422(
    client: TestClient, digit_b64: str, actual: object
) -> None:
    prediction = _predict(client, digit_b64, "s")

    response = client.post(f"/predictions/{prediction.id}/feedback", json={"actual": actual})

    assert response.status_code == 422
    assert "actual" in response.json()["detail"]


def test_feedback_for_an_unknown_id_answers_404(db_client: TestClient) -> None:
    response = db_client.post("/predictions/0123456789abcdef/feedback", json={"actual": 3})

    assert response.status_code == 404
    assert response.json() == {"detail": "no prediction with id '0123456789abcdef'"}


def test_history_pages_newest_first_with_the_total_count(
    db_client: TestClient, digit_b64: str
) -> None:
    ids = [_predict(db_client, digit_b64, "mine").id for _ in range(5)]
    _predict(db_client, digit_b64, "other")

    page = PredictionsPublic.model_validate(
        db_client.get("/predictions", params={"session_id": "mine", "limit": 2, "offset": 1}).json()
    )
    everything = db_client.get("/predictions").json()

    assert page.count == 5
    assert [row.id for row in page.data] == ids[::-1][1:3]
    assert everything["count"] == 6


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 100_000}, {"offset": -1}])
def test_history_refuses_out_of_range_paging(client: TestClient, params: dict[str, int]) -> None:
    assert client.get("/predictions", params=params).status_code == 422


def test_stats_count_feedback_per_session(db_client: TestClient, digit_b64: str) -> None:
    confirmed = _predict(db_client, digit_b64, "a")
    corrected = _predict(db_client, digit_b64, "a")
    _predict(db_client, digit_b64, "b")
    db_client.post(f"/predictions/{confirmed.id}/feedback", json={"actual": confirmed.prediction})
    wrong = (corrected.prediction + 1) % 10
    db_client.post(f"/predictions/{corrected.id}/feedback", json={"actual": wrong})

    mine = StatsPublic.model_validate(db_client.get("/stats", params={"session_id": "a"}).json())
    everyone = StatsPublic.model_validate(db_client.get("/stats").json())

    assert (mine.total, mine.confirmed, mine.corrected, mine.no_feedback) == (2, 1, 1, 0)
    assert mine.confusion[wrong][corrected.prediction] == 1
    assert everyone.total == 3


def test_models_lists_the_model_files(client: TestClient) -> None:
    assert client.get("/models").json() == ["default", "lenet5"]


def test_prediction_image_is_the_28px_model_input(client: TestClient, digit_b64: str) -> None:
    prediction = _predict(client, digit_b64, "s")

    response = client.get(f"/predictions/{prediction.id}/image")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (28, 28)
    assert client.get("/predictions/ffff/image").status_code == 404
