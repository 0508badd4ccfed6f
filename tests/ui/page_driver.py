"""Drive the page in AppTest: draw on its slate and read what it shows."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from digitrec.ui.state import PageState

SLATE_PX = 280


def draw_strokes(strokes: list[list[tuple[float, float]]], width_px: int = 18) -> np.ndarray:
    """A (280, 280) uint8 ink map of polylines in slate pixels, drawn with a round pen."""
    image = Image.new("L", (SLATE_PX, SLATE_PX), 0)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill=255, width=width_px, joint="curve")
        for x, y in (stroke[0], stroke[-1]):
            r = width_px / 2
            pen.ellipse([(x - r, y - r), (x + r, y + r)], fill=255)
    return np.asarray(image)


def ellipse(
    cx: float, cy: float, rx: float, ry: float, points: int = 24
) -> list[tuple[float, float]]:
    """A closed loop of `points` points, as a person draws a 0."""
    angles = np.linspace(0.0, 2.0 * np.pi, points + 1)
    return [(cx + rx * np.sin(a), cy - ry * np.cos(a)) for a in angles]


# Digits drawn the way a person would, filling about 60% of the slate.
DIGITS: dict[int, list[list[tuple[float, float]]]] = {
    1: [[(150, 55), (145, 140), (140, 225)]],
    7: [[(85, 65), (195, 65), (160, 145), (125, 225)]],
    0: [ellipse(140, 140, 55, 85)],
}


def canvas_value(pixels: np.ndarray | None, strokes: int = 1) -> dict[str, Any]:
    """The slate's component value as the browser sends it: Fabric.js JSON and a PNG data URL.

    `pixels` is a (280, 280) uint8 ink map (255 = ink); the canvas renders white ink on an
    opaque black background, RGBA.
    """
    if pixels is None:
        empty = {"objects": [], "background": "#000000"}
        return {"drawing": {"raw": empty, "data": None}, "backgroundFit": None}
    rgba = np.zeros((*pixels.shape, 4), dtype=np.uint8)
    rgba[..., :3] = pixels[..., None]
    rgba[..., 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    objects = [{"type": "path", "stroke": "#FFFFFF"}] * strokes
    return {
        "drawing": {"raw": {"objects": objects, "background": "#000000"}, "data": url},
        "backgroundFit": None,
    }


def draw_on_slate(at: AppTest, pixels: np.ndarray | None, strokes: int = 1) -> None:
    """Put a drawing on the page's slate, as the canvas would after the mouse is released."""
    at.session_state[PageState(at.session_state).canvas_key] = canvas_value(pixels, strokes)


def texts(at: AppTest) -> str:
    """Every piece of text on the page, one per line (for `in` checks)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for kind in ("info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)
