"""POST /predict/compare: every model on one drawing, one logged row each under one request id."""

from __future__ import annotations

import pytest
from credentials import sid
from fastapi.testclient import TestClient

from digitrec.api.client import ApiClient
from digitrec.contract import ERROR_CODE_HEADER
from digitrec.schemas import ComparisonPublic


def _history(client: TestClient, session: str) -> list[dict]:
    response = client.get("/predictions", params={"session_id": session})
    assert response.status_code == 200
    return list(response.json()["data"])


def test_compare_logs_one_row_per_model_under_one_request_id(
    db_client: TestClient, digit_b64: str
) -> None:
    models = {m["name"] for m in db_client.get("/models").json()}

    response = db_client.post(
        "/predict/compare", json={"image": digit_b64, "session_id": sid("cmp")}
    )

    assert response.status_code == 200
    comparison = ComparisonPublic.model_validate(response.json())
    assert {p.model for p in comparison.predictions} == models
    assert len({p.id for p in comparison.predictions}) == len(models)
    assert {p.request_id for p in comparison.predictions} == {comparison.request_id}
    assert all(p.logged and p.latency_ms > 0 for p in comparison.predictions)
    rows = _history(db_client, sid("cmp"))
    assert sorted(r["id"] for r in rows) == sorted(p.id for p in comparison.predictions)
    assert {r["request_id"] for r in rows} == {comparison.request_id}


def test_each_prediction_has_a_request_id_of_its_own(client: TestClient, digit_b64: str) -> None:
    body = {"image": digit_b64, "session_id": sid("single")}
    first, second = (client.post("/predict", json=body).json() for _ in range(2))

    assert first["request_id"] and second["request_id"]
    assert first["request_id"] != second["request_id"]


def test_a_repeated_comparison_press_returns_its_first_rows(
    db_client: TestClient, digit_b64: str
) -> None:
    body = {"image": digit_b64, "session_id": sid("press")}
    headers = {"Idempotency-Key": "compare-press-1"}

    first = db_client.post("/predict/compare", json=body, headers=headers).json()
    again = db_client.post("/predict/compare", json=body, headers=headers).json()

    assert again == first
    assert len(_history(db_client, sid("press"))) == len(first["predictions"])


def test_feedback_on_one_compared_row_leaves_the_others(client: TestClient, digit_b64: str) -> None:
    session = sid("label-one")
    rows = client.post("/predict/compare", json={"image": digit_b64, "session_id": session})
    labelled, *others = rows.json()["predictions"]

    answer = client.post(
        f"/predictions/{labelled['id']}/feedback", json={"actual": 3, "session_id": session}
    )

    assert answer.status_code == 200
    actual = {r["id"]: r["actual"] for r in _history(client, session)}
    assert actual[labelled["id"]] == 3
    assert all(actual[o["id"]] is None for o in others)


@pytest.mark.parametrize(
    ("body", "code"),
    [({"image": "bm90IGFuIGltYWdl"}, "invalid_image"), ({}, "validation")],
)
def test_a_bad_comparison_is_refused_and_logs_nothing(
    client: TestClient, body: dict, code: str
) -> None:
    response = client.post("/predict/compare", json={**body, "session_id": sid("bad")})

    assert response.status_code == 422
    assert response.headers[ERROR_CODE_HEADER] == code
    assert _history(client, sid("bad")) == []


def test_the_api_client_compares(client: TestClient, digit_png: bytes) -> None:
    api = ApiClient("http://testserver", http=client)

    comparison = api.compare(digit_png, session_id=sid("client"), idempotency_key="k1")

    assert comparison.session_id == sid("client")
    assert comparison == api.compare(digit_png, session_id=sid("client"), idempotency_key="k1")
    assert {p.model for p in comparison.predictions} == set(api.models())
