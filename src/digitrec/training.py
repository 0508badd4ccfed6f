"""Train a model on MNIST on the CPU: TrainConfig, train_one_epoch, evaluate, fit.

The parts compose into other loops too. Fine-tuning a trained model on new digits is
`make_optimizer`, `make_schedule`, then `train_one_epoch` and `evaluate` once per epoch (or
`train_epochs`, which also keeps the best epoch's weights).
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR
from tqdm import tqdm

from digitrec.augmentation import augmented_copies, preprocess_all
from digitrec.calibration import expected_calibration_error, fit_temperature, softmax
from digitrec.data import Mnist
from digitrec.evaluation import classification_metrics
from digitrec.models import Ensemble, Standardised, build_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved in the checkpoint and the ONNX metadata."""

    model: str = "default"
    epochs: int = 10  # the seed's recipe
    batch_size: int = 64
    lr: float = 1e-3  # Adam, the seed's recipe
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    one_cycle: bool = False  # one-cycle schedule peaking at lr (else constant lr)
    augment_copies: int = 0  # drawing-like copies of the training set, one per epoch in turn
    seed: int = 0
    # Networks trained with seeds seed, seed + 1, ...; their logits are averaged.
    members: int = 1
    threads: int = 2
    dry_run: bool = False  # a few batches per epoch: checks the pipeline, not the model
    dry_run_batches: int = 3


# The recipes behind the shipped models; CLI flags override single values.
RECIPES: dict[str, TrainConfig] = {
    "seed-cnn": TrainConfig(model="seed-cnn"),
    "lenet5": TrainConfig(model="lenet5"),
    # Drawing-like augmentation needs more steps; one-cycle and mild smoothing keep a small
    # batch-norm net from memorising, and temper its confidence on strange inputs.
    "default": TrainConfig(
        model="default",
        epochs=16,
        batch_size=128,
        lr=3e-3,
        weight_decay=5e-4,
        label_smoothing=0.05,
        one_cycle=True,
        augment_copies=4,
        # Two runs average out each other's idiosyncratic mistakes: on the validation split
        # the pair beats either run alone, for 0.2 ms more per prediction.
        members=2,
    ),
    # The other families, with the default's data and augmentation (cards in models/).
    "vit": TrainConfig(
        model="vit",
        # Four blocks, not six: a training step costs 0.87 ms a digit against 1.22 ms, which
        # leaves room for 24 epochs in the hour on two cores; batches of 256 use the cores
        # better than 128 (1.22 against 1.43 ms a digit for six blocks).
        epochs=24,
        batch_size=256,
        lr=2e-3,
        weight_decay=0.05,  # transformers want more decay than CNNs
        label_smoothing=0.05,
        one_cycle=True,
        augment_copies=4,
    ),
    "capsnet": TrainConfig(
        model="capsnet",
        epochs=22,  # about 2.2 minutes each on two quiet cores: the hour the issue allows
        batch_size=128,
        lr=2e-3,
        weight_decay=5e-4,
        label_smoothing=0.05,
        one_cycle=True,
        augment_copies=4,
    ),
}


@dataclass
class TrainResult:
    """A trained network and how it came to be."""

    model: Standardised
    config: TrainConfig
    temperature: float
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    git_revision: str = "unknown"  # of the code when training started
    # Its "not a digit" detector (`digitrec.detection.DetectorFit`), once one is fitted.
    detector: Any = None


class Evaluation(NamedTuple):
    """How a model does on labelled digits."""

    loss: float  # mean cross-entropy, without label smoothing
    accuracy: float  # fraction in [0, 1]


# Epoch number (from 0) -> the images (N, 1, 28, 28) float32 and labels (N,) int64 to train on.
EpochData = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW at `config.lr`, decaying weight matrices and kernels but not biases or norms."""
    # As nanoGPT's configure_optimizers: decay keeps the weights that mix features small;
    # biases and batch-norm scales (ndim < 2) only shift and scale, and pulling them to zero
    # hurts. With weight_decay 0 this is plain Adam, the seed's optimiser.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def make_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int
) -> LRScheduler | None:
    """One-cycle over `steps` optimiser steps peaking at `config.lr`; None keeps lr constant."""
    if not config.one_cycle:
        return None
    return OneCycleLR(optimizer, config.lr, total_steps=steps)


def steps_per_epoch(examples: int, config: TrainConfig) -> int:
    """Optimiser steps in an epoch of `examples` digits (a few in a dry run)."""
    steps = -(-examples // config.batch_size)
    return min(steps, config.dry_run_batches) if config.dry_run else steps


def train_one_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    generator: torch.Generator,
    scheduler: LRScheduler | None = None,
    desc: str = "",
) -> float:
    """One pass over x (N, 1, 28, 28) and y (N,) in shuffled batches; the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    batches = list(order.split(config.batch_size))
    if config.dry_run:
        batches = batches[: config.dry_run_batches]
    total = 0.0
    # disable=None: a progress bar on a terminal, nothing in logs and pipes.
    for idx in tqdm(batches, desc=desc, leave=False, disable=None):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=config.label_smoothing)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(idx)
    return total / max(1, sum(len(b) for b in batches))


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits (N, 10) for images (N, 28, 28) float in [0, 1]."""
    model.eval()
    x = torch.from_numpy(np.asarray(images, dtype=np.float32))[:, None]
    return torch.cat([model(part) for part in x.split(batch_size)]).numpy()


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Loss and accuracy on images (N, 28, 28) float in [0, 1] with labels (N,)."""
    logits = torch.from_numpy(predict_logits(model, images))
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    loss = F.cross_entropy(logits, target).item()
    accuracy = (logits.argmax(1) == target).double().mean().item()
    return Evaluation(loss=loss, accuracy=accuracy)


class BestEpoch:
    """A copy of the weights of the epoch with the lowest validation loss so far."""

    # By loss, not accuracy: near 99.5 % neighbouring epochs differ by a handful of the 10k
    # validation digits and often tie, while the loss still tells them apart.

    def __init__(self) -> None:
        self.epoch = 0  # 0: none recorded yet
        self.loss = math.inf
        self._state: dict[str, torch.Tensor] = {}

    def update(self, model: nn.Module, epoch: int, loss: float) -> None:
        """Remember the weights if `loss` beats the best so far (a NaN never does)."""
        if loss < self.loss:  # strict: on a tie the earlier epoch stays
            self.epoch, self.loss = epoch, loss
            self._state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module) -> None:
        """Put the remembered weights (and batch-norm statistics) back into `model`."""
        if self._state:
            model.load_state_dict(self._state)


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch_data: EpochData,
    val: tuple[np.ndarray, np.ndarray],
    config: TrainConfig,
    scheduler: LRScheduler | None = None,
) -> list[dict[str, float]]:
    """Train `config.epochs` epochs, evaluating on `val` after each; leaves the best epoch."""
    generator = torch.Generator().manual_seed(config.seed)  # the batch order
    best, history = BestEpoch(), []
    for epoch in range(1, config.epochs + 1):
        x, y = epoch_data(epoch - 1)
        start = time.perf_counter()
        desc = f"epoch {epoch}/{config.epochs}"
        loss = train_one_epoch(model, x, y, optimizer, config, generator, scheduler, desc)
        scores = evaluate(model, *val)
        row = {
            "epoch": epoch,
            "loss": loss,
            "val_loss": scores.loss,
            "val_accuracy": scores.accuracy,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        logger.info(
            "epoch %(epoch)d: loss %(loss).4f; validation loss %(val_loss).4f, "
            "accuracy %(val_accuracy).4f; %(seconds).0f s",
            row,
        )
        best.update(model, epoch, scores.loss)
    best.restore(model)
    if best.epoch not in (0, config.epochs):
        logger.info("kept epoch %d, the lowest validation loss (%.4f)", best.epoch, best.loss)
    return history


def fit(mnist: Mnist, config: TrainConfig, cache_dir: Path | None = None) -> TrainResult:
    """Train (each member in turn), calibrate on the validation split, measure on test."""
    revision = git_revision()
    torch.set_num_threads(config.threads)
    nets, history = [], []
    for member in range(config.members):
        if config.members > 1:
            logger.info("member %d of %d", member + 1, config.members)
        member_config = replace(config, seed=config.seed + member)
        net, member_history = fit_member(mnist, member_config, cache_dir)
        nets.append(net)
        history += [{"member": member, **row} for row in member_history]
    model = Standardised(Ensemble(nets) if len(nets) > 1 else nets[0])
    val_x, val_y = mnist.split("val")
    test_x, test_y = mnist.split("test")
    if config.dry_run:
        val_x, val_y, test_x, test_y = val_x[:256], val_y[:256], test_x[:256], test_y[:256]
    temperature, metrics = calibrate(model, val_x, val_y, test_x, test_y, config, cache_dir)
    model.temperature.fill_(temperature)
    logger.info(
        "temperature %.3f; test accuracy %.2f %%", temperature, 100 * metrics["test"]["accuracy"]
    )
    return TrainResult(
        model=model,
        config=config,
        temperature=temperature,
        metrics=metrics,
        history=history,
        git_revision=revision,
    )


def fit_member(
    mnist: Mnist, config: TrainConfig, cache_dir: Path | None = None
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train one network with `config.seed`: the bare network at its best epoch, its history."""
    torch.manual_seed(config.seed)  # the initial weights and dropout
    train_x, train_y = mnist.split("train")
    val_x, val_y = mnist.split("val")
    if config.dry_run:
        train_x, train_y = train_x[:512], train_y[:512]
        val_x, val_y = val_x[:256], val_y[:256]
    sets = training_sets(train_x, train_y, config, cache_dir)
    labels = torch.from_numpy(train_y.astype(np.int64))
    model = Standardised(build_model(config.model))
    optimizer = make_optimizer(model, config)
    per_epoch = len(train_x) * (2 if config.augment_copies else 1)  # see epoch_data
    steps = config.epochs * steps_per_epoch(per_epoch, config)
    history = train_epochs(
        model,
        optimizer,
        lambda epoch: epoch_data(sets, labels, epoch, config),
        (val_x.astype(np.float32) / 255, val_y),
        config,
        make_schedule(optimizer, config, steps),
    )
    return model.net, history


def training_sets(
    train_x: np.ndarray, train_y: np.ndarray, config: TrainConfig, cache_dir: Path | None
) -> list[np.ndarray]:
    """Plain digits in [0, 1]; with augmentation, then preprocessed, then drawing-like copies."""
    sets = [train_x.astype(np.float32) / 255]
    if config.augment_copies:
        logger.info("preparing drawing-like copies of the training set")
        sets.append(preprocess_all(train_x))
        sets += augmented_copies(train_x, train_y, config.augment_copies, config.seed, cache_dir)
    return sets


def epoch_data(
    sets: list[np.ndarray], y: torch.Tensor, epoch: int, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain MNIST; with augmentation, half plain-or-preprocessed and half a drawing-like copy."""
    if not config.augment_copies:
        return torch.from_numpy(sets[0])[:, None], y
    rng = np.random.default_rng(config.seed + epoch)
    plain = np.where(rng.random(len(y))[:, None, None] < 0.5, sets[0], sets[1])
    varied = sets[2 + epoch % config.augment_copies]
    x = np.concatenate([plain, varied])[:, None]
    return torch.from_numpy(x), torch.cat([y, y])


def calibrate(
    model: Standardised,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    config: TrainConfig,
    cache_dir: Path | None,
) -> tuple[float, dict[str, Any]]:
    """Fit the temperature on the validation split as the app sees it, then measure on test.

    Drawings reach the model through `to_mnist`, often in styles MNIST lacks; so the
    temperature is fitted on the validation digits as they are, preprocessed, and (for models
    trained with augmentation) drawing-like copies of them: never on the test split.
    """
    model.temperature.fill_(1.0)
    parts_x = [val_x.astype(np.float32) / 255, preprocess_all(val_x)]
    if config.augment_copies:
        parts_x += augmented_copies(val_x, val_y, 1, config.seed + 1, cache_dir)
    val_logits = predict_logits(model, np.concatenate(parts_x))
    val_labels = np.tile(val_y, len(parts_x)).astype(np.int64)
    temperature = fit_temperature(val_logits, val_labels)
    test_logits = predict_logits(model, test_x.astype(np.float32) / 255)
    test_y64 = test_y.astype(np.int64)
    metrics = {
        "test": classification_metrics(softmax(test_logits, temperature), test_y64),
        "test_ece_uncalibrated": expected_calibration_error(softmax(test_logits), test_y64),
        "test_preprocessed": classification_metrics(
            softmax(predict_logits(model, preprocess_all(test_x)), temperature), test_y64
        ),
        "validation_accuracy": float((val_logits.argmax(1) == val_labels).mean()),
    }
    return temperature, metrics


def git_revision() -> str:
    """The source revision a model was trained from ('unknown' outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
