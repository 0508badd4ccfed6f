"""Drawings that are not one digit: letters, rows of digits, scribbles, shapes, marks.

What the default learns its "not a digit" answer from, and what `bench/not_a_digit.py` measures
it on. Made as the slate returns them (280x280 RGBA canvases, `rendering.render`) or, for rows
of MNIST digits, as grey images that then go through `to_mnist` like any drawing. Every maker
takes a seeded generator, so a set is the same on every run.

Letters are split by writer (`split_by_writer`): the model learns from some writers' letters
and is measured on the others'. Digits cut in half are left out on purpose: the right half of a
3 is a 3, the top of a 9 a 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from digitrec.rendering import CANVAS_PX, PEN_WIDTHS_PX, render

Canvas = np.ndarray  # (280, 280, 4) uint8 RGBA, as the slate returns it
Strokes = list[list[list[float]]]  # strokes of [x, y] points, y pointing down
NEGATIVE_KINDS = ("letters", "digit rows", "scribbles", "shapes", "crossed out")


def split_by_writer(
    samples: Sequence[dict[str, Any]], measure_share: float = 0.4, salt: str = ""
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(learn, measure): every writer's samples on one side, by a hash of the writer's name.

    Another `salt` splits the same writers another way (to split the learning side again).
    """
    learn: list[dict[str, Any]] = []
    measure: list[dict[str, Any]] = []
    for sample in samples:
        digest = hashlib.sha256(f"{salt}{sample['writer']}".encode()).digest()
        side = measure if int.from_bytes(digest[:4], "big") / 2**32 < measure_share else learn
        side.append(sample)
    return learn, measure


def varied(strokes: Strokes, rng: np.random.Generator, slant: float = 0.25) -> Strokes:
    """The strokes under a random rotation (about ±11°), shear and aspect change."""
    angle = rng.uniform(-0.2, 0.2)
    shear = rng.uniform(-slant, slant)
    aspect = np.exp(rng.uniform(-0.25, 0.25))
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, shear], [0.0, 1.0]])
    return [(np.asarray(s, dtype=np.float64).reshape(-1, 2) @ matrix.T).tolist() for s in strokes]


def side_by_side(left: Strokes, right: Strokes, gap: float = 0.25) -> Strokes:
    """Two samples' strokes (coordinates spanning 0..1000) on one line, `gap` of 1000 apart."""
    shift = max(p[0] for s in left for p in s) + gap * 1000
    return [*left, *([[x + shift, y] for x, y in s] for s in right)]


def two_digit_canvases(samples: Sequence[dict[str, Any]], rng: np.random.Generator) -> list[Canvas]:
    """Consecutive pairs of pen-drawn samples side by side, a small gap between them."""
    return [
        render(side_by_side(a["strokes"], b["strokes"]), rng)
        for a, b in zip(samples[::2], samples[1::2], strict=False)
    ]


def digit_row(digits: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Two or three MNIST-form digits (28x28 in [0, 1]) written on one line, as one grey image.

    Each digit is cropped to its ink, scaled by 0.8-1.2 and set beside the last with a gap of
    -15 to +40 % of the height (a negative gap overlaps them) and a small vertical jitter.
    """
    crops = []
    for digit in digits:
        rows, cols = np.flatnonzero(digit.max(1) > 0.1), np.flatnonzero(digit.max(0) > 0.1)
        crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else digit
        scale = rng.uniform(0.8, 1.2) * 40 / max(crop.shape[0], 1)
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crops.append(cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR))
    height = max(c.shape[0] for c in crops)
    xs = [8]
    for crop in crops[:-1]:
        xs.append(xs[-1] + crop.shape[1] + round(rng.uniform(-0.15, 0.4) * height))
    ys = [8 + round(rng.uniform(0, 0.2) * height) for _ in crops]
    xs = [max(x, 0) for x in xs]
    image = np.zeros(
        (
            max(y + c.shape[0] for y, c in zip(ys, crops, strict=True)) + 8,
            max(x + c.shape[1] for x, c in zip(xs, crops, strict=True)) + 8,
        ),
        dtype=np.float32,
    )
    for x, y, crop in zip(xs, ys, crops, strict=True):
        window = image[y : y + crop.shape[0], x : x + crop.shape[1]]
        np.maximum(window, crop[: window.shape[0], : window.shape[1]], out=window)
    return image


def scribble(rng: np.random.Generator) -> Strokes:
    """A random smooth walk of 40-120 steps: what a bored hand does on a slate."""
    steps = int(rng.integers(40, 120))
    turn = np.cumsum(rng.normal(0, 0.5, steps))
    walk = np.cumsum(np.stack([np.cos(turn), np.sin(turn)], axis=1) * 40, axis=0)
    return [walk.tolist()]


def shape(rng: np.random.Generator) -> Strokes:
    """A shape nobody takes for a digit: a polygon, star, cross, zigzag, spiral, arrow, bar."""
    kind = rng.integers(8)
    if kind == 0:  # a triangle, square, pentagon or hexagon, closed
        corners = int(rng.integers(3, 7))
        turn = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, corners + 1)
        return [np.stack([np.cos(turn), np.sin(turn)], axis=1).tolist()]
    if kind == 1:  # a five-pointed star in one stroke
        turn = rng.uniform(0, 2 * np.pi) + np.linspace(0, 4 * np.pi, 6)
        return [np.stack([np.cos(turn), np.sin(turn)], axis=1).tolist()]
    if kind == 2:  # a cross: + or x
        tilt = rng.choice([0.0, np.pi / 4]) + rng.uniform(-0.2, 0.2)
        ends = [[np.cos(tilt + a), np.sin(tilt + a)] for a in (0, np.pi, np.pi / 2, -np.pi / 2)]
        return [[ends[0], ends[1]], [ends[2], ends[3]]]
    if kind == 3:  # a zigzag of 3-7 teeth
        teeth = int(rng.integers(3, 8))
        xs = np.linspace(0, 1, teeth * 2 + 1)
        return [np.stack([xs, (np.arange(xs.size) % 2) * rng.uniform(0.3, 1.0)], axis=1).tolist()]
    if kind == 4:  # a spiral of two to three turns
        turn = np.linspace(0, rng.uniform(4, 6) * np.pi, 120)
        radius = 0.1 + turn / turn[-1]
        return [np.stack([radius * np.cos(turn), radius * np.sin(turn)], axis=1).tolist()]
    if kind == 5:  # an arrow pointing left, right, up or down
        shaft, head = [[0, 0], [1, 0]], [[0.7, -0.25], [1, 0], [0.7, 0.25]]
        quarter = int(rng.integers(4)) * np.pi / 2
        rotation = np.array(
            [[np.cos(quarter), -np.sin(quarter)], [np.sin(quarter), np.cos(quarter)]]
        )
        return [(np.asarray(s, dtype=float) @ rotation.T).tolist() for s in (shaft, head)]
    if kind == 6:  # a grid of three or four lines each way (#)
        lines = int(rng.integers(2, 4))
        at = np.linspace(0, 1, lines)
        return [[[0, y], [1, y]] for y in at] + [[[x, 0], [x, 1]] for x in at]
    # a long horizontal bar, or two (=): a digit is never much wider than tall
    bars = int(rng.integers(1, 3))
    return [[[0, 0.3 * i], [1, 0.3 * i + rng.uniform(-0.05, 0.05)]] for i in range(bars)]


def crossed_out(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST-form digit struck out: an X over it, or a zigzag scribbled across it."""
    big = cv2.resize(digit, (112, 112), interpolation=cv2.INTER_LINEAR)
    out = Image.fromarray((big * 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    pen = int(rng.integers(6, 12))
    low, high = 12 + rng.uniform(-6, 6, 2), 100 + rng.uniform(-6, 6, 2)
    if rng.random() < 0.5:
        draw.line([(low[0], low[1]), (high[0], high[1])], fill=255, width=pen)
        draw.line([(low[0], high[1]), (high[0], low[1])], fill=255, width=pen)
    else:
        passes = int(rng.integers(4, 9))
        ys = np.linspace(low[1], high[1], passes)
        xs = np.where(np.arange(passes) % 2 == 0, low[0], high[0])
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=pen)
    return np.asarray(out, dtype=np.float32) / 255


def dot_canvas(rng: np.random.Generator) -> Canvas:
    """One click on the slate: a round dot a pen wide."""

    def dot(draw: ImageDraw.ImageDraw, pen: float) -> None:
        x, y = rng.uniform(pen, CANVAS_PX - pen, 2)
        draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)

    return _slate(dot, rng)


def tick_canvas(rng: np.random.Generator) -> Canvas:
    """A straight tick 3-15 % of the slate long, at any angle."""

    def tick(draw: ImageDraw.ImageDraw, pen: float) -> None:
        length = rng.uniform(0.03, 0.15) * CANVAS_PX
        angle = rng.uniform(0, np.pi)
        x, y = rng.uniform(0.2 * CANVAS_PX, 0.8 * CANVAS_PX, 2)
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=255, width=round(pen))

    return _slate(tick, rng)


def _slate(
    draw_on: Callable[[ImageDraw.ImageDraw, float], None], rng: np.random.Generator
) -> Canvas:
    grey = Image.new("L", (CANVAS_PX, CANVAS_PX), 0)
    draw_on(ImageDraw.Draw(grey), float(rng.choice(PEN_WIDTHS_PX)))
    pixels = np.asarray(grey)
    return np.stack([pixels, pixels, pixels, np.full_like(pixels, 255)], axis=-1)
