"""Accuracy on real pen-drawn digits, rendered the way the browser slate returns them.

Usage:
    python bench/drawn.py PATH/TO/unipen-dev.jsonl [--model default] [--errors errors.png]

Each sample's strokes are drawn on a 280x280 RGBA canvas (opaque black, white ink, round joins
and caps, anti-aliased), with a pen width drawn from {10, 14, 18, 22, 26} px, scaled to a height
of 40-85 % of the canvas (width at most 85 %) and placed at random so the whole stroke stays on
the canvas; the generator is seeded, so every run sees the same canvases. Each canvas then goes
through `Predictor.predict`, exactly as the app sends it.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.evaluation import classification_metrics
from digitrec.inference import load_predictor
from digitrec.rendering import read_samples, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", type=Path, help="the JSON-lines file of stroke samples")
    parser.add_argument("--model", default="default")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--errors", type=Path, default=None, help="write the misread canvases here")
    args = parser.parse_args()

    samples = read_samples(args.samples)[: args.limit]
    rng = np.random.default_rng(args.seed)
    canvases = [render(s["strokes"], rng) for s in samples]
    labels = np.array([s["label"] for s in samples])

    predictor = load_predictor(args.model, args.model_dir)
    latencies, probs = [], []
    for canvas in canvases:
        start = time.perf_counter()
        prediction = predictor.predict(canvas)
        latencies.append(time.perf_counter() - start)
        probs.append(prediction.probabilities)
    p = np.array(probs)
    metrics = classification_metrics(p, labels)
    predicted = p.argmax(axis=1)
    wrong = predicted != labels

    print(f"model {args.model}: {len(samples)} pen-drawn digits, seed {args.seed}")
    print(f"accuracy               {metrics['accuracy']:.2%}")
    confident_wrong = metrics["confident_wrong"]
    print(f"wrong with >= 99% conf {confident_wrong:.2%} ({round(confident_wrong * len(p))})")
    print(f"ECE (15 bins)          {metrics['ece']:.2%}")
    print(f"latency median         {np.median(latencies) * 1000:.2f} ms (predict, one canvas)")
    per_digit = enumerate(metrics["per_digit_accuracy"])
    print("per digit              " + "  ".join(f"{d}:{a:.1%}" for d, a in per_digit))
    by_lab: dict[str, list[bool]] = defaultdict(list)
    for sample, w in zip(samples, wrong, strict=True):
        by_lab[sample.get("lab", "?")].append(bool(w))
    print(
        "per lab                "
        + "  ".join(f"{k}:{1 - np.mean(v):.1%}" for k, v in sorted(by_lab.items()))
    )
    if args.errors is not None:
        _write_errors(
            args.errors,
            [canvases[i] for i in np.flatnonzero(wrong)],
            labels[wrong],
            predicted[wrong],
        )


def _write_errors(
    path: Path, canvases: list[np.ndarray], labels: np.ndarray, predicted: np.ndarray
) -> None:
    """A sheet of the misread canvases, each captioned 'label->predicted'."""
    tile, columns = 112, 12
    rows = max(1, -(-len(canvases) // columns))
    sheet = Image.new("L", (columns * tile, rows * tile), 40)
    draw = ImageDraw.Draw(sheet)
    for i, (canvas, label, guess) in enumerate(zip(canvases, labels, predicted, strict=True)):
        x, y = (i % columns) * tile, (i // columns) * tile
        sheet.paste(Image.fromarray(canvas[:, :, 0]).resize((tile - 4, tile - 4)), (x + 2, y + 2))
        draw.text((x + 4, y + 2), f"{label}->{guess}", fill=200)
    sheet.save(path)


if __name__ == "__main__":
    main()
