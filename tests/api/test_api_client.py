"""ApiClient behaves like the in-process service: same answers, same exceptions."""

from __future__ import annotations

import numpy as np
import pytest
from credentials import sid
from fastapi.testclient import TestClient

from digitrec.api.client import ApiClient, ApiUnavailableError
from digitrec.inference import UnknownModelError
from digitrec.preprocessing import EmptyDrawingError, InvalidImageError, encode_png
from digitrec.service import InvalidDigitError, PredictionNotFoundError, PredictionService
from digitrec.storage import StorageUnavailableError


@pytest.fixture
def api(client: TestClient) -> ApiClient:
    return ApiClient("http://testserver", http=client)


def test_client_predicts_the_page_canvas_like_the_service(
    api: ApiClient, service: PredictionService, digit_canvas: np.ndarray
) -> None:
    remote = api.predict(digit_canvas, session_id=sid("page"), model="default")
    local = service.predict(digit_canvas, session_id=sid("page"), model="default")

    assert remote.prediction == local.prediction
    assert remote.probabilities == pytest.approx(local.probabilities, abs=1e-6)
    assert remote.session_id == sid("page") and remote.logged


def test_client_covers_feedback_history_stats_models_and_ready(
    api: ApiClient, digit_png: bytes
) -> None:
    prediction = api.predict(digit_png, session_id=sid("s"))

    updated = api.submit_feedback(prediction.id, 5, session_id=sid("s"))
    page = api.history(sid("s"), limit=10)
    stats = api.stats(sid("s"))

    assert updated.actual == 5
    assert page.count == 1 and page.data[0].id == prediction.id
    assert stats.total == 1 and stats.confusion[5][prediction.prediction] == 1
    assert api.models() == ["default", "lenet5"]
    assert api.ready() == {
        "model": True,
        "database": True,
        "outbox": {"pending": 0, "capacity": 50_000},
    }
    assert api.image_png(prediction.id, session_id=sid("s")).startswith(b"\x89PNG")


def test_client_raises_the_service_exceptions(
    api: ApiClient, digit_png: bytes, blank_png: bytes
) -> None:
    prediction = api.predict(digit_png, session_id=sid("s"))

    with pytest.raises(EmptyDrawingError, match="nothing is drawn"):
        api.predict(blank_png, session_id=sid("s"))
    with pytest.raises(InvalidImageError):
        api.predict(b"not an image", session_id=sid("s"))
    with pytest.raises(UnknownModelError, match="unknown model"):
        api.predict(digit_png, session_id=sid("s"), model="missing")
    with pytest.raises(InvalidDigitError):
        api.submit_feedback(prediction.id, 12, session_id=sid("s"))
    with pytest.raises(PredictionNotFoundError):
        api.submit_feedback("0123456789abcdef", 3, session_id=sid("s"))
    with pytest.raises(PredictionNotFoundError):
        api.image_png("0123456789abcdef", session_id=sid("s"))
    with pytest.raises(PredictionNotFoundError):
        api.submit_feedback("not an id/..", 3, session_id=sid("s"))


def test_client_raises_storage_unavailable_when_the_api_database_is_down(
    offline_api: ApiClient, digit_png: bytes
) -> None:
    assert offline_api.predict(digit_png, session_id=sid("s")).logged is False
    with pytest.raises(StorageUnavailableError):
        offline_api.history(sid("s"))
    with pytest.raises(StorageUnavailableError):
        offline_api.stats(sid("s"))
    assert offline_api.ready() == {
        "model": True,
        "database": False,
        "outbox": {"pending": 1, "capacity": 50_000},  # the prediction above
    }


def test_client_reports_an_unreachable_api(closed_port: int) -> None:
    api = ApiClient(f"http://127.0.0.1:{closed_port}", timeout_s=2)

    with pytest.raises(ApiUnavailableError):
        api.models()
    assert api.ready() == {
        "model": False,
        "database": False,
        "outbox": {"pending": 0, "capacity": 0},
    }
    api.close()


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((28, 28), dtype=np.uint8),
        np.zeros((280, 280, 4), dtype=np.uint8),
        np.ones((10, 10, 1), dtype=np.float32),
    ],
)
def test_encode_png_turns_arrays_into_png(image: np.ndarray) -> None:
    assert encode_png(image).startswith(b"\x89PNG")
