"""What the "not a digit" detector learns from: digits and not-digits in MNIST form.

Digits: MNIST training digits as they are, through `to_mnist`, and drawing-like copies of each
(`augmentation`; zeros slashed either way). Not digits (`negatives`, rendered like the slate):
pen-drawn letters of some writers, rows of two or three MNIST digits, scribbles, shapes and
struck-out digits. A fifth of each kind of not-digit (and of the letter writers) is held back
for calibration, and the validation digits are drawn the same three ways to set the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from digitrec import negatives
from digitrec.augmentation import AugmentConfig, augmented_copies, preprocess_all
from digitrec.data import Mnist
from digitrec.preprocessing import PreprocessingError, to_mnist
from digitrec.rendering import render

if TYPE_CHECKING:  # only read: the configuration lives with the fit that uses it
    from digitrec.detection import DetectorConfig

logger = logging.getLogger(__name__)


def mnist_form(canvases: Iterable[np.ndarray]) -> np.ndarray:
    """Drawings as the model sees them, (N, 28, 28) float32; those refused as empty dropped."""
    images = []
    for canvas in canvases:
        try:
            images.append(to_mnist(canvas))
        except PreprocessingError:  # a mark too small: refused before the model anyway
            continue
    return np.stack(images).astype(np.float32) if images else np.zeros((0, 28, 28), np.float32)


def not_digits(
    letters: Sequence[dict[str, Any]],
    digits: np.ndarray,
    config: DetectorConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each kind of not-a-digit in MNIST form. `digits`: MNIST-form digits to build rows from."""
    share = 0.05 if config.dry_run else 1.0

    def count(n: int) -> int:
        return max(4, int(n * share))

    renders = 1 if config.dry_run else config.letter_renders
    drawn_letters = mnist_form(
        render(negatives.varied(s["strokes"], rng), rng)
        for _ in range(renders)
        for s in letters[: count(len(letters))]
    )
    counts = (count(config.rows), count(config.scribbles), count(config.shapes))
    return {"letters": drawn_letters, **made_up(digits, rng, *counts, count(config.crossed_out))}


def made_up(
    digits: np.ndarray,
    rng: np.random.Generator,
    rows: int,
    scribbles: int,
    shapes: int,
    crossed_out: int,
) -> dict[str, np.ndarray]:
    """The made-up kinds of not-a-digit, as many of each as asked, in MNIST form. `digits`:
    MNIST-form digits to build rows of and to strike out."""

    def row() -> np.ndarray:
        picked = rng.integers(0, len(digits), int(rng.integers(2, 4)))
        return negatives.digit_row([digits[i] for i in picked], rng)

    return {
        "digit rows": mnist_form(row() for _ in range(rows)),
        "scribbles": mnist_form(render(negatives.scribble(rng), rng) for _ in range(scribbles)),
        "shapes": mnist_form(
            render(negatives.varied(negatives.shape(rng), rng), rng) for _ in range(shapes)
        ),
        "crossed out": mnist_form(
            negatives.crossed_out(digits[i], rng) for i in rng.integers(0, len(digits), crossed_out)
        ),
    }


def digit_forms(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    cache_dir: Any,
    copies: int = 1,
    zero_slashes: tuple[int, ...] = (1,),
) -> dict[str, np.ndarray]:
    """MNIST digits the three ways the classifier learnt them: plain, preprocessed, and
    `copies` drawing-like versions (stacked), their zeros slashed as `zero_slashes` says."""
    config = AugmentConfig(zero_slashes=zero_slashes)
    varied = augmented_copies(images, labels, copies, seed, cache_dir, config=config)
    return {
        "plain": images.astype(np.float32) / 255,
        "preprocessed": preprocess_all(images),
        "drawing-like": np.concatenate(varied),
    }


class Examples(NamedTuple):
    """What a detector learns from and is calibrated on, each kind in MNIST form (N, 28, 28)."""

    digits: dict[str, np.ndarray]  # MNIST training digits in their three forms
    not_digits: dict[str, np.ndarray]  # each kind of not-a-digit to learn from
    held_back: dict[str, np.ndarray]  # each kind held back for calibration
    validation: dict[str, np.ndarray]  # MNIST validation digits in their three forms
    letter_writers: dict[str, int]  # writers learnt from and held back


def gather_examples(
    mnist: Mnist,
    letters: Sequence[dict[str, Any]],
    config: DetectorConfig,
    rng: np.random.Generator,
    cache_dir: Any = None,
) -> Examples:
    """Draw the digits and not-digits a detector learns from, and those held back."""
    n = 300 if config.dry_run else config.digits
    train_x, train_y = mnist.split("train")
    logger.info("drawing digits and not-digits to learn from")
    copies = 1 if config.dry_run else config.varied_copies
    slashes = tuple(config.zero_slashes)
    digits = digit_forms(train_x[:n], train_y[:n], config.seed, cache_dir, copies, slashes)
    learn_letters, calibrate_letters = negatives.split_by_writer(
        letters, config.held_back, salt="calibration"
    )
    learn_kinds = not_digits(learn_letters, digits["drawing-like"], config, rng)
    held_kinds = _held_back(learn_kinds, config.held_back, rng)
    held_kinds["letters"] = not_digits(calibrate_letters, digits["drawing-like"], config, rng)[
        "letters"
    ]
    val_digits = validation_forms(mnist, config, cache_dir, 300 if config.dry_run else None)
    writers = {"learnt": _writers(learn_letters), "held back": _writers(calibrate_letters)}
    return Examples(digits, learn_kinds, held_kinds, val_digits, writers)


def validation_forms(
    mnist: Mnist, config: DetectorConfig, cache_dir: Any, limit: int | None = None
) -> dict[str, np.ndarray]:
    """The first `limit` MNIST validation digits (None: all) in their three forms, drawn the
    same way on every call: what a detector's threshold is set on."""
    val_x, val_y = (part[:limit] for part in mnist.split("val"))
    slashes = tuple(config.zero_slashes)
    return digit_forms(val_x, val_y, config.seed + 1, cache_dir, zero_slashes=slashes)


def _held_back(
    kinds: dict[str, np.ndarray], share: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Move `share` of each synthesised kind out of `kinds` (in place) and return it."""
    held = {}
    for kind, images in list(kinds.items()):
        if kind == "letters":  # held back by writer instead
            continue
        order = rng.permutation(len(images))
        cut = int(len(images) * share)
        held[kind], kinds[kind] = images[order[:cut]], images[order[cut:]]
    return held


def _writers(samples: Sequence[dict[str, Any]]) -> int:
    return len({s["writer"] for s in samples})
