"""One image codec: a picture gives the same pixels in-process and over HTTP, exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from credentials import sid
from drawing import draw_digit, rgba_canvas
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.api.client import ApiClient
from digitrec.preprocessing import as_canvas, encode_png, to_mnist, to_uint8
from digitrec.service import PredictionService


def _float_drawing() -> np.ndarray:
    # Half-ink pixels are where a truncating and a rounding converter disagree (127 vs 128).
    return draw_digit(7).astype(np.float32) / 255 * np.float32(0.5)


def _images() -> dict[str, object]:
    ink = draw_digit(1)
    return {
        "float-half-ink": _float_drawing(),
        "float-0-255": draw_digit(0).astype(np.float64) * 0.5,
        "uint8-grey": ink,
        "rgba-canvas": rgba_canvas(draw_digit(7), clear=True, colour=255),
        "bool": ink > 127,
        "pil-L": Image.fromarray(ink),
        "pil-F": Image.fromarray(ink.astype(np.float32)),
    }


def test_to_uint8_rounds_half_ink_to_128() -> None:
    unit = to_uint8(np.array([[0.0, 0.5, 1.0, -0.3]], dtype=np.float32))
    assert unit.tolist() == [[0, 128, 255, 0]]
    # Any value over 1: the array is on a 0..255 scale, rounded and clipped.
    wide = to_uint8(np.array([[0.5, 127.5, 300.0]], dtype=np.float32))
    assert wide.tolist() == [[0, 128, 255]]


@pytest.mark.parametrize("name", list(_images()))
def test_png_round_trip_keeps_the_pixels_the_service_reads(name: str) -> None:
    image = _images()[name]
    decoded = Image.open(io.BytesIO(encode_png(image)))  # type: ignore[arg-type]
    assert np.array_equal(to_mnist(decoded), to_mnist(as_canvas(image)))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(_images()))
def test_in_process_and_http_predictions_see_identical_pixels(
    name: str, service: PredictionService, client: TestClient
) -> None:
    image = _images()[name]
    api = ApiClient("http://testserver", http=client)

    local = service.predict(image, session_id=sid("local"))  # type: ignore[arg-type]
    remote = api.predict(image, session_id=sid("remote"))  # type: ignore[arg-type]

    assert service.image_png(local.id) == api.image_png(remote.id, session_id=sid("remote"))
    assert local.probabilities == remote.probabilities
