"""Pen strokes drawn the way the browser's slate returns them: for measuring on real drawings.

The protocol of the pen-drawn sets (`unipen-dev.jsonl`): each sample's strokes on a 280x280
RGBA canvas (opaque black, white ink, round joins and caps, anti-aliased), with a pen width
drawn from {10, 14, 18, 22, 26} px, scaled to a height of 40-85 % of the canvas (width at most
85 %) and placed at random so the whole stroke stays on the canvas; a seeded generator, so
every run sees the same canvases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from digitrec.preprocessing import to_mnist

CANVAS_PX = 280
PEN_WIDTHS_PX = (10, 14, 18, 22, 26)
HEIGHT_RANGE = (0.40, 0.85)  # of the canvas
MAX_WIDTH = 0.85  # of the canvas
SUPERSAMPLE = 4  # draw at 4x and reduce: the browser's canvas anti-aliases its strokes


def render(strokes: list[list[list[float]]], rng: np.random.Generator) -> np.ndarray:
    """One sample as the slate returns it: (280, 280, 4) uint8 RGBA."""
    points = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    width, height = np.maximum(high - low, 1e-6)
    pen = float(rng.choice(PEN_WIDTHS_PX))
    scale = rng.uniform(*HEIGHT_RANGE) * CANVAS_PX / height
    scale = min(scale, MAX_WIDTH * CANVAS_PX / width)
    span = np.array([width, height]) * scale
    margin = pen / 2
    offset = np.array([rng.uniform(margin, max(margin, CANVAS_PX - margin - s)) for s in span])
    big = Image.new("L", (CANVAS_PX * SUPERSAMPLE,) * 2, 0)
    draw = ImageDraw.Draw(big)
    radius = pen * SUPERSAMPLE / 2
    for stroke in strokes:
        xy = [tuple(((np.asarray(p) - low) * scale + offset) * SUPERSAMPLE) for p in stroke]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=round(pen * SUPERSAMPLE))
        for x, y in xy:  # round joins and caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    grey = np.asarray(big.resize((CANVAS_PX, CANVAS_PX), Image.Resampling.BOX))
    alpha = np.full_like(grey, 255)
    return np.stack([grey, grey, grey, alpha], axis=-1)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The samples of a JSON-lines file: `{"label": ..., "strokes": [[[x, y], ...], ...]}`."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def drawn_digits(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A pen-drawn set as the model sees it: (N, 28, 28) float32 images and (N,) labels."""
    samples = read_samples(path)
    rng = np.random.default_rng(seed)
    images = np.stack([to_mnist(render(s["strokes"], rng)) for s in samples])
    return images, np.array([int(s["label"]) for s in samples])
