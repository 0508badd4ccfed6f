"""POST /predict with every picture Pillow can write, broken ones and bombs: never a 500.

PNG, JPEG and WebP are read; every other format is refused (422) before a decoder sees its
pixels; damaged bytes are a 422 and too many pixels a 413, whatever the decoder raises.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from drawing import draw_digit
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image, PngImagePlugin

from digitrec.preprocessing import ACCEPTED_FORMATS

# Every mode Pillow knows; each format writes the ones it can.
MODES = (
    "1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
    "I", "I;16", "I;16B", "I;16L", "I;16N", "F",
)  # fmt: skip
ALLOWED_STATUSES = {200, 413, 415, 422}
# Pillow writes a one-picture MPO (phones' multi-picture JPEG) as a plain JPEG.
READ_AS_ACCEPTED = (*ACCEPTED_FORMATS, "MPO")


def _written(picture: Image.Image, fmt: str) -> bytes | None:
    """`picture` as a `fmt` file, or None where Pillow cannot write that mode in that format."""
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picture.save(buffer, format=fmt)
    except Exception:  # the mode is not one of the format's, or it needs a missing library
        return None
    return buffer.getvalue()


def _writable_formats() -> list[str]:
    """Every format this Pillow writes (not the stubs that need a handler installed)."""
    Image.init()  # registers every plugin, so Image.SAVE lists them all
    probes = [Image.new(mode, (8, 8)) for mode in ("RGB", "L", "1")]
    return sorted(f for f in Image.SAVE if any(_written(p, f) for p in probes))


def _picture(mode: str) -> tuple[Image.Image, bool] | None:
    """A drawn 7 in `mode` (True), a blank picture (False) where Pillow cannot convert to it,
    or None where it has no such mode."""
    drawing = Image.fromarray(draw_digit(7))
    try:
        return drawing.convert(mode), True
    except (ValueError, OSError):
        try:
            return Image.new(mode, drawing.size), False
        except (ValueError, OSError):
            return None


def _encoded(fmt: str) -> dict[str, tuple[bytes, bool]]:
    """mode -> (bytes written as `fmt`, whether a digit is drawn), for the modes `fmt` writes."""
    written = {}
    for mode in MODES:
        made = _picture(mode)
        body = None if made is None else _written(made[0], fmt)
        if made is not None and body is not None:
            written[mode] = body, made[1]
    return written


def _post(client: TestClient, body: bytes) -> Response:
    return client.post("/predict", files={"file": ("upload", body, "application/octet-stream")})


@pytest.mark.parametrize("fmt", _writable_formats())
def test_predict_answers_every_format_and_mode_without_a_server_error(
    client: TestClient, fmt: str
) -> None:
    for mode, (body, drawn) in _encoded(fmt).items():
        response = _post(client, body)
        assert response.status_code in ALLOWED_STATUSES, f"{fmt} {mode}: {response.text}"
        if fmt in READ_AS_ACCEPTED:
            expected = 200 if drawn else 422  # a blank picture: nothing is drawn
            assert response.status_code == expected, f"{fmt} {mode}: {response.text}"
        else:  # refused from its header, whatever it holds
            assert response.status_code == 422, f"{fmt} {mode}: {response.text}"
            assert response.json()["detail"] == "not a readable PNG, JPEG or WebP image"


def _damaged(body: bytes) -> dict[str, bytes]:
    """Truncated and corrupted versions of an image file."""
    rng = np.random.default_rng(len(body))
    flipped = bytearray(body)
    for at in rng.integers(len(body) // 4, len(body), 16):
        flipped[at] ^= 0xFF
    middle = len(body) // 2
    return {
        "header only": body[:32],
        "half": body[:middle],
        "all but the last byte": body[:-1],
        "16 bytes flipped": bytes(flipped),
        "a hole in the middle": body[: middle - 64] + body[middle + 64 :],
        "zeros over the middle": body[: middle - 64] + bytes(128) + body[middle + 64 :],
        "doubled": body + body,
    }


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_predict_answers_truncated_and_corrupted_images_with_4xx(
    client: TestClient, fmt: str
) -> None:
    for mode, (body, _) in _encoded(fmt).items():
        for damage, broken in _damaged(body).items():
            response = _post(client, broken)
            assert response.status_code in ALLOWED_STATUSES, f"{fmt} {mode} {damage}"


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds a scrap of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64)))


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size."""
    buffer = io.BytesIO()
    Image.fromarray(draw_digit(7)).save(buffer, format="JPEG")
    body = bytearray(buffer.getvalue())
    frame = body.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    body[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(body)


def _webp_claiming(width: int, height: int) -> bytes:
    """A small lossless WebP whose VP8L header claims another size (14 bits a side)."""
    buffer = io.BytesIO()
    Image.fromarray(draw_digit(7)).save(buffer, format="WEBP", lossless=True)
    body = bytearray(buffer.getvalue())
    at = body.index(b"VP8L") + 9  # chunk id, chunk size, signature byte 0x2f
    (bits,) = struct.unpack("<I", body[at : at + 4])
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | (height - 1) << 14
    body[at : at + 4] = struct.pack("<I", bits)
    return bytes(body)


BOMBS = {
    # Past Pillow's own limit (2 x Image.MAX_IMAGE_PIXELS): Pillow refuses it at open.
    "PNG 100000x100000": lambda: _png_header(100_000, 100_000),
    "JPEG 60000x60000": lambda: _jpeg_claiming(60_000, 60_000),
    "WebP 16384x16384": lambda: _webp_claiming(16_384, 16_384),
    # Under Pillow's limit, over ours.
    "PNG 4001x3000": lambda: _png_header(4001, 3000),
    "PNG 7072x7072, real pixels": lambda: _real_png(7072, 7072),
    "JPEG 5000x5000": lambda: _jpeg_claiming(5000, 5000),
    "WebP 5000x5000": lambda: _webp_claiming(5000, 5000),
}


def _real_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 0).save(buffer, format="PNG")  # ~50 kB for 50 MP
    return buffer.getvalue()


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_predict_refuses_images_with_too_many_pixels_with_413(
    client: TestClient, bomb: str
) -> None:
    response = _post(client, BOMBS[bomb]())

    assert response.status_code == 413, response.text
    assert response.headers["x-error-code"] == "too_large"
    assert "too large" in response.json()["detail"]


def test_predict_refuses_a_png_whose_text_chunks_unpack_past_pillows_limit(
    client: TestClient,
) -> None:
    text = PngImagePlugin.PngInfo()
    for i in range(70):  # 70 MB of text once unpacked, in a ~70 kB file
        text.add_text(f"note{i}", "x" * 1_000_000, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(draw_digit(7)).save(buffer, format="PNG", pnginfo=text)

    response = _post(client, buffer.getvalue())

    assert response.status_code == 422, response.text
