"""Teach a trained DigitNet ensemble to say "not a digit": fit its detector on frozen features.

The classifier is left as it is (its digits and confidences do not move); a small detector
(`models.DigitDetector`) learns from the classifier's last feature maps to tell one digit from
what is not one, on the digits and not-digits `detector_examples` gathers. The held-back
not-digits and the validation digits calibrate the detector's probability on an even mix; the
refusal threshold is then set so that at most a small share of the *validation* digits is
refused in each of their forms, never on MNIST test or a pen-drawn set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from digitrec.calibration import sigmoid
from digitrec.data import Mnist
from digitrec.detector_examples import Examples, gather_examples
from digitrec.models import (
    MNIST_MEAN,
    MNIST_STD,
    DigitDetector,
    Standardised,
    digitnet_members,
    feature_maps,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """How much of each kind to learn from, and how to fit the detector."""

    digits: int = 50_000  # MNIST training digits, each as it is, preprocessed and varied
    varied_copies: int = 2  # drawing-like copies of each (drawings are what it must keep)
    # Slashed zeros in those copies: rising ("/", 1) and falling ("\", -1). The classifier
    # learnt rising ones only, and reads falling ones right; the detector must keep both.
    zero_slashes: tuple[int, ...] = (1, -1)
    letter_renders: int = 4  # each learning letter drawn this many times (other pens, slants)
    rows: int = 12_000  # two or three digits on one line
    scribbles: int = 8_000
    shapes: int = 6_000
    crossed_out: int = 6_000
    held_back: float = 0.2  # of the not-digits (letters: of their writers), for calibration
    epochs: int = 12
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    # Of the validation digits, in each of their forms (as they are, preprocessed, drawing-like),
    # at most this share is refused: the threshold is the lowest of the three quantiles.
    refuse_share: float = 0.002
    seed: int = 0
    dry_run: bool = False  # a few hundred images of each kind: checks the pipeline


@dataclass
class DetectorFit:
    """A fitted detector, its calibration, the threshold and what it was measured to do."""

    detector: DigitDetector
    scale: float  # calibrated digit logit = scale * raw logit + shift
    shift: float
    threshold: float  # a drawing whose probability of one digit is below this is refused
    metrics: dict[str, Any] = field(default_factory=dict)
    config: DetectorConfig = field(default_factory=DetectorConfig)

    def payload(self) -> dict[str, Any]:
        """What a checkpoint keeps of it."""
        return {
            "state_dict": self.detector.state_dict(),
            "scale": self.scale,
            "shift": self.shift,
            "threshold": self.threshold,
            "metrics": self.metrics,
            "config": asdict(self.config),
        }

    @classmethod
    def from_payload(cls, saved: dict[str, Any], channels: int) -> DetectorFit:
        detector = DigitDetector(channels)
        detector.load_state_dict(saved["state_dict"])
        detector.eval()
        # Detectors fitted before `zero_slashes` saw rising slashes only.
        config = DetectorConfig(**{"zero_slashes": (1,), **saved.get("config", {})})
        return cls(
            detector, saved["scale"], saved["shift"], saved["threshold"], saved["metrics"], config
        )


def maps_of(model: Standardised, images: np.ndarray, batch: int = 500) -> torch.Tensor:
    """The classifier's last feature maps for MNIST-form images, float16 to save memory: (N, C,
    7, 7), filled a batch at a time into one tensor (no second copy to join the batches)."""
    members = digitnet_members(model.net)
    out = None
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch]).float()[:, None]
            maps = feature_maps(members, (x - MNIST_MEAN) / MNIST_STD).half()
            if out is None:
                out = torch.empty((len(images), *maps.shape[1:]), dtype=torch.float16)
            out[start : start + len(maps)] = maps
    return out if out is not None else torch.zeros(0)


def fit_detector(
    model: Standardised,
    mnist: Mnist,
    letters: Sequence[dict[str, Any]],
    config: DetectorConfig,
    cache_dir: Any = None,
) -> DetectorFit:
    """Fit, calibrate and measure a detector on `model`'s frozen features.

    `letters`: pen-drawn letters of the writers it may learn from (none: synthesised kinds
    only); a fifth of those writers is held back for calibration.
    """
    torch.manual_seed(config.seed)
    model.eval()
    examples = gather_examples(
        mnist, letters, config, np.random.default_rng(config.seed), cache_dir
    )

    logger.info("reading the classifier's features")
    positives = torch.cat([maps_of(model, x) for x in examples.digits.values()])
    negatives_ = torch.cat([maps_of(model, x) for x in examples.not_digits.values() if len(x)])
    detector = DigitDetector(positives.shape[1])
    _train(detector, positives, negatives_, config)

    scale, shift, threshold, probs = _calibrated(detector, model, examples, config.refuse_share)
    test_x = mnist.split("test")[0][: 300 if config.dry_run else None]
    test = sigmoid(scale * raw_logits(detector, model, test_x.astype(np.float32) / 255) + shift)
    metrics = {
        "refused": {k: float((p < threshold).mean()) for k, p in probs.items()},
        "mnist_test_refused": float((test < threshold).mean()),
        "counts": {
            "digits learnt": len(positives),
            **{f"{k} learnt": len(v) for k, v in examples.not_digits.items()},
            **{f"{k} held back": len(v) for k, v in examples.held_back.items()},
        },
        "letter_writers": examples.letter_writers,
    }
    logger.info("threshold %.3f; refused %s", threshold, metrics["refused"])
    return DetectorFit(detector.eval(), scale, shift, threshold, metrics, config)


def _calibrated(
    detector: DigitDetector, model: Standardised, examples: Examples, refuse_share: float
) -> tuple[float, float, float, dict[str, np.ndarray]]:
    """Platt scaling on an even mix of validation digits and held-back not-digits, then the
    threshold that refuses at most `refuse_share` of each form of validation digits: (scale,
    shift, threshold, each set's calibrated probabilities)."""
    raw = {f"digits {k}": raw_logits(detector, model, x) for k, x in examples.validation.items()}
    held = {k: raw_logits(detector, model, x) for k, x in examples.held_back.items() if len(x)}
    scale, shift = _calibrate(
        np.concatenate(list(raw.values())), np.concatenate(list(held.values()))
    )
    probs = {k: sigmoid(scale * v + shift) for k, v in {**raw, **held}.items()}
    threshold = refusal_threshold([probs[k] for k in raw], refuse_share)
    return scale, shift, threshold, probs


def refusal_threshold(digit_probabilities: Sequence[np.ndarray], refuse_share: float) -> float:
    """The threshold that refuses at most `refuse_share` of each set of digits (their forms)."""
    return min(float(np.quantile(p, refuse_share)) for p in digit_probabilities)


def raw_logits(
    detector: DigitDetector, model: Standardised, images: np.ndarray, chunk: int = 2000
) -> np.ndarray:
    """The detector's uncalibrated logits (N,) for MNIST-form images, a chunk at a time."""
    return np.concatenate(
        [
            _logits(detector, maps_of(model, images[i : i + chunk]))
            for i in range(0, len(images), chunk)
        ]
        or [np.zeros(0, np.float32)]
    )


def _train(
    detector: DigitDetector,
    positives: torch.Tensor,
    negatives_: torch.Tensor,
    config: DetectorConfig,
) -> None:
    """Class-balanced logistic loss: digits and not-digits weigh the same in total."""
    x = torch.cat([positives, negatives_])
    y = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives_))])
    weight = torch.where(y == 1, len(x) / (2 * len(positives)), len(x) / (2 * len(negatives_)))
    optimizer = torch.optim.AdamW(
        detector.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    epochs = 2 if config.dry_run else config.epochs
    detector.train()
    for _ in tqdm(range(epochs), desc="detector", unit="epoch"):
        for batch in torch.randperm(len(x)).split(config.batch_size):
            weighted_step(detector, optimizer, x[batch], y[batch], weight[batch])
    detector.eval()


def weighted_step(
    detector: DigitDetector,
    optimizer: torch.optim.Optimizer,
    maps: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
) -> None:
    """One step on a batch of feature maps (B, C, 7, 7): weighted logistic loss, y 1 a digit."""
    loss = F.binary_cross_entropy_with_logits(detector(maps.float()), y, weight=weight)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _logits(detector: DigitDetector, maps: torch.Tensor, batch: int = 2000) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [detector(maps[i : i + batch].float()).numpy() for i in range(0, len(maps), batch)]
        )


def _calibrate(digit_logits: np.ndarray, other_logits: np.ndarray) -> tuple[float, float]:
    """Platt scaling on an even mix of held-back digits and not-digits: (scale, shift)."""
    x = torch.from_numpy(np.concatenate([digit_logits, other_logits])).double()
    y = torch.cat([torch.ones(len(digit_logits)), torch.zeros(len(other_logits))]).double()
    weight = torch.where(y == 1, len(x) / (2 * len(digit_logits)), len(x) / (2 * len(other_logits)))
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(params[0] * x + params[1], y, weight=weight)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(params[0].detach()), float(params[1].detach())
