"""Training on a tiny fake MNIST: dry runs of fit, checkpoints, augmentation."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from digitrec.augmentation import augment
from digitrec.data import VALIDATION_SIZE, Mnist
from digitrec.models import build_model
from digitrec.preprocessing import to_mnist
from digitrec.training import (
    RECIPES,
    Standardised,
    TrainConfig,
    TrainResult,
    fit,
    load_checkpoint,
    predict_logits,
    save_checkpoint,
)


def striped_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n (28, 28) uint8 'digits': a bar whose slant and length follow the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    rows = np.arange(4, 24)
    for i, label in enumerate(labels):
        cols = np.clip(8 + (rows - 4) * label // 9, 0, 27)
        images[i, rows[: 10 + label], cols[: 10 + label]] = 255
        images[i, rows[: 10 + label], np.clip(cols[: 10 + label] + 1, 0, 27)] = 200
    return images, labels


@pytest.fixture(scope="module")
def tiny_mnist() -> Mnist:
    """Enough training digits for the 10k validation split to leave 600 for training."""
    train_x, train_y = striped_digits(VALIDATION_SIZE + 600, seed=0)
    test_x, test_y = striped_digits(100, seed=1)
    return Mnist(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


def dry_recipe(name: str) -> TrainConfig:
    """The named recipe cut down to a few batches and at most one augmented copy."""
    recipe = RECIPES[name]
    return dataclasses.replace(
        recipe, dry_run=True, epochs=1, augment_copies=min(recipe.augment_copies, 1)
    )


@pytest.fixture(scope="module")
def lenet_result(tiny_mnist: Mnist) -> TrainResult:
    return fit(tiny_mnist, dry_recipe("lenet5"), log=lambda _: None)


@pytest.mark.parametrize("name", ["seed-cnn", "lenet5", "default"])
def test_fit_dry_run_trains_calibrates_and_measures(
    tiny_mnist: Mnist, name: str, tmp_path: Path
) -> None:
    config = dry_recipe(name)
    messages: list[str] = []

    result = fit(tiny_mnist, config, cache_dir=tmp_path, log=messages.append)

    assert isinstance(result.model, Standardised)
    assert result.config == config
    # one epoch per member; the default recipe trains two members
    assert [(e["member"], e["epoch"]) for e in result.history] == [
        (m, 1) for m in range(config.members)
    ]
    assert math.isfinite(result.history[0]["loss"])
    assert 0.05 <= result.temperature <= 20 and math.isfinite(result.temperature)
    assert float(result.model.temperature) == pytest.approx(result.temperature)
    assert result.metrics["test"]["n"] == 100
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0
    assert 0.0 <= result.metrics["test_ece_uncalibrated"] <= 1.0
    assert any("temperature" in message for message in messages)


def test_fit_dry_run_moves_the_weights_away_from_their_start(
    tiny_mnist: Mnist, lenet_result: TrainResult
) -> None:
    torch.manual_seed(lenet_result.config.seed)
    start = build_model("lenet5").state_dict()  # what fit starts from, with the same seed
    trained = lenet_result.model.net.state_dict()
    assert start.keys() == trained.keys()
    assert any(not torch.equal(start[key], trained[key]) for key in start)


def test_fit_gives_the_same_model_for_the_same_seed(
    tiny_mnist: Mnist, lenet_result: TrainResult
) -> None:
    again = fit(tiny_mnist, lenet_result.config, log=lambda _: None)
    images = tiny_mnist.test_x[:16] / 255
    np.testing.assert_array_equal(
        predict_logits(again.model, images), predict_logits(lenet_result.model, images)
    )


def test_checkpoint_round_trip_gives_identical_logits(
    tiny_mnist: Mnist, lenet_result: TrainResult, tmp_path: Path
) -> None:
    path = tmp_path / "nested" / "lenet5.pt"
    save_checkpoint(lenet_result, path, data_source="tiny fake MNIST")

    loaded = load_checkpoint(path)

    images = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(
        predict_logits(loaded.model, images), predict_logits(lenet_result.model, images)
    )
    assert loaded.config == lenet_result.config
    assert loaded.temperature == lenet_result.temperature
    assert loaded.metrics == lenet_result.metrics
    assert loaded.history == lenet_result.history
    assert not loaded.model.training


def test_checkpoint_records_how_the_model_was_made(
    lenet_result: TrainResult, tmp_path: Path
) -> None:
    path = tmp_path / "lenet5.pt"
    save_checkpoint(lenet_result, path, data_source="tiny fake MNIST")
    saved = torch.load(path, map_location="cpu", weights_only=False)  # written just above
    assert saved["data"] == "tiny fake MNIST"
    assert saved["config"]["model"] == "lenet5" and saved["config"]["dry_run"] is True
    assert saved["git_revision"] and saved["torch_version"] == torch.__version__


def test_standardised_divides_the_logits_by_its_temperature() -> None:
    torch.manual_seed(0)
    net = build_model("lenet5").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        cold, hot = Standardised(net, 1.0)(x), Standardised(net, 4.0)(x)
    torch.testing.assert_close(hot, cold / 4.0)


def test_augment_returns_varied_mnist_form_copies(tiny_mnist: Mnist) -> None:
    images, labels = tiny_mnist.test_x[:12], tiny_mnist.test_y[:12]

    out = augment(images, labels, np.random.default_rng(0))

    assert out.shape == (12, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    plain = np.stack([to_mnist(image) for image in images])
    changed = np.abs(out - plain).reshape(12, -1).mean(axis=1) > 0.01
    assert changed.mean() >= 0.75  # nearly every digit is varied, not copied
    assert (out.reshape(12, -1).max(axis=1) > 0.5).all()  # and none is erased


def test_augment_depends_only_on_the_generator(tiny_mnist: Mnist) -> None:
    images, labels = tiny_mnist.test_x[:6], tiny_mnist.test_y[:6]
    first = augment(images, labels, np.random.default_rng(7))
    again = augment(images, labels, np.random.default_rng(7))
    other = augment(images, labels, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
