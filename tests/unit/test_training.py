"""Training on a tiny fake MNIST: the loop's parts, dry runs of fit, checkpoints, augmentation."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from digitrec import augmentation, training
from digitrec.augmentation import AugmentConfig, augment, augmented_copies
from digitrec.checkpoints import load_checkpoint, save_checkpoint
from digitrec.data import VALIDATION_SIZE, Mnist
from digitrec.models import Standardised, build_model
from digitrec.preprocessing import to_mnist
from digitrec.training import (
    RECIPES,
    BestEpoch,
    Evaluation,
    TrainConfig,
    TrainResult,
    evaluate,
    fit,
    fit_member,
    make_optimizer,
    make_schedule,
    predict_logits,
    train_epochs,
    train_one_epoch,
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
    return fit(tiny_mnist, dry_recipe("lenet5"))


def as_images(digits: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> float32 in [0, 1], what the model parts take."""
    return digits.astype(np.float32) / 255


def as_batch(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) in [0, 1] and labels as train_one_epoch takes them: (N, 1, 28, 28)."""
    return torch.from_numpy(images)[:, None], torch.from_numpy(labels.astype(np.int64))


def fixed_epochs(images: np.ndarray, labels: np.ndarray) -> training.EpochData:
    """The same images (N, 28, 28) in [0, 1] and labels every epoch."""
    batch = as_batch(images, labels)
    return lambda epoch: batch


# --- the parts of the loop ---------------------------------------------------------------------


def test_train_one_epoch_and_evaluate_show_the_loss_going_down(tiny_mnist: Mnist) -> None:
    torch.manual_seed(0)
    train_x, train_y = tiny_mnist.split("train")
    x, y = as_batch(as_images(train_x), train_y)
    val_x, val_y = as_images(tiny_mnist.test_x), tiny_mnist.test_y  # never trained on
    model = Standardised(build_model("lenet5"))
    config = TrainConfig(model="lenet5", batch_size=32)
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(0)
    before = evaluate(model, val_x, val_y)

    losses = [train_one_epoch(model, x, y, optimizer, config, generator) for _ in range(4)]

    after = evaluate(model, val_x, val_y)
    assert losses[-1] < 0.5 * losses[0]
    assert after.loss < 0.5 * before.loss
    assert after.accuracy > before.accuracy + 0.3


def test_evaluate_gives_the_cross_entropy_and_the_accuracy() -> None:
    torch.manual_seed(0)
    model = Standardised(build_model("lenet5"))
    images = np.random.default_rng(0).random((20, 28, 28), dtype=np.float32)
    logits = torch.from_numpy(predict_logits(model, images))
    labels = logits.argmax(1).numpy()
    labels[:5] = (labels[:5] + 1) % 10  # 5 of the 20 wrong

    scores = evaluate(model, images, labels)

    reference = F.cross_entropy(logits, torch.from_numpy(labels).long()).item()
    assert scores.loss == pytest.approx(reference) and scores.accuracy == 0.75


def test_make_optimizer_decays_weights_but_not_biases_or_norms() -> None:
    model = Standardised(build_model("default"))  # convolutions, batch norms, a linear layer
    config = dataclasses.replace(RECIPES["default"], weight_decay=0.1)

    optimizer = make_optimizer(model, config)

    groups = {g["weight_decay"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    norms = {
        id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()
    }
    biases = {id(p) for name, p in model.named_parameters() if name.endswith(".bias")}
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    assert norms and biases and kernels
    assert groups == {0.1: kernels, 0.0: norms | biases}


def test_make_schedule_peaks_at_the_learning_rate_or_keeps_it_constant() -> None:
    model = Standardised(build_model("lenet5"))
    config = TrainConfig(model="lenet5", lr=0.01, one_cycle=True)
    optimizer = make_optimizer(model, config)
    schedule = make_schedule(optimizer, config, steps=20)
    assert schedule is not None
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert max(rates) == pytest.approx(0.01)
    assert rates[0] < 0.01 / 10 and rates[-1] < 0.01 / 10

    constant = dataclasses.replace(config, one_cycle=False)
    assert make_schedule(make_optimizer(model, constant), constant, steps=20) is None


def test_best_epoch_restores_the_weights_of_the_lowest_loss() -> None:
    model, best = nn.Linear(2, 1), BestEpoch()
    snapshots = []
    for epoch, loss in enumerate([0.5, 0.2, float("nan"), 0.2, 0.9], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        snapshots.append(model.weight.clone())
        best.update(model, epoch, loss)

    best.restore(model)

    assert (best.epoch, best.loss) == (2, 0.2)  # a tie keeps the earlier epoch; NaN never wins
    assert torch.equal(model.weight, snapshots[1])


def test_train_epochs_keeps_the_epoch_with_the_lowest_validation_loss(
    tiny_mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripted validation losses make epoch 2 of 3 the best; its weights must come back."""
    scripted = iter([0.3, 0.1, 0.2])
    weights: list[dict[str, torch.Tensor]] = []

    def scripted_evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> Evaluation:
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return Evaluation(loss=next(scripted), accuracy=0.5)

    monkeypatch.setattr(training, "evaluate", scripted_evaluate)
    torch.manual_seed(0)
    model = Standardised(build_model("default"))  # batch-norm statistics must come back too
    config = TrainConfig(model="default", epochs=3, batch_size=32, dry_run=True)
    x, y = as_images(tiny_mnist.train_x[:200]), tiny_mnist.train_y[:200]

    history = train_epochs(model, make_optimizer(model, config), fixed_epochs(x, y), (x, y), config)

    assert [row["val_loss"] for row in history] == [0.3, 0.1, 0.2]
    state = model.state_dict()
    assert all(torch.equal(state[k], weights[1][k]) for k in state)
    assert any(not torch.equal(state[k], weights[2][k]) for k in state)


def test_fit_member_returns_the_network_of_its_best_recorded_epoch(tiny_mnist: Mnist) -> None:
    config = dataclasses.replace(dry_recipe("lenet5"), epochs=3)

    net, history = fit_member(tiny_mnist, config)

    val_x, val_y = tiny_mnist.split("val")
    scores = evaluate(Standardised(net), as_images(val_x[:256]), val_y[:256])
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert scores.loss == pytest.approx(min(row["val_loss"] for row in history), rel=1e-6)


# --- fit and checkpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_fit_dry_run_trains_calibrates_and_measures(
    tiny_mnist: Mnist, name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = dry_recipe(name)

    with caplog.at_level(logging.INFO, logger="digitrec"):
        result = fit(tiny_mnist, config, cache_dir=tmp_path)

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
    assert "epoch 1: loss" in caplog.text and "temperature" in caplog.text


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
    again = fit(tiny_mnist, lenet_result.config)
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


# --- augmentation ------------------------------------------------------------------------------


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


def _ring_zeros(count: int) -> np.ndarray:
    """`count` copies of a plain ring, a zero in MNIST's 28x28 form."""
    rows, cols = np.mgrid[:28, :28]
    radius = np.hypot((rows - 14) / 9, (cols - 14) / 6)
    ring = ((radius > 0.75) & (radius < 1.0)).astype(np.uint8) * 255
    return np.repeat(ring[None], count, axis=0)


STILL = AugmentConfig(rotation_deg=0, shear=0, log_aspect=0, elastic=0, pen_steps=(0,), style_p=1)


@pytest.mark.parametrize(("slashes", "rising"), [((1,), True), ((-1,), False)])
def test_a_zeros_slash_rises_or_falls_as_configured(slashes: tuple[int, ...], rising: bool) -> None:
    config = dataclasses.replace(STILL, zero_slashes=slashes)

    copies = augment(_ring_zeros(4), np.zeros(4, int), np.random.default_rng(0), config)

    # A slash past the ring inks the top corner it starts from: the right one when it rises.
    top_left, top_right = copies[:, :7, :10].sum(), copies[:, :7, 18:].sum()
    assert (top_right > 2 * top_left) if rising else (top_left > 2 * top_right)


def test_zeros_are_slashed_both_ways_when_both_are_configured(tmp_path: Path) -> None:
    config = dataclasses.replace(STILL, zero_slashes=(1, -1))

    copies = augment(_ring_zeros(40), np.zeros(40, int), np.random.default_rng(0), config)

    left, right = copies[:, :7, :10].sum(axis=(1, 2)), copies[:, :7, 18:].sum(axis=(1, 2))
    assert (left > 2 * right).sum() >= 5 and (right > 2 * left).sum() >= 5
    # Another config, another cache file; the default config keeps its own.
    images, labels = _ring_zeros(6), np.zeros(6, int)
    augmented_copies(images, labels, 1, seed=1, cache_dir=tmp_path, config=config)
    augmented_copies(images, labels, 1, seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("augmented-*.npy"))) == 2


def refuse_process_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no process pool expected")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)


def test_augmented_copies_of_one_chunk_start_no_process_pool(
    tiny_mnist: Mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_process_pools(monkeypatch)
    images, labels = tiny_mnist.test_x[:40], tiny_mnist.test_y[:40]

    (copy,) = augmented_copies(images, labels, 1, seed=3, cache_dir=tmp_path)

    reference = augment(images, labels, np.random.default_rng(3 * 100_003))  # chunk 0's seed
    np.testing.assert_array_equal(copy, reference)
    (cached,) = tmp_path.glob("augmented-*-0.npy")
    np.testing.assert_array_equal(np.load(cached), copy)


def test_augmented_copies_come_back_from_the_cache(tiny_mnist: Mnist, tmp_path: Path) -> None:
    images, labels = tiny_mnist.test_x[:20], tiny_mnist.test_y[:20]
    first = augmented_copies(images, labels, 2, seed=1, cache_dir=tmp_path)
    for path in tmp_path.glob("augmented-*.npy"):
        np.save(path, np.zeros((20, 28, 28), dtype=np.float32))  # proof that it is read back

    again = augmented_copies(images, labels, 2, seed=1, cache_dir=tmp_path)

    assert len(first) == len(again) == 2 and not np.array_equal(first[0], first[1])
    assert all(not copy.any() for copy in again)


def test_augmented_copies_are_the_same_in_chunks_whatever_runs_them(
    tiny_mnist: Mnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks keep their own seeds: inline, or after a pool fails to start, the same digits."""
    monkeypatch.setattr(augmentation, "CHUNK_DIGITS", 10)
    images, labels = tiny_mnist.test_x[:25], tiny_mnist.test_y[:25]
    seeds = [5 * 100_003 + 1_009 + i for i in (0, 10, 20)]  # seed 5, copy 1, chunk starts
    reference = np.concatenate(
        [
            augment(images[i : i + 10], labels[i : i + 10], np.random.default_rng(s))
            for i, s in zip((0, 10, 20), seeds, strict=True)
        ]
    )
    inline = augmented_copies(images, labels, 2, seed=5, cache_dir=None, workers=1)[1]

    class BrokenPool:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise BrokenProcessPool("as when __main__ cannot be re-imported")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", BrokenPool)
    after_failure = augmented_copies(images, labels, 2, seed=5, cache_dir=None)[1]

    np.testing.assert_array_equal(inline, reference)
    np.testing.assert_array_equal(after_failure, reference)
