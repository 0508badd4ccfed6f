"""Drive the page in AppTest: draw on its slate and read what it shows."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from drawing import rgba_canvas
from PIL import Image
from streamlit.testing.v1 import AppTest

from digitrec.ui.state import PageState


def canvas_value(pixels: np.ndarray | None, strokes: int = 1) -> dict[str, Any]:
    """The slate's component value as the browser sends it: Fabric.js JSON and a PNG data URL.

    `pixels` is a (280, 280) uint8 ink map (255 = ink); the canvas renders white ink on an
    opaque black background, RGBA.
    """
    if pixels is None:
        empty = {"objects": [], "background": "#000000"}
        return {"drawing": {"raw": empty, "data": None}, "backgroundFit": None}
    buffer = io.BytesIO()
    Image.fromarray(rgba_canvas(pixels), mode="RGBA").save(buffer, format="PNG")
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
