"""ONNX export: the graph's interface, its metadata, parity with torch, temperature inside."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from digitrec import __version__
from digitrec.export import export_onnx, parity_gap
from digitrec.models import ARCHITECTURES, Standardised, build_model
from digitrec.training import RECIPES, TrainResult

PARITY_TOLERANCE = 1e-4


def untrained_result(name: str, temperature: float = 1.5, seed: int = 0) -> TrainResult:
    """A freshly initialised network dressed as a training result."""
    torch.manual_seed(seed)
    net = build_model(name).eval()
    return TrainResult(
        model=Standardised(net, temperature),
        config=RECIPES[name],
        temperature=temperature,
        metrics={
            "test": {"accuracy": 0.1234, "ece": 0.0456},
            "test_ece_uncalibrated": 0.0789,
        },
    )


def onnx_logits(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"image": images})
    return logits


def torch_logits(result: TrainResult, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return result.model.eval()(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    result = untrained_result("lenet5")
    path = export_onnx(result, "lenet5", tmp_path_factory.mktemp("onnx") / "sub" / "lenet5.onnx")
    return result, path


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_export_onnx_matches_torch_on_any_batch_size(name: str, tmp_path: Path) -> None:
    result = untrained_result(name)
    path = export_onnx(result, name, tmp_path / f"{name}.onnx")
    rng = np.random.default_rng(0)

    for batch in (1, 7, 64):
        images = rng.random((batch, 1, 28, 28), dtype=np.float32)
        expected = torch_logits(result, images)
        actual = onnx_logits(path, images)
        assert actual.shape == (batch, 10)
        np.testing.assert_allclose(actual, expected, atol=PARITY_TOLERANCE, rtol=0)


def test_parity_gap_measures_the_largest_logit_difference(
    exported: tuple[TrainResult, Path],
) -> None:
    result, path = exported
    images = np.random.default_rng(1).random((7, 28, 28), dtype=np.float32)
    assert parity_gap(result, path, images) < PARITY_TOLERANCE

    drifted = untrained_result("lenet5", seed=99)  # different weights: a large gap
    assert parity_gap(drifted, path, images) > 1e-3


def test_export_onnx_names_its_input_image_and_its_output_logits(
    exported: tuple[TrainResult, Path],
) -> None:
    graph = onnx.load(str(exported[1])).graph

    def interface(value: onnx.ValueInfoProto) -> tuple[str, int, list[str | int]]:
        tensor = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        return value.name, tensor.elem_type, dims

    assert [interface(v) for v in graph.input] == [
        ("image", onnx.TensorProto.FLOAT, ["N", 1, 28, 28])
    ]
    assert [interface(v) for v in graph.output] == [("logits", onnx.TensorProto.FLOAT, ["N", 10])]


def test_export_onnx_records_how_the_model_was_made(exported: tuple[TrainResult, Path]) -> None:
    result, path = exported
    proto = onnx.load(str(path))
    metadata = {entry.key: entry.value for entry in proto.metadata_props}

    assert metadata["name"] == "lenet5"
    assert metadata["version"] == __version__
    assert json.loads(metadata["temperature"]) == pytest.approx(1.5)
    assert json.loads(metadata["recipe"]) == asdict(result.config)
    assert json.loads(metadata["metrics"]) == {
        "test_accuracy": 0.1234,
        "test_ece": 0.0456,
        "test_ece_uncalibrated": 0.0789,
    }
    onnx.checker.check_model(proto)


def test_export_onnx_divides_the_logits_by_the_temperature(tmp_path: Path) -> None:
    warm = export_onnx(untrained_result("seed-cnn", 1.0), "seed-cnn", tmp_path / "t1.onnx")
    hot = export_onnx(untrained_result("seed-cnn", 2.0), "seed-cnn", tmp_path / "t2.onnx")
    images = np.random.default_rng(2).random((5, 1, 28, 28), dtype=np.float32)

    np.testing.assert_allclose(
        onnx_logits(hot, images), onnx_logits(warm, images) / 2, atol=1e-5, rtol=1e-5
    )


def test_export_onnx_standardises_pixels_inside_the_graph(
    exported: tuple[TrainResult, Path],
) -> None:
    result, path = exported
    images = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():  # the bare network wants standardised pixels and no temperature
        bare = result.model.net(torch.from_numpy((images - 0.1307) / 0.3081)).numpy() / 1.5
    np.testing.assert_allclose(onnx_logits(path, images), bare, atol=PARITY_TOLERANCE, rtol=0)
