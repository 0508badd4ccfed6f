"""How the shipped models answer drawings that are not a single digit, and digits that are.

Usage:
    python bench/not_a_digit.py PATH/TO/shared/data [--models default seed-cnn lenet5]

Drawn as the slate returns them (`rendering.render`, seeded): the pen-drawn digits
(`unipen-dev.jsonl`); the pen-drawn letters that nobody writes as digits
(`unipen-dev-letters.jsonl`) of the writers the detector did not learn from (the "measure"
side of `negatives.split_by_writer`); two of the pen-drawn digits side by side; and marks made
here (`negatives`): dots (one click), straight ticks under 15 % of the slate, scribbles and
shapes. Per model and set it prints the share refused, by the preprocessing (empty or too
small) or by the model ("not a digit"), and the share named a digit at a confidence of at
least 50, 90 and 99 %; for the digits, the accuracy of those kept. Then MNIST test: accuracy
and the share refused. With `--kept FOLDER`, a sheet per model and set of negatives shows the
model input of every drawing it kept, with the digit it named and its confidence: whether what
was kept looks like a digit is for a person to judge; another shows the pen-drawn digits it
refused, each with its label and digit probability.

The pen-drawn files are only measured on here; nothing is tuned on them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sheets import write_sheet

from digitrec import negatives
from digitrec.config import get_settings
from digitrec.contract import EmptyDrawingError
from digitrec.data import load_mnist
from digitrec.inference import Prediction, Predictor, load_predictor
from digitrec.rendering import read_samples, render

MARKS = 200  # of each made-up kind


def answers(predictor: Predictor, canvases: list[np.ndarray]) -> list[Prediction | None]:
    """Each canvas's prediction; None where the preprocessing refuses it (empty, too small)."""
    out: list[Prediction | None] = []
    for canvas in canvases:
        try:
            out.append(predictor.predict(canvas))
        except EmptyDrawingError:
            out.append(None)
    return out


def write_kept(path: Path, canvases: list[np.ndarray], found: list[Prediction | None]) -> None:
    """A sheet of the drawings kept as digits, each with the digit named and its confidence."""
    write_sheet(
        path,
        [
            (canvas, f"{p.digit} {p.confidence:.0%}")
            for canvas, p in zip(canvases, found, strict=True)
            if p is not None and p.is_digit
        ],
    )


def write_refused(
    path: Path, canvases: list[np.ndarray], found: list[Prediction | None], labels: list[int]
) -> None:
    """A sheet of the digits refused, each with its label and the digit probability."""
    write_sheet(
        path,
        [
            (canvas, f"{label}: p {p.digit_probability or 0:.3f}" if p else f"{label}: small")
            for canvas, p, label in zip(canvases, found, labels, strict=True)
            if p is None or not p.is_digit
        ],
    )


def row(kind: str, found: list[Prediction | None], labels: list[int] | None) -> str:
    n = len(found)
    too_small = sum(p is None for p in found) / n
    refused = sum(p is not None and not p.is_digit for p in found) / n
    named = [p.confidence if p is not None and p.is_digit else 0.0 for p in found]
    cells = [too_small, refused, too_small + refused]
    cells += [float(np.mean([c >= t for c in named])) for t in (0.5, 0.9, 0.99)]
    text = f"{kind:<18} {n:>5} " + " ".join(f"{c:>8.1%}" for c in cells)
    if labels is not None:
        kept = [(p, y) for p, y in zip(found, labels, strict=True) if p is not None and p.is_digit]
        right = sum(p.digit == y for p, y in kept)
        all_right = sum(p is not None and p.digit == y for p, y in zip(found, labels, strict=True))
        text += f"   kept and right {right / n:.2%}; right ignoring refusals {all_right / n:.2%}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the folder holding unipen-dev*.jsonl")
    parser.add_argument("--models", nargs="+", default=["default", "seed-cnn", "lenet5"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the shipped models")
    parser.add_argument("--kept", type=Path, default=None, help="a folder for the sheets")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    digits = read_samples(args.data / "unipen-dev.jsonl")
    _, letters = negatives.split_by_writer(read_samples(args.data / "unipen-dev-letters.jsonl"))
    sets = {
        "pen-drawn digits": [render(s["strokes"], rng) for s in digits],
        "pen-drawn letters": [render(s["strokes"], rng) for s in letters],
        "two digits": negatives.two_digit_canvases(digits, rng),
        "dots": [negatives.dot_canvas(rng) for _ in range(MARKS)],
        "ticks": [negatives.tick_canvas(rng) for _ in range(MARKS)],
        "scribbles": [render(negatives.scribble(rng), rng) for _ in range(MARKS)],
        "shapes": [render(negatives.varied(negatives.shape(rng), rng), rng) for _ in range(MARKS)],
    }
    digit_labels = [int(s["label"]) for s in digits]
    mnist = load_mnist(get_settings().data_dir / "mnist")
    test_x, test_y = mnist.split("test")
    print(f"letters of {len({s['writer'] for s in letters})} writers the detector never saw")
    for name in args.models:
        predictor = load_predictor(name, args.model_dir)
        started = time.perf_counter()
        found = {kind: answers(predictor, canvases) for kind, canvases in sets.items()}
        seconds = time.perf_counter() - started
        threshold = (
            f"threshold {predictor.digit_threshold:.3f}" if predictor.detects else "no detector"
        )
        print(f"\n{name} ({seconds:.0f} s); {threshold}")
        print(
            f"{'set':<18} {'n':>5} {'small':>8} {'not dig':>8} {'refused':>8} "
            f"{'>=50%':>8} {'>=90%':>8} {'>=99%':>8}"
        )
        for kind, predictions in found.items():
            labels = digit_labels if kind == "pen-drawn digits" else None
            print(row(kind, predictions, labels))
            if args.kept is not None:
                sheet = args.kept / f"{name}-{kind.replace(' ', '-')}.png"
                if labels is None:
                    write_kept(sheet, sets[kind], predictions)
                else:
                    write_refused(sheet, sets[kind], predictions, labels)
        mnist_answers = predictor.predict_preprocessed(test_x.astype(np.float32) / 255)
        refused = np.mean([not p.is_digit for p in mnist_answers])
        accuracy = np.mean([p.digit == y for p, y in zip(mnist_answers, test_y, strict=True)])
        print(f"MNIST test: accuracy {accuracy:.2%} (refusals ignored), refused {refused:.2%}")


if __name__ == "__main__":
    main()
