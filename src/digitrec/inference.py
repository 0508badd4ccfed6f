"""Predict digits with an exported ONNX model. Never imports torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from digitrec.calibration import sigmoid, softmax
from digitrec.contract import UnknownModelError
from digitrec.preprocessing import ImageSource, to_mnist

MODEL_NAMES = ("default", "seed-cnn", "lenet5", "vit", "capsnet")


@dataclass(frozen=True)
class Prediction:
    """The recogniser's answer for one image."""

    digit: int
    confidence: float  # calibrated probability of `digit`
    probabilities: tuple[float, ...]  # 10 calibrated probabilities, summing to 1
    model: str
    # Calibrated probability that the drawing is one digit at all; None: the model cannot tell.
    digit_probability: float | None = None
    # The model's decision: False when it says "not a digit" (digit_probability under its
    # threshold); always True for a model without a detector.
    is_digit: bool = True


def shipped_model_dir() -> Path:
    """The folder of ONNX models installed with the package."""
    return Path(str(resources.files("digitrec") / "assets" / "models"))


def available_models(model_dir: Path | None = None) -> list[str]:
    """Names of the models that have an ONNX file, known names first."""
    folder = model_dir or shipped_model_dir()
    found = {p.stem for p in folder.glob("*.onnx")}
    return [n for n in MODEL_NAMES if n in found] + sorted(found - set(MODEL_NAMES))


class Predictor:
    """An ONNX Runtime session for one model, fed by the shared preprocessing."""

    def __init__(
        self,
        model: Path | bytes,
        name: str | None = None,
        threads: int = 1,
        version: int | None = None,
    ) -> None:
        """`model`: an ONNX file, or its bytes (a version from the model registry)."""
        options = ort.SessionOptions()
        # One request is one small image: extra threads cost more in handoff than they save.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {k: _maybe_json(v) for k, v in meta.items()}
        stem = None if isinstance(model, bytes) else Path(model).stem
        self.name = name or str(self.metadata.get("name", stem or "model"))
        # The registry's version number; None for a file outside the registry.
        self.version = version
        outputs = {o.name for o in self._session.get_outputs()}
        # Models with a "not a digit" detector answer its logit too, and carry its threshold.
        self.detects = "digit_logit" in outputs and "digit_threshold" in self.metadata
        self.digit_threshold = float(self.metadata["digit_threshold"]) if self.detects else 0.0
        self._outputs = ["logits", "digit_logit"] if self.detects else ["logits"]

    def predict_tensor(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 10) for preprocessed images (N, 1, 28, 28) in [0, 1]."""
        return self._run(batch)[0]

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(digit probabilities (N, 10), probability of one digit (N,) or None)."""
        outputs = self._session.run(self._outputs, {"image": batch.astype(np.float32, copy=False)})
        digit = sigmoid(outputs[1]) if self.detects else None
        return softmax(outputs[0]), digit

    def predict(self, image: ImageSource) -> Prediction:
        """Preprocess one image (canvas, array, PIL image or encoded bytes) and name its digit."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageSource]) -> list[Prediction]:
        """Preprocess and predict several images in one run of the model."""
        if not images:
            return []
        return self.predict_preprocessed(np.stack([to_mnist(img) for img in images]))

    def predict_preprocessed(self, images: np.ndarray) -> list[Prediction]:
        """Predictions for images already in MNIST's form, (N, 28, 28) float32 in [0, 1]."""
        probs, digit = self._run(images[:, None])
        if digit is None:
            return [self._prediction(row, None) for row in probs]
        return [self._prediction(row, float(p)) for row, p in zip(probs, digit, strict=True)]

    def _prediction(self, probs: np.ndarray, digit_probability: float | None) -> Prediction:
        digit = int(probs.argmax())
        return Prediction(
            digit=digit,
            confidence=float(probs[digit]),
            probabilities=tuple(float(p) for p in probs),
            model=self.name,
            digit_probability=digit_probability,
            is_digit=digit_probability is None or digit_probability >= self.digit_threshold,
        )


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@lru_cache(maxsize=8)
def load_predictor(name: str = "default", model_dir: Path | None = None) -> Predictor:
    """The predictor for a named model, built once per process."""
    folder = model_dir or shipped_model_dir()
    path = folder / f"{name}.onnx"
    if not path.is_file():
        known = ", ".join(available_models(folder)) or "none"
        raise UnknownModelError(f"unknown model {name!r}; available: {known}")
    return Predictor(path, name=name)
