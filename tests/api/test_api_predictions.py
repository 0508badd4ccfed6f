"""Feedback, history, stats, models and images over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io

import pytest
from credentials import ADMIN, sid
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.schemas import PredictionPublic, PredictionsPublic, StatsPublic


def _predict(client: TestClient, digit_b64: str, name: str) -> PredictionPublic:
    response = client.post("/predict", json={"image": digit_b64, "session_id": sid(name)})
    assert response.status_code == 200, response.text
    return PredictionPublic.model_validate(response.json())


def test_feedback_records_and_replaces_the_true_digit(
    db_client: TestClient, digit_b64: str
) -> None:
    prediction = _predict(db_client, digit_b64, "s")

    path = f"/predictions/{prediction.id}/feedback"
    first = db_client.post(path, json={"actual": 7, "session_id": sid("s")})
    again = db_client.post(path, json={"actual": 1}, headers={"X-Session-ID": sid("s")})

    assert first.status_code == again.status_code == 200
    assert first.json()["actual"] == 7
    assert again.json()["actual"] == 1
    assert again.json()["feedback_at"] is not None
    rows = db_client.get("/predictions", params={"session_id": sid("s")}).json()["data"]
    assert [row["actual"] for row in rows] == [1]


@pytest.mark.parametrize("actual", [12, -1, 10, "seven", 3.5, None, True, "7", 7.0])
def test_feedback_refuses_anything_but_a_digit_with_422(
    client: TestClient, digit_b64: str, actual: object
) -> None:
    prediction = _predict(client, digit_b64, "s")

    body = {"actual": actual, "session_id": sid("s")}
    response = client.post(f"/predictions/{prediction.id}/feedback", json=body)

    assert response.status_code == 422
    assert "actual" in response.json()["detail"]


def test_feedback_for_an_unknown_id_answers_404(db_client: TestClient) -> None:
    body = {"actual": 3, "session_id": sid("s")}
    response = db_client.post("/predictions/0123456789abcdef/feedback", json=body)

    assert response.status_code == 404
    assert response.json() == {"detail": "no prediction with id '0123456789abcdef'"}


def test_history_pages_newest_first_with_the_total_count(
    db_client: TestClient, digit_b64: str
) -> None:
    ids = [_predict(db_client, digit_b64, "mine").id for _ in range(5)]
    _predict(db_client, digit_b64, "other")

    params = {"session_id": sid("mine"), "limit": 2, "offset": 1}
    page = PredictionsPublic.model_validate(db_client.get("/predictions", params=params).json())
    everything = db_client.get("/predictions", headers=ADMIN).json()

    assert page.count == 5
    assert [row.id for row in page.data] == ids[::-1][1:3]
    assert everything["count"] == 6


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 100_000}, {"offset": -1}])
def test_history_refuses_out_of_range_paging(client: TestClient, params: dict[str, int]) -> None:
    query = {**params, "session_id": sid("s")}
    assert client.get("/predictions", params=query).status_code == 422


def test_stats_count_feedback_per_session(db_client: TestClient, digit_b64: str) -> None:
    confirmed = _predict(db_client, digit_b64, "a")
    corrected = _predict(db_client, digit_b64, "a")
    _predict(db_client, digit_b64, "b")
    session = {"session_id": sid("a")}
    right = {"actual": confirmed.prediction, **session}
    db_client.post(f"/predictions/{confirmed.id}/feedback", json=right)
    wrong = (corrected.prediction + 1) % 10
    db_client.post(f"/predictions/{corrected.id}/feedback", json={"actual": wrong, **session})

    own = StatsPublic.model_validate(db_client.get("/stats", params=session).json())
    everyone = StatsPublic.model_validate(db_client.get("/stats", headers=ADMIN).json())

    assert (own.total, own.confirmed, own.corrected, own.no_feedback) == (2, 1, 1, 0)
    assert own.confusion[wrong][corrected.prediction] == 1
    assert everyone.total == 3


def test_models_lists_each_model_with_its_serving_version(client: TestClient) -> None:
    catalog = client.get("/models").json()
    assert [model["name"] for model in catalog] == ["default", "lenet5"]
    for model in catalog:
        # The model files were registered at start as version 1 champions.
        assert model["serving"] == 1
        (version,) = model["versions"]
        assert (version["version"], version["status"]) == (1, "champion")
        assert version["trained_on"]["shipped"] is True


def test_every_prediction_names_the_version_that_made_it(
    client: TestClient, digit_b64: str
) -> None:
    prediction = _predict(client, digit_b64, "s")
    assert (prediction.model, prediction.model_version) == ("default", 1)
    row = client.get("/predictions", params={"session_id": sid("s")}).json()["data"][0]
    assert row["model_version"] == 1


def test_prediction_image_is_the_28px_model_input(client: TestClient, digit_b64: str) -> None:
    prediction = _predict(client, digit_b64, "s")

    owner = {"X-Session-ID": sid("s")}
    response = client.get(f"/predictions/{prediction.id}/image", headers=owner)

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (28, 28)
    assert client.get("/predictions/ffff/image", headers=owner).status_code == 404
