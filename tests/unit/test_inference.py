"""Predictor on an exported tiny model; load_predictor; inference stays free of torch."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from drawing import draw_digit
from PIL import Image

from digitrec.export import export_onnx
from digitrec.inference import (
    Prediction,
    Predictor,
    UnknownModelError,
    available_models,
    load_predictor,
)
from digitrec.models import Standardised, build_model
from digitrec.preprocessing import EmptyDrawingError, to_mnist
from digitrec.training import RECIPES, TrainResult

TEMPERATURE = 1.7


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with an untrained LeNet-5 exported as lenet5.onnx, plus a stray custom model."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    result = TrainResult(
        model=Standardised(build_model("lenet5"), TEMPERATURE),
        config=RECIPES["lenet5"],
        temperature=TEMPERATURE,
        metrics={"test": {"accuracy": 0.5, "ece": 0.1}, "test_ece_uncalibrated": 0.2},
    )
    export_onnx(result, "lenet5", folder / "lenet5.onnx")
    (folder / "zz-custom.onnx").write_bytes((folder / "lenet5.onnx").read_bytes())
    return folder


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor(model_dir / "lenet5.onnx")


SEVEN, ONE, ZERO = draw_digit(7), draw_digit(1), draw_digit(0)


def assert_well_formed(prediction: Prediction, model: str) -> None:
    assert isinstance(prediction.digit, int) and 0 <= prediction.digit <= 9
    assert len(prediction.probabilities) == 10
    assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in prediction.probabilities)
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert prediction.confidence == max(prediction.probabilities)
    assert prediction.probabilities[prediction.digit] == prediction.confidence
    assert prediction.model == model


def test_predictor_predict_returns_a_well_formed_prediction(predictor: Predictor) -> None:
    assert_well_formed(predictor.predict(SEVEN), "lenet5")


def test_predictor_predict_batch_equals_one_by_one(predictor: Predictor) -> None:
    images = [SEVEN, ONE, ZERO]

    batch = predictor.predict_batch(images)

    assert len(batch) == 3
    for image, together in zip(images, batch, strict=True):
        alone = predictor.predict(image)
        assert_well_formed(together, "lenet5")
        assert together.digit == alone.digit
        np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-6)


def test_predictor_predict_batch_of_nothing_is_empty(predictor: Predictor) -> None:
    assert predictor.predict_batch([]) == []


def test_predictor_reads_arrays_pil_images_and_encoded_bytes_alike(predictor: Predictor) -> None:
    buffer = io.BytesIO()
    Image.fromarray(SEVEN).save(buffer, format="PNG")
    forms = [SEVEN, Image.fromarray(SEVEN), buffer.getvalue()]

    answers = [predictor.predict(form).probabilities for form in forms]

    for answer in answers[1:]:
        np.testing.assert_allclose(answer, answers[0], atol=1e-6)


def test_predictor_predict_tensor_gives_the_softmax_of_tempered_logits(
    predictor: Predictor, model_dir: Path
) -> None:
    images = np.stack([to_mnist(SEVEN), to_mnist(ONE)])[:, None]  # (2, 1, 28, 28)

    probs = predictor.predict_tensor(images)

    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # The same numbers from torch, straight from the wrapped network.
    torch.manual_seed(0)
    reference = Standardised(build_model("lenet5"), TEMPERATURE).eval()
    with torch.no_grad():
        expected = torch.softmax(reference(torch.from_numpy(images)), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_predictor_predict_refuses_a_blank_canvas(predictor: Predictor) -> None:
    with pytest.raises(EmptyDrawingError):
        predictor.predict(np.zeros((280, 280), dtype=np.uint8))


def test_predictor_reads_the_model_metadata(predictor: Predictor) -> None:
    assert predictor.name == "lenet5"
    assert predictor.metadata["temperature"] == pytest.approx(TEMPERATURE)
    assert predictor.metadata["recipe"]["model"] == "lenet5"
    assert predictor.metadata["metrics"]["test_accuracy"] == 0.5


def test_load_predictor_builds_each_model_once(model_dir: Path) -> None:
    first = load_predictor("lenet5", model_dir)
    assert first is load_predictor("lenet5", model_dir)
    assert first.name == "lenet5"


def test_load_predictor_refuses_an_unknown_model_and_names_the_known(model_dir: Path) -> None:
    with pytest.raises(UnknownModelError, match="lenet5") as caught:
        load_predictor("resnet", model_dir)
    assert "resnet" in str(caught.value)


def test_available_models_lists_known_names_first(model_dir: Path, tmp_path: Path) -> None:
    assert available_models(model_dir) == ["lenet5", "zz-custom"]
    assert available_models(tmp_path) == []


def test_inference_import_stays_free_of_torch_and_the_web_stack() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        import digitrec.inference
        heavy = ("torch", "fastapi", "streamlit", "sqlalchemy")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
