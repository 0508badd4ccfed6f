"""POST /predict: both request forms, and a clear 4xx JSON answer for every bad input."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import numpy as np
import pytest
from credentials import ADMIN, sid
from drawing import MARKS, draw_strokes, rgba_canvas
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from digitrec.config import Settings
from digitrec.schemas import PredictionPublic


def test_predict_json_base64_answers_a_logged_prediction(
    client: TestClient, digit_b64: str
) -> None:
    response = client.post("/predict", json={"image": digit_b64, "session_id": sid("s1")})

    assert response.status_code == 200
    prediction = PredictionPublic.model_validate(response.json())
    assert prediction.session_id == sid("s1")
    assert prediction.model == "default"
    assert prediction.logged
    assert prediction.probabilities[prediction.prediction] == pytest.approx(prediction.confidence)
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.latency_ms > 0


def test_predict_multipart_upload_answers_a_prediction(
    client: TestClient, digit_png: bytes
) -> None:
    response = client.post(
        "/predict",
        files={"file": ("digit.png", digit_png, "image/png")},
        data={"session_id": sid("s2"), "model": "lenet5"},
    )

    assert response.status_code == 200
    assert response.json()["session_id"] == sid("s2")
    assert response.json()["model"] == "lenet5"


def test_predict_accepts_jpeg_and_data_urls(client: TestClient, digit_png: bytes) -> None:
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(digit_png)).convert("RGB").save(jpeg, format="JPEG")
    data_url = "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode()

    assert client.post("/predict", json={"image": data_url}).status_code == 200
    upload = {"file": ("digit.jpg", jpeg.getvalue(), "image/jpeg")}
    assert client.post("/predict", files=upload).status_code == 200


def test_predict_accepts_the_page_canvas_rgba(client: TestClient, digit_canvas: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(digit_canvas).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()

    assert client.post("/predict", json={"image": image}).status_code == 200


def test_predict_without_session_id_starts_a_new_session(
    client: TestClient, digit_b64: str
) -> None:
    first = client.post("/predict", json={"image": digit_b64}).json()
    second = client.post("/predict", json={"image": digit_b64}).json()

    assert first["session_id"] and second["session_id"]
    assert first["session_id"] != second["session_id"]


def _assert_error(response: Response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert "Traceback" not in body["detail"]
    for word in words:
        assert word in body["detail"].lower()
    return str(body["detail"])


def test_predict_refuses_bytes_that_are_no_image(client: TestClient) -> None:
    upload = {"file": ("notes.txt", b"hello, not a picture", "text/plain")}
    _assert_error(client.post("/predict", files=upload), (400, 422), "png")
    junk = base64.b64encode(b"\x89PNG but not really").decode()
    _assert_error(client.post("/predict", json={"image": junk}), (400, 422), "png")


def test_predict_refuses_invalid_base64(client: TestClient) -> None:
    _assert_error(client.post("/predict", json={"image": "not base64!"}), (400, 422), "base64")


def test_predict_refuses_an_empty_image(client: TestClient) -> None:
    upload = {"file": ("empty.png", b"", "image/png")}
    _assert_error(client.post("/predict", files=upload), 422, "empty")
    _assert_error(client.post("/predict", json={"image": ""}), 422, "empty")


def test_predict_says_nothing_is_drawn_on_a_blank_slate(
    client: TestClient, blank_png: bytes
) -> None:
    response = client.post("/predict", files={"file": ("blank.png", blank_png, "image/png")})

    _assert_error(response, 422, "nothing is drawn")
    assert response.headers["x-error-code"] == "empty_drawing"


@pytest.mark.parametrize("mark", sorted(MARKS))
def test_predict_says_a_mark_too_small_to_be_a_digit_is_no_digit_and_logs_nothing(
    client: TestClient, mark: str
) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgba_canvas(draw_strokes(MARKS[mark]))).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()

    response = client.post("/predict", json={"image": image, "session_id": sid("s")})

    _assert_error(response, 422, "too small")
    assert response.headers["x-error-code"] == "drawing_too_small"
    assert client.get("/predictions", headers=ADMIN).json()["count"] == 0


def test_predict_refuses_a_50_megapixel_image_before_decoding_it(
    client: TestClient, huge_png: bytes
) -> None:
    response = client.post("/predict", files={"file": ("huge.png", huge_png, "image/png")})

    _assert_error(response, (413, 422), "too large")


def test_predict_refuses_a_body_over_the_limit_from_its_content_length(
    client: TestClient, settings: Settings
) -> None:
    body = b"x" * (settings.max_upload_bytes + 1)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})

    _assert_error(response, 413, "larger than")


def test_predict_refuses_a_streamed_body_once_it_passes_the_limit(
    client: TestClient, settings: Settings
) -> None:
    chunk = b"x" * 65536

    def stream() -> Iterator[bytes]:  # no Content-Length: sent with chunked transfer encoding
        for _ in range(settings.max_upload_bytes // len(chunk) + 50):
            yield chunk

    headers = {"content-type": "application/json"}
    response = client.post("/predict", content=stream(), headers=headers)

    assert response.request.headers.get("transfer-encoding") == "chunked"
    _assert_error(response, 413, "larger than")


def test_predict_refuses_a_streamed_multipart_upload_over_the_limit(
    client: TestClient, settings: Settings
) -> None:
    big = b"\x89PNG" + b"\0" * (settings.max_upload_bytes + 10)
    response = client.post("/predict", files={"file": ("big.png", big, "image/png")})

    _assert_error(response, 413)


def test_predict_answers_404_for_an_unknown_model(client: TestClient, digit_b64: str) -> None:
    response = client.post("/predict", json={"image": digit_b64, "model": "resnet-9000"})

    _assert_error(response, (404, 422), "unknown model")


def test_predict_refuses_other_content_types(client: TestClient, digit_png: bytes) -> None:
    response = client.post("/predict", content=digit_png, headers={"content-type": "image/png"})

    _assert_error(response, 415, "multipart")


def test_predict_refuses_a_multipart_request_without_the_file(client: TestClient) -> None:
    response = client.post("/predict", data={"session_id": sid("s")}, files={"other": ("a", b"b")})

    _assert_error(response, 422, "file")


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"session_id": sid("s")}',
        b'{"image": 12}',
        b'{"image": "aGk=", "session_id": "has spaces"}',
        b'{"image": "aGk=", "session_id": "nul\\u0000byte"}',
        b'{"image": "aGk=", "model": "../../etc/passwd"}',
    ],
)
def test_predict_refuses_malformed_json_with_422(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})

    _assert_error(response, 422)
