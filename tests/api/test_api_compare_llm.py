"""The chat model in POST /predict/compare: its answer logged beside the models', with no
confidence invented, and a chat model that gives no answer costs the comparison nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from credentials import sid
from fake_chat import KEY, MODEL, FakeChat, fake_chat_server
from fastapi.testclient import TestClient

from digitrec.api.app import create_app
from digitrec.config import Settings
from digitrec.feedback import NO_DIGIT
from digitrec.learner import labelled_rows
from digitrec.llm import NAME as LLM
from digitrec.schemas import ComparisonPublic, PredictionPublic
from digitrec.service import build_service


@pytest.fixture
def chat() -> Iterator[tuple[FakeChat, str]]:
    with fake_chat_server() as served:
        yield served


@pytest.fixture
def llm_settings(
    database_url: str, tmp_path: Path, tiny_model_dir: Path, chat: tuple[FakeChat, str]
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        model_dir=tiny_model_dir,
        llm_url=chat[1],
        llm_model=MODEL,
        llm_api_key=KEY,
        llm_timeout_s=1.0,
    )


@pytest.fixture
def llm_client(llm_settings: Settings) -> Iterator[TestClient]:
    """The API with the chat model configured, on each backend in turn."""
    service = build_service(llm_settings)
    with TestClient(create_app(llm_settings, service)) as test_client:
        yield test_client
    service.close()


def _compare(client: TestClient, image: str, session: str) -> ComparisonPublic:
    response = client.post("/predict/compare", json={"image": image, "session_id": session})
    assert response.status_code == 200, response.text
    return ComparisonPublic.model_validate(response.json())


def _llm_row(comparison: ComparisonPublic) -> PredictionPublic:
    (row,) = [p for p in comparison.predictions if p.model == LLM]
    return row


def _history(client: TestClient, session: str) -> dict[str, dict]:
    rows = client.get("/predictions", params={"session_id": session}).json()["data"]
    return {r["id"]: r for r in rows}


def test_the_chat_models_digit_is_logged_with_its_confidence_unknown(
    llm_client: TestClient, chat: tuple[FakeChat, str], digit_b64: str
) -> None:
    models = {m["name"] for m in llm_client.get("/models").json()}

    comparison = _compare(llm_client, digit_b64, sid("llm-digit"))

    assert {p.model for p in comparison.predictions} == models | {LLM}
    row = _llm_row(comparison)
    assert (row.prediction, row.confidence, row.probabilities) == (7, None, None)
    assert row.is_digit and row.logged and row.request_id == comparison.request_id
    assert comparison.unavailable == {}
    assert len(chat[0].requests) == 1  # one call for the comparison
    logged = _history(llm_client, sid("llm-digit"))[row.id]
    assert (logged["model"], logged["prediction"], logged["confidence"]) == (LLM, 7, None)


@pytest.mark.parametrize(
    ("reply", "prediction", "is_digit"),
    [("none", None, False), ("It looks like a seven to me.", None, True), ("12", None, True)],
)
def test_none_is_its_verdict_and_anything_else_is_no_answer_not_a_guess(
    llm_client: TestClient,
    chat: tuple[FakeChat, str],
    digit_b64: str,
    reply: str,
    prediction: int | None,
    is_digit: bool,
) -> None:
    chat[0].reply = reply

    row = _llm_row(_compare(llm_client, digit_b64, sid("llm-reply")))

    assert (row.prediction, row.confidence, row.is_digit) == (prediction, None, is_digit)
    assert _history(llm_client, sid("llm-reply"))[row.id]["prediction"] is None


@pytest.mark.parametrize(
    ("status", "delay_s", "why"),
    [(429, 0.0, "too many requests"), (500, 0.0, "HTTP 500"), (200, 2.0, "did not answer")],
)
def test_a_chat_model_without_an_answer_logs_nothing_and_the_models_still_answer(
    llm_client: TestClient,
    chat: tuple[FakeChat, str],
    digit_b64: str,
    status: int,
    delay_s: float,
    why: str,
) -> None:
    chat[0].status, chat[0].delay_s = status, delay_s
    session = sid("llm-down")

    comparison = _compare(llm_client, digit_b64, session)

    assert LLM not in {p.model for p in comparison.predictions}
    assert comparison.predictions and all(p.logged for p in comparison.predictions)
    assert why in comparison.unavailable[LLM]
    assert set(_history(llm_client, session)) == {p.id for p in comparison.predictions}


def test_a_label_on_an_unanswered_row_counts_as_a_correction_in_stats_and_learning(
    llm_client: TestClient, chat: tuple[FakeChat, str], digit_b64: str
) -> None:
    chat[0].reply = "unsure"
    session = sid("llm-label")
    comparison = _compare(llm_client, digit_b64, session)
    row = _llm_row(comparison)

    answer = llm_client.post(
        f"/predictions/{row.id}/feedback", json={"actual": 7, "session_id": session}
    )

    assert answer.status_code == 200 and answer.json()["actual"] == 7
    stats = llm_client.get("/stats", params={"session_id": session}).json()
    assert stats["total"] == len(comparison.predictions)
    assert stats["corrected"] == 1  # the others have no feedback and count as correct
    service = llm_client.app.state.service  # type: ignore[attr-defined]
    (labelled,) = labelled_rows(service.engine)
    assert (labelled.predicted, labelled.actual) == (NO_DIGIT, 7)
