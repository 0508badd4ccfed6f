"""Train a model on MNIST on the CPU: TrainConfig, train_one_epoch, evaluate, fit."""

from __future__ import annotations

import hashlib
import multiprocessing
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from digitrec import augmentation, preprocessing
from digitrec.augmentation import augment
from digitrec.calibration import expected_calibration_error, fit_temperature, softmax
from digitrec.data import Mnist
from digitrec.evaluation import classification_metrics
from digitrec.models import Ensemble, build_model
from digitrec.preprocessing import to_mnist

# Pixels are standardised inside the network (and the ONNX graph) with MNIST's statistics.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


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


class Standardised(nn.Module):
    """Wraps a network so it takes [0, 1] pixels and divides its logits by a temperature."""

    temperature: torch.Tensor

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (N, 1, 28, 28) in [0, 1], white on black -> logits (N, 10) / T
        return self.net((image - MNIST_MEAN) / MNIST_STD) / self.temperature


def preprocess_all(images: np.ndarray) -> np.ndarray:
    """MNIST digits through the same `to_mnist` as drawings: (N, 28, 28) uint8 -> float32."""
    return np.stack([to_mnist(img) for img in images]).astype(np.float32)


def _augment_chunk(args: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    images, labels, seed = args
    return augment(images, labels, np.random.default_rng(seed))


def augmented_copies(
    images: np.ndarray,
    labels: np.ndarray,
    copies: int,
    seed: int,
    cache_dir: Path | None,
    workers: int = 2,
) -> list[np.ndarray]:
    """`copies` drawing-like versions of the set, made in parallel and cached on disk."""
    # The key covers the data, the seed and the code that makes the copies.
    code = b"".join(Path(m.__file__ or "").read_bytes() for m in (augmentation, preprocessing))
    key = hashlib.sha256(
        images.tobytes()[:1_000_000] + code + f"{len(images)}-{seed}".encode()
    ).hexdigest()[:12]
    out = []
    for c in range(copies):
        path = cache_dir / f"augmented-{key}-{c}.npy" if cache_dir else None
        if path is not None and path.is_file():
            out.append(np.load(path))
            continue
        chunks = [
            (images[i : i + 2000], labels[i : i + 2000], seed * 100_003 + c * 1_009 + i)
            for i in range(0, len(images), 2000)
        ]
        # spawn, not fork: a forked child inherits torch's OpenMP pool and can hang in it.
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            copy = np.concatenate(list(pool.map(_augment_chunk, chunks)))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, copy)
        out.append(copy)
    return out


def train_one_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    config: TrainConfig,
    generator: torch.Generator,
    scheduler: Any = None,
    progress: str = "",
) -> float:
    """One pass over (x, y) in shuffled batches; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    batches = list(order.split(config.batch_size))
    if config.dry_run:
        batches = batches[: config.dry_run_batches]
    total = 0.0
    for idx in tqdm(batches, desc=progress, leave=False, disable=not progress):
        optimiser.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=config.label_smoothing)
        loss.backward()
        optimiser.step()
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


def fit(
    mnist: Mnist,
    config: TrainConfig,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (each member in turn), calibrate on the validation split, measure on test."""
    revision = git_revision()
    torch.set_num_threads(config.threads)
    nets, history = [], []
    for member in range(config.members):
        if config.members > 1:
            log(f"member {member + 1} of {config.members}")
        net, member_history = _fit_member(
            mnist, replace(config, seed=config.seed + member), member, cache_dir, log
        )
        nets.append(net)
        history += member_history
    model = Standardised(Ensemble(nets) if len(nets) > 1 else nets[0])
    val_x, val_y = mnist.split("val")
    test_x, test_y = mnist.split("test")
    if config.dry_run:
        val_x, val_y, test_x, test_y = val_x[:256], val_y[:256], test_x[:256], test_y[:256]
    temperature, metrics = calibrate(model, val_x, val_y, test_x, test_y, config, cache_dir)
    model.temperature.fill_(temperature)
    log(f"temperature {temperature:.3f}; test accuracy {metrics['test']['accuracy']:.4%}")
    return TrainResult(
        model=model,
        config=config,
        temperature=temperature,
        metrics=metrics,
        history=history,
        git_revision=revision,
    )


def _fit_member(
    mnist: Mnist,
    config: TrainConfig,
    member: int,
    cache_dir: Path | None,
    log: Callable[[str], None],
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train one network with `config.seed`; returns it and its per-epoch history."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    train_x, train_y = mnist.split("train")
    val_x, val_y = mnist.split("val")
    if config.dry_run:
        train_x, train_y = train_x[:512], train_y[:512]
        val_x, val_y = val_x[:256], val_y[:256]
    sets = [train_x.astype(np.float32) / 255]
    if config.augment_copies:
        log("preparing drawing-like copies of the training set")
        sets.append(preprocess_all(train_x))
        sets += augmented_copies(train_x, train_y, config.augment_copies, config.seed, cache_dir)
    model = Standardised(build_model(config.model))
    optimiser = (
        torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if config.weight_decay
        else torch.optim.Adam(model.parameters(), lr=config.lr)
    )
    per_epoch = _epoch_size(len(train_x), config)
    steps = -(-per_epoch // config.batch_size)
    if config.dry_run:
        steps = min(steps, config.dry_run_batches)
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.epochs * steps)
        if config.one_cycle
        else None
    )
    y = torch.from_numpy(train_y.astype(np.int64))
    history = []
    for epoch in range(config.epochs):
        x_epoch, y_epoch = _epoch_data(sets, y, epoch, config)
        start = time.perf_counter()
        loss = train_one_epoch(
            model,
            x_epoch,
            y_epoch,
            optimiser,
            config,
            generator,
            scheduler,
            progress=f"epoch {epoch + 1}/{config.epochs}",
        )
        val_acc = float(
            (predict_logits(model, val_x.astype(np.float32) / 255).argmax(1) == val_y).mean()
        )
        history.append(
            {
                "member": member,
                "epoch": epoch + 1,
                "loss": loss,
                "val_accuracy": val_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        log(
            f"epoch {epoch + 1}: loss {loss:.4f}, validation accuracy {val_acc:.4%}, "
            f"{history[-1]['seconds']:.0f} s"
        )
    return model.net, history


def _epoch_size(n: int, config: TrainConfig) -> int:
    return 2 * n if config.augment_copies else n


def _epoch_data(
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


def save_checkpoint(result: TrainResult, path: Path, data_source: str) -> None:
    """Write the weights with the config, data, metrics and git revision that made them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": result.model.net.state_dict(),
            "temperature": result.temperature,
            "config": asdict(result.config),
            "metrics": result.metrics,
            "history": result.history,
            "data": data_source,
            "git_revision": result.git_revision,
            "torch_version": str(torch.__version__),
        },
        path,
    )


def load_checkpoint(path: Path) -> TrainResult:
    """A trained network back from a checkpoint written by `save_checkpoint`."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = replace(TrainConfig(), **saved["config"])
    net = build_model(config.model, config.members)
    net.load_state_dict(saved["state_dict"])
    model = Standardised(net, saved["temperature"])
    model.eval()
    return TrainResult(
        model=model,
        config=config,
        temperature=saved["temperature"],
        metrics=saved["metrics"],
        history=saved.get("history", []),
        git_revision=saved.get("git_revision", "unknown"),
    )
