"""The "not a digit" detector: the negatives it learns from, its fit, checkpoint, ONNX and use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from digitrec import negatives
from digitrec.checkpoints import load_checkpoint, save_checkpoint
from digitrec.data import Mnist
from digitrec.detection import DetectorConfig, DetectorFit, fit_detector
from digitrec.detector_examples import mnist_form
from digitrec.export import export_onnx, parity_gap
from digitrec.gating import refused_share
from digitrec.inference import Predictor
from digitrec.models import Detecting, DigitDetector, Ensemble, Standardised, build_model
from digitrec.rendering import CANVAS_PX, render
from digitrec.training import RECIPES, TrainResult


def _samples(writers: int, each: int) -> list[dict]:
    """Letter-like samples (a V) of `writers` writers, `each` apiece."""
    return [
        {"writer": f"lab/w{w}", "label": "V", "strokes": [[[0, 0], [500, 1000], [1000 + w, 0]]]}
        for w in range(writers)
        for _ in range(each)
    ]


def test_split_by_writer_keeps_each_writer_on_one_side() -> None:
    samples = _samples(writers=40, each=3)

    learn, measure = negatives.split_by_writer(samples)

    assert len(learn) + len(measure) == len(samples)
    assert not {s["writer"] for s in learn} & {s["writer"] for s in measure}
    assert 0.15 < len(measure) / len(samples) < 0.65  # about 40 %
    assert negatives.split_by_writer(samples) == (learn, measure)  # the same every run
    again, _ = negatives.split_by_writer(samples, salt="other")
    assert again != learn  # another salt, another split


@pytest.mark.parametrize("make", ["scribble", "shape"])
def test_made_up_marks_are_drawn_the_same_for_a_seed(make: str) -> None:
    def canvases(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [render(getattr(negatives, make)(rng), rng) for _ in range(5)]

    first, second, other = canvases(0), canvases(0), canvases(1)

    assert all((a == b).all() for a, b in zip(first, second, strict=True))
    assert any((a != b).any() for a, b in zip(first, other, strict=True))
    assert all(c.shape == (CANVAS_PX, CANVAS_PX, 4) and c[..., 0].max() == 255 for c in first)


def test_a_digit_row_is_wider_than_tall() -> None:
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 6:22] = 1.0
    digit[8:20, 10:18] = 0.0  # a square 0, 20 px tall and 16 px wide

    for seed in range(5):
        row = negatives.digit_row([digit, digit, digit], np.random.default_rng(seed))
        rows, columns = np.flatnonzero(row.max(axis=1) > 0.5), np.flatnonzero(row.max(axis=0) > 0.5)
        assert columns[-1] - columns[0] > 1.5 * (rows[-1] - rows[0])


def test_a_struck_out_digit_has_more_ink_than_the_digit() -> None:
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 12:16] = 1.0

    struck = negatives.crossed_out(digit, np.random.default_rng(0))

    assert struck.shape == (112, 112)
    assert (struck > 0.5).sum() > 1.5 * 16 * (digit > 0.5).sum()


def test_mnist_form_drops_what_the_preprocessing_refuses() -> None:
    rng = np.random.default_rng(0)
    canvases = [negatives.dot_canvas(rng), render(negatives.scribble(rng), rng)]

    images = mnist_form(canvases)

    assert images.shape == (1, 28, 28)


# --- fitting, keeping and exporting a detector -------------------------------------------------


@pytest.fixture(scope="module")
def mnist(mnist_cache: Mnist) -> Mnist:
    return mnist_cache


@pytest.fixture(scope="module")
def fitted(mnist: Mnist, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """An untrained two-member DigitNet with a detector fitted in a dry run."""
    torch.manual_seed(0)
    net = build_model("default", members=2).eval()
    result = TrainResult(
        model=Standardised(net, 1.3),
        config=RECIPES["default"],
        temperature=1.3,
        metrics={"test": {"accuracy": 0.1, "ece": 0.1}, "test_ece_uncalibrated": 0.1},
    )
    result.detector = fit_detector(
        result.model,
        mnist,
        _samples(writers=12, each=5),
        DetectorConfig(dry_run=True),
        cache_dir=tmp_path_factory.mktemp("augmented"),
    )
    return result


def test_a_fitted_detector_has_a_threshold_and_its_measurements(fitted: TrainResult) -> None:
    fit = fitted.detector
    assert 0.0 < fit.threshold < 1.0
    assert fit.scale != 0.0
    refused = fit.metrics["refused"]
    assert {"digits drawing-like", "letters", "digit rows", "scribbles"} <= set(refused)
    # The threshold refuses about the configured share of the drawing-like validation digits.
    assert refused["digits drawing-like"] <= 0.02
    assert 0.0 <= fit.metrics["mnist_test_refused"] <= 1.0


def test_the_detector_leaves_the_classifiers_logits_alone(fitted: TrainResult) -> None:
    images = torch.rand(8, 1, 28, 28)
    fit = fitted.detector
    with torch.no_grad():
        logits, digit = Detecting(fitted.model, fit.detector, fit.scale, fit.shift)(images)
        assert torch.allclose(logits, fitted.model(images), atol=1e-5)
    assert digit.shape == (8,)


def test_a_checkpoint_keeps_the_detector(fitted: TrainResult, tmp_path: Path) -> None:
    save_checkpoint(fitted, tmp_path / "default.pt", data_source="test")

    loaded = load_checkpoint(tmp_path / "default.pt")

    assert loaded.detector is not None
    assert loaded.detector.threshold == fitted.detector.threshold
    assert loaded.detector.config.zero_slashes == (1, -1)
    older = {**fitted.detector.payload(), "config": {"epochs": 12}}  # fitted before slashes
    assert DetectorFit.from_payload(older, 256).config.zero_slashes == (1,)
    maps = torch.rand(4, 256, 7, 7)
    with torch.no_grad():
        assert torch.equal(loaded.detector.detector(maps), fitted.detector.detector(maps))


def test_the_onnx_file_answers_the_digit_logit_and_holds_the_threshold(
    fitted: TrainResult, tmp_path: Path, mnist: Mnist
) -> None:
    path = export_onnx(fitted, "default", tmp_path / "default.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "digit_logit"]
    assert parity_gap(fitted, path, mnist.test_x[:32] / 255) < 1e-4

    predictor = Predictor(path)
    assert predictor.detects
    assert predictor.digit_threshold == pytest.approx(fitted.detector.threshold)
    images = mnist.test_x[:16].astype(np.float32) / 255
    with torch.no_grad():
        fit = fitted.detector
        _, digit = Detecting(fitted.model, fit.detector, fit.scale, fit.shift)(
            torch.from_numpy(images)[:, None]
        )
    expected = torch.sigmoid(digit).numpy()
    for prediction, p in zip(predictor.predict_preprocessed(images), expected, strict=True):
        assert prediction.digit_probability == pytest.approx(float(p), abs=1e-4)
        assert prediction.is_digit == (prediction.digit_probability >= predictor.digit_threshold)


def test_only_digitnets_get_a_detector(mnist: Mnist) -> None:
    lenet = Standardised(build_model("lenet5"))
    with pytest.raises(TypeError, match="DigitNet"):
        fit_detector(lenet, mnist, [], DetectorConfig(dry_run=True))
    assert DigitDetector(256)(torch.rand(2, 256, 7, 7)).shape == (2,)
    assert isinstance(build_model("default", members=2), Ensemble)


def test_the_gates_count_the_same_refusals_in_torch_and_onnx(
    fitted: TrainResult, tmp_path: Path, mnist: Mnist
) -> None:
    images = mnist.test_x[:200].astype(np.float32) / 255
    predictor = Predictor(export_onnx(fitted, "default", tmp_path / "default.onnx"))

    in_torch, in_onnx = refused_share(fitted, images), refused_share(predictor, images)

    assert in_torch is not None and in_torch == pytest.approx(in_onnx, abs=1 / 200)
    fitted_without = TrainResult(fitted.model, fitted.config, 1.3, fitted.metrics)
    assert refused_share(fitted_without, images) is None
