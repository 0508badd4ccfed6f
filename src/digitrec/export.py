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
from digitrec.models import Detecting
from digitrec.training import TrainResult

OPSET = 17


def export_onnx(result: TrainResult, name: str, path: Path) -> Path:
    """Write `image` (N, 1, 28, 28) in [0, 1] -> `logits` (N, 10) already divided by T.

    A model with a "not a digit" detector also answers `digit_logit` (N,), whose sigmoid is
    the calibrated probability of one digit; its threshold is in the metadata.
    """
    model = exported_module(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 1, 28, 28)
    outputs = ["logits", "digit_logit"] if result.detector is not None else ["logits"]
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["image"],
        output_names=outputs,
        dynamic_axes={"image": {0: "N"}, **{name: {0: "N"} for name in outputs}},
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
    if result.detector is not None:
        metadata["digit_threshold"] = result.detector.threshold
        metadata["detector"] = result.detector.metrics
        metadata["output"] = (
            f"{metadata['output']}; digit_logit: float32 (N,), sigmoid: the probability of one"
            " digit (refused under digit_threshold)"
        )
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.doc_string = f"digitrec {name}: handwritten digit classifier"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def exported_module(result: TrainResult) -> torch.nn.Module:
    """What the ONNX file computes: the model, with its detector when it has one."""
    model = result.model.eval()
    if result.detector is None:
        return model
    fit = result.detector
    return Detecting(model, fit.detector, fit.scale, fit.shift).eval()


def parity_gap(result: TrainResult, path: Path, images: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on `images`."""
    batch = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        expected = exported_module(result)(torch.from_numpy(batch))
    expected = expected if isinstance(expected, tuple) else (expected,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"image": batch})
    return max(float(np.abs(e.numpy() - a).max()) for e, a in zip(expected, actual, strict=True))
