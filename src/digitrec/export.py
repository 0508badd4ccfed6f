"""Export a trained network to one ONNX file, normalisation and temperature inside the graph."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from digitrec import __version__
from digitrec.training import TrainResult

OPSET = 17


def export_onnx(result: TrainResult, name: str, path: Path) -> Path:
    """Write `image` (N, 1, 28, 28) in [0, 1] -> `logits` (N, 10) already divided by T."""
    model = result.model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    metadata = {
        "name": name,
        "version": __version__,
        "temperature": result.temperature,
        "recipe": asdict(result.config),
        "metrics": {
            "test_accuracy": result.metrics["test"]["accuracy"],
            "test_ece": result.metrics["test"]["ece"],
            "test_ece_uncalibrated": result.metrics["test_ece_uncalibrated"],
        },
        "input": "image: float32 (N, 1, 28, 28) in [0, 1], white digit on black, MNIST-centred",
        "output": "logits: float32 (N, 10), divided by the temperature (softmax: probabilities)",
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.doc_string = f"digitrec {name}: handwritten digit classifier"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def parity_gap(result: TrainResult, path: Path, images: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime logits on `images`."""
    batch = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        expected = result.model.eval()(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["logits"], {"image": batch})
    return float(np.abs(expected - actual).max())
