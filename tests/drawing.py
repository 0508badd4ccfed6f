"""Digits drawn for the tests: strokes in slate pixels, rendered as the page's slate shows them.

The slate is 280x280 px, black, drawn on with an 18 px white pen with round ends and joins.
`draw_strokes` gives the ink as an (H, W) uint8 map (255 = ink); `rgba_canvas` turns that into
the (H, W, 4) RGBA picture the drawing component returns.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

SLATE_PX = 280  # the page's drawing slate is 280x280
PEN_PX = 18  # the page's pen

Point = tuple[float, float]
Stroke = Sequence[Point]


def loop(cx: float, cy: float, rx: float, ry: float, points: int = 24) -> list[Point]:
    """A closed oval of `points` segments, started at the top and drawn clockwise, like a 0."""
    # Degrees from the x axis; y points down, so increasing angles go clockwise on screen.
    angles = [math.radians(-90 + 360 * k / points) for k in range(points + 1)]
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Digits as a person draws them, in slate pixels, filling about 60% of the slate.
DIGITS: dict[int, list[Stroke]] = {
    0: [loop(140, 140, 55, 85)],
    1: [[(150, 55), (145, 140), (140, 225)]],
    7: [[(85, 65), (195, 65), (160, 145), (125, 225)]],
}


# Marks too small to be a digit, as the page's pen leaves them: a click (one point, a dot as
# wide as the pen) and a tick (a flick of the pen a few pixels long).
MARKS: dict[str, list[Stroke]] = {
    "click": [[(140, 140)]],
    "tick": [[(136, 141), (139, 144), (144, 137)]],
}


def in_box(stroke: Stroke, left: float, top: float, height: float, aspect: float) -> list[Point]:
    """A stroke given in units of a box (x, y in 0..1) placed in pixels at (left, top).

    The box is `height` px tall and `aspect * height` px wide.
    """
    return [(left + x * height * aspect, top + y * height) for x, y in stroke]


def draw_strokes(
    strokes: Sequence[Stroke],
    pen_px: int = PEN_PX,
    shape: tuple[int, int] = (SLATE_PX, SLATE_PX),  # (H, W)
    round_ends: bool = True,
    supersample: int = 1,
) -> np.ndarray:
    """An (H, W) uint8 ink map (255 = ink) of polylines, joints rounded.

    `round_ends=False` leaves square ends, as a plain `ImageDraw.line` draws them.
    `supersample=4` draws at 4x and reduces, anti-aliased as a browser's canvas draws.
    """
    k = supersample
    image = Image.new("L", (shape[1] * k, shape[0] * k), 0)
    pen = ImageDraw.Draw(image)
    r = pen_px * k / 2
    for stroke in strokes:
        points = [(x * k, y * k) for x, y in stroke] if k > 1 else list(stroke)
        pen.line(points, fill=255, width=pen_px * k, joint="curve")
        if round_ends:
            for x, y in (points[0], points[-1]):
                pen.ellipse([(x - r, y - r), (x + r, y + r)], fill=255)
    if k > 1:
        image = image.resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(image)


def draw_digit(digit: int, pen_px: int = PEN_PX) -> np.ndarray:
    """A (280, 280) uint8 ink map of one of DIGITS drawn with the page's round pen."""
    return draw_strokes(DIGITS[digit], pen_px)


def rgba_canvas(ink: np.ndarray, clear: bool = False, colour: int | None = None) -> np.ndarray:
    """The (H, W, 4) uint8 RGBA picture of an ink map: white ink on opaque black by default.

    `clear` puts the ink on a transparent layer: alpha follows the ink. `colour` paints every
    pixel's RGB that grey level instead of the ink's, so only alpha tells the ink apart.
    """
    canvas = np.empty((*ink.shape, 4), dtype=np.uint8)
    canvas[..., :3] = ink[..., None] if colour is None else colour
    canvas[..., 3] = ink if clear else 255
    return canvas


def encode_image(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encoded bytes (PNG or JPEG) of a uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()
