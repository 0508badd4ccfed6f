"""How the shipped models answer drawings that are not a single digit.

Usage:
    python bench/not_a_digit.py PATH/TO/shared/data [--models default seed-cnn lenet5]

Drawn as the slate returns them (`rendering.render`, seeded): the pen-drawn digits
(`unipen-dev.jsonl`), the pen-drawn letters that nobody writes as digits
(`unipen-dev-letters.jsonl`), two of those digits side by side, and marks made here: dots (one
click), straight ticks under 15 % of the slate, scribbles (a random smooth walk). Per model
and set it prints how many the preprocessing refuses (empty or too small) and how many get a
digit at a confidence of at least 50, 90 and 99 %. Then the best that the confidence alone can
do: the threshold under which 0.5 % of the pen-drawn digits fall (chosen on those digits
themselves, so an upper bound, not something to ship), and what it would refuse of each set.

Both files are only measured on here.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.contract import EmptyDrawingError
from digitrec.inference import Predictor, load_predictor
from digitrec.rendering import CANVAS_PX, PEN_WIDTHS_PX, read_samples, render

DIGITS_REFUSED = 0.005  # of the pen-drawn digits, at the reference threshold
MARKS = 200  # of each made-up kind
Canvas = np.ndarray  # (280, 280, 4) uint8 RGBA, as the slate returns it


def two_digits(samples: list[dict], rng: np.random.Generator) -> list[Canvas]:
    """Consecutive pairs of digits drawn side by side, a small gap between them."""
    canvases = []
    for left, right in zip(samples[::2], samples[1::2], strict=False):
        strokes = [s for s in left["strokes"]]
        shift = max(p[0] for s in left["strokes"] for p in s) + 250  # coordinates span 0..1000
        strokes += [[[x + shift, y] for x, y in s] for s in right["strokes"]]
        canvases.append(render(strokes, rng))
    return canvases


def _slate(
    draw_on: Callable[[ImageDraw.ImageDraw, float], None], rng: np.random.Generator
) -> Canvas:
    grey = Image.new("L", (CANVAS_PX, CANVAS_PX), 0)
    draw_on(ImageDraw.Draw(grey), float(rng.choice(PEN_WIDTHS_PX)))
    pixels = np.asarray(grey)
    return np.stack([pixels, pixels, pixels, np.full_like(pixels, 255)], axis=-1)


def dots(rng: np.random.Generator) -> list[Canvas]:
    def dot(draw: ImageDraw.ImageDraw, pen: float) -> None:
        x, y = rng.uniform(pen, CANVAS_PX - pen, 2)
        draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)

    return [_slate(dot, rng) for _ in range(MARKS)]


def ticks(rng: np.random.Generator) -> list[Canvas]:
    def tick(draw: ImageDraw.ImageDraw, pen: float) -> None:
        length = rng.uniform(0.03, 0.15) * CANVAS_PX
        angle = rng.uniform(0, np.pi)
        x, y = rng.uniform(0.2 * CANVAS_PX, 0.8 * CANVAS_PX, 2)
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=255, width=round(pen))

    return [_slate(tick, rng) for _ in range(MARKS)]


def scribbles(rng: np.random.Generator) -> list[Canvas]:
    """A random smooth walk of 40-120 steps: what a bored hand does on a slate."""
    canvases = []
    for _ in range(MARKS):
        steps = int(rng.integers(40, 120))
        turn = np.cumsum(rng.normal(0, 0.5, steps))
        walk = np.cumsum(np.stack([np.cos(turn), np.sin(turn)], axis=1) * 40, axis=0)
        canvases.append(render([walk.tolist()], rng))
    return canvases


def confidences(predictor: Predictor, canvases: list[Canvas]) -> np.ndarray:
    """The top probability of each canvas; NaN where the preprocessing refuses it."""
    top = np.full(len(canvases), np.nan)
    for i, canvas in enumerate(canvases):
        with contextlib.suppress(EmptyDrawingError):  # empty or too small: NaN
            top[i] = predictor.predict(canvas).confidence
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the folder holding unipen-dev*.jsonl")
    parser.add_argument("--models", nargs="+", default=["default", "seed-cnn", "lenet5"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    digits = read_samples(args.data / "unipen-dev.jsonl")
    letters = read_samples(args.data / "unipen-dev-letters.jsonl")
    sets = {
        "pen-drawn digits": [render(s["strokes"], rng) for s in digits],
        "pen-drawn letters": [render(s["strokes"], rng) for s in letters],
        "two digits": two_digits(digits, rng),
        "dots": dots(rng),
        "ticks": ticks(rng),
        "scribbles": scribbles(rng),
    }
    for name in args.models:
        predictor = load_predictor(name)
        started = time.perf_counter()
        tops = {kind: confidences(predictor, canvases) for kind, canvases in sets.items()}
        seconds = time.perf_counter() - started
        drawn = tops["pen-drawn digits"]
        threshold = float(np.nanquantile(drawn, DIGITS_REFUSED))
        print(f"\n{name} ({seconds:.0f} s); reference threshold {threshold:.3f}")
        print(
            f"{'set':<18} {'n':>5} {'refused':>8} {'>=50%':>7} {'>=90%':>7} {'>=99%':>7} "
            f"{'under ref':>9}"
        )
        for kind, top in tops.items():
            n = len(top)
            refused = np.isnan(top)
            named = np.where(refused, 0.0, top)
            below = refused | (named < threshold)
            cells = [refused.mean(), *((named >= t).mean() for t in (0.5, 0.9, 0.99)), below.mean()]
            print(
                f"{kind:<18} {n:>5} "
                + " ".join(f"{c:>7.1%}" for c in cells[:4])
                + f" {cells[4]:>9.1%}"
            )


if __name__ == "__main__":
    main()
