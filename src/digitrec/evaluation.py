"""Measure a model: accuracy, per-digit accuracy, confusion matrix, calibration and latency."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from digitrec.calibration import expected_calibration_error
from digitrec.inference import Predictor

# The name of the MNIST test set among the data sets a model is measured on (the learning gates,
# the registry's metrics, Insights).
MNIST_TEST = "mnist_test"
CONFIDENT = 0.99  # "wrong with >= 99 % confidence" is the failure a user trusts most


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-digit accuracy, confusion matrix [true][predicted] and ECE."""
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_digit = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    wrong = predicted != labels
    return {
        "n": len(labels),
        "accuracy": float(1 - wrong.mean()),
        "per_digit_accuracy": [round(float(a), 5) for a in per_digit],
        "confusion": confusion.tolist(),
        "ece": expected_calibration_error(probs, labels),
        "confident_wrong": float((wrong & (probs.max(axis=1) >= CONFIDENT)).mean()),
    }


def evaluate_predictor(
    predictor: Predictor, images: np.ndarray, labels: np.ndarray, timing_samples: int = 200
) -> dict[str, Any]:
    """Metrics of a predictor on MNIST-form images (N, 28, 28) uint8, plus its latency.

    The images are fed as they are (they already have MNIST's form); latency is measured on
    single 280x280 canvases made by enlarging test digits, through `Predictor.predict`.
    """
    batch = (images.astype(np.float32) / 255)[:, None]  # (N, 1, 28, 28)
    probs = np.concatenate([predictor.predict_tensor(part) for part in np.array_split(batch, 20)])
    metrics = classification_metrics(probs, labels.astype(np.int64))
    metrics["latency_ms"] = _latency_ms(predictor, images[:timing_samples])
    return metrics


def _latency_ms(predictor: Predictor, images: np.ndarray) -> dict[str, float]:
    canvases = [np.kron(img, np.ones((10, 10), dtype=np.uint8)) for img in images]  # 280x280
    predictor.predict(canvases[0])  # warm-up: first run allocates
    times = []
    for canvas in canvases:
        start = time.perf_counter()
        predictor.predict(canvas)
        times.append((time.perf_counter() - start) * 1000)
    return {"median": float(np.median(times)), "p99": float(np.percentile(times, 99))}
