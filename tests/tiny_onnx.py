"""A tiny ONNX model with the shipped models' interface, for tests that need one fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_onnx(path: Path, seed: int = 0) -> Path:
    """An ONNX model with the shipped models' interface: image (N,1,28,28) -> logits (N,10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 0.05, size=(784, 10)).astype(np.float32)
    bias = rng.normal(0.0, 0.05, size=(10,)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),  # (N, 784)
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"]),  # (N, 10)
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
