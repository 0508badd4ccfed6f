"""Drawing-like variations of MNIST digits: pens, slants, distortions and styles MNIST lacks.

People on the slate write slashed zeros, European ones with a flag (and a foot), crossed sevens,
with thin and thick pens, slanted and squashed. Only MNIST is there to learn from, so these are
synthesised from it: each digit is enlarged, given a style stroke where its class allows one,
warped (affine plus a smooth elastic field), re-inked with another pen width, and finally sent
through `to_mnist`, exactly as a drawing is at prediction time. Whole training sets of such
copies take minutes, so `augmented_copies` makes them in worker processes and caches them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from digitrec import preprocessing
from digitrec.preprocessing import PreprocessingError, stroke_width, to_mnist

logger = logging.getLogger(__name__)

WORK_PX = 112  # 28 px digit enlarged 3x (84 px) and padded so warps never leave the field
ENLARGE = 3
# Digits per worker task. Each chunk has its own seed, so a copy is the same whether its chunks
# run in one process or in many.
CHUNK_DIGITS = 2000


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly to vary each digit; every value is the edge of a uniform range."""

    rotation_deg: float = 15.0  # people slant both ways
    shear: float = 0.35  # italic writing
    log_aspect: float = 0.35  # e^±0.35: very narrow to very round digits
    elastic: float = 0.05  # std of a 4x4 displacement field, in units of half the field
    pen_steps: tuple[int, ...] = (-2, -1, 0, 0, 1, 2, 3)  # erode (<0) / dilate (>0), work px
    style_p: float = 0.5  # chance that a 0, 1 or 7 gets its European style stroke
    # A zero's slash rises to the right (1, "/"); with -1 in the tuple too it may fall to the
    # right ("\"), as many people slash it: one is picked at random for each slashed zero.
    zero_slashes: tuple[int, ...] = (1,)


def augment(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
) -> np.ndarray:
    """Varied copies of MNIST digits, (N, 28, 28) uint8 -> (N, 28, 28) float32 in [0, 1]."""
    config = config or AugmentConfig()
    big = _enlarge(images)  # (N, 1, 112, 112) float32
    big = _add_style_strokes(big, labels, rng, config)
    big = _warp(big, rng, config)
    big = _change_pen(big, rng, config.pen_steps)
    out = np.empty((len(images), 28, 28), dtype=np.float32)
    for i, (canvas, original) in enumerate(zip(big[:, 0].numpy(), images, strict=True)):
        try:
            out[i] = to_mnist(canvas)
        except PreprocessingError:  # a pen change erased a faint digit: keep it plain
            out[i] = to_mnist(original)
    return out


def preprocess_all(images: np.ndarray) -> np.ndarray:
    """MNIST digits through the same `to_mnist` as drawings: (N, 28, 28) uint8 -> float32."""
    return np.stack([to_mnist(img) for img in images]).astype(np.float32)


def augmented_copies(
    images: np.ndarray,
    labels: np.ndarray,
    copies: int,
    seed: int,
    cache_dir: Path | None,
    workers: int = 2,
    config: AugmentConfig | None = None,
) -> list[np.ndarray]:
    """`copies` drawing-like versions of the set, (N, 28, 28) float32 each, cached on disk."""
    config = config or AugmentConfig()
    key = _cache_key(images, seed, config)
    out = []
    for c in range(copies):
        path = cache_dir / f"augmented-{key}-{c}.npy" if cache_dir else None
        if path is not None and path.is_file():
            out.append(np.load(path))
            continue
        chunks = [
            (
                images[i : i + CHUNK_DIGITS],
                labels[i : i + CHUNK_DIGITS],
                seed * 100_003 + c * 1_009 + i,
                config,
            )
            for i in range(0, len(images), CHUNK_DIGITS)
        ]
        copy = np.concatenate(_augment_chunks(chunks, workers))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, copy)
        out.append(copy)
    return out


def _cache_key(images: np.ndarray, seed: int, config: AugmentConfig) -> str:
    """Covers the data, the seed, the config and the code that makes the copies (this module
    and `to_mnist`)."""
    code = b"".join(Path(m).read_bytes() for m in (__file__, preprocessing.__file__ or ""))
    settings = "" if config == AugmentConfig() else repr(config)
    data = images.tobytes()[:1_000_000] + f"{len(images)}-{seed}{settings}".encode()
    return hashlib.sha256(data + code).hexdigest()[:12]


def _augment_chunks(
    chunks: list[tuple[np.ndarray, np.ndarray, int, AugmentConfig]], workers: int
) -> list[np.ndarray]:
    """Each chunk augmented with its own seed: in this process when there is only one."""
    if len(chunks) <= 1 or workers <= 1:
        # A pool costs seconds of start-up (each worker imports torch), more than one chunk
        # takes; and it cannot start when __main__ cannot be re-imported (a script from stdin).
        return [_augment_chunk(chunk) for chunk in chunks]
    try:
        # spawn, not fork: a forked child inherits torch's OpenMP pool and can hang in it.
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            return list(pool.map(_augment_chunk, chunks))
    except BrokenProcessPool:
        # As from stdin or some notebooks. Each chunk has its own seed: same result, slower.
        logger.warning("augmentation workers could not start; augmenting in this process")
        return [_augment_chunk(chunk) for chunk in chunks]


def _augment_chunk(args: tuple[np.ndarray, np.ndarray, int, AugmentConfig]) -> np.ndarray:
    images, labels, seed, config = args
    return augment(images, labels, np.random.default_rng(seed), config)


def _enlarge(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255.0)[:, None]  # (N, 1, 28, 28)
    x = F.interpolate(x, scale_factor=ENLARGE, mode="bilinear", align_corners=False)
    pad = (WORK_PX - 28 * ENLARGE) // 2
    return F.pad(x, (pad, pad, pad, pad))  # (N, 1, 112, 112)


def _warp(x: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> torch.Tensor:
    """One random affine map plus a smooth elastic field per digit, bilinear resampling."""
    n = x.shape[0]
    angle = np.radians(rng.uniform(-config.rotation_deg, config.rotation_deg, n))
    shear = rng.uniform(-config.shear, config.shear, n)
    aspect = np.exp(rng.uniform(-config.log_aspect, config.log_aspect, n))
    cos, sin = np.cos(angle), np.sin(angle)
    # theta maps output coordinates to input coordinates: rotation @ shear @ aspect scaling.
    theta = np.zeros((n, 2, 3), dtype=np.float32)
    theta[:, 0, 0] = cos * aspect
    theta[:, 0, 1] = cos * shear - sin
    theta[:, 1, 0] = sin * aspect
    theta[:, 1, 1] = sin * shear + cos
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    field = torch.from_numpy(rng.normal(0.0, config.elastic, (n, 2, 4, 4)).astype(np.float32))
    field = F.interpolate(field, size=x.shape[-2:], mode="bicubic", align_corners=True)
    grid = grid + field.permute(0, 2, 3, 1)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _change_pen(x: torch.Tensor, rng: np.random.Generator, steps: tuple[int, ...]) -> torch.Tensor:
    """Thicken (max-pool) or thin (min-pool) the strokes by a random number of work pixels."""
    chosen = rng.choice(np.array(steps), size=x.shape[0])
    out = x.clone()
    for step in np.unique(chosen):
        if step == 0:
            continue
        idx = torch.from_numpy(np.flatnonzero(chosen == step))
        k = 2 * abs(int(step)) + 1
        part = x[idx]
        if step > 0:
            out[idx] = F.max_pool2d(part, k, stride=1, padding=k // 2)
        else:
            out[idx] = -F.max_pool2d(-part, k, stride=1, padding=k // 2)
    return out


# Draws one style stroke on a digit: (canvas, its ink mask, pen width, generator).
StyleStroke = Callable[[ImageDraw.ImageDraw, np.ndarray, int, np.random.Generator], None]


def _add_style_strokes(
    x: torch.Tensor, labels: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> torch.Tensor:
    """Give some 0s a slash, 1s a flag (sometimes a foot) and 7s a crossbar."""
    styles: dict[int, StyleStroke] = {
        0: functools.partial(_slash_zero, directions=config.zero_slashes),
        1: _flag_one,
        7: _cross_seven,
    }
    picked = [i for i, y in enumerate(labels) if int(y) in styles and rng.random() < config.style_p]
    for i in picked:
        canvas = Image.fromarray((x[i, 0].numpy() * 255).astype(np.uint8))
        ink = np.asarray(canvas) > 127
        if ink.sum() < 10:
            continue
        width = max(2, round(stroke_width(np.asarray(canvas, dtype=np.float32) / 255)))
        styles[int(labels[i])](ImageDraw.Draw(canvas), ink, width, rng)
        x[i, 0] = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255)
    return x


def _extent(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _line(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: int) -> None:
    draw.line(points, fill=255, width=width, joint="curve")
    r = width / 2
    for px, py in (points[0], points[-1]):  # round caps, as a pen leaves them
        draw.ellipse((px - r, py - r, px + r, py + r), fill=255)


def _slash_zero(
    draw: ImageDraw.ImageDraw,
    ink: np.ndarray,
    width: int,
    rng: np.random.Generator,
    *,
    directions: tuple[int, ...] = (1,),
) -> None:
    """A slash across the ring, rising (1) or falling (-1), picked from `directions`."""
    # One direction draws nothing from `rng`: such copies are made as they always were.
    direction = directions[0] if len(directions) == 1 else rng.choice(directions)
    top, bottom, left, right = _extent(ink)
    over = rng.uniform(0.0, 0.15)  # how far the slash runs past the ring
    h, w = bottom - top, right - left
    first, last = right + over * w, left - over * w  # the slash's top end, then its bottom end
    if direction < 0:
        first, last = last, first
    _line(draw, [(first, top - over * h), (last, bottom + over * h)], width)


def _flag_one(
    draw: ImageDraw.ImageDraw, ink: np.ndarray, width: int, rng: np.random.Generator
) -> None:
    top, bottom, _, _ = _extent(ink)
    h = bottom - top
    x_top = float(np.flatnonzero(ink[top : top + 3].any(axis=0)).mean())
    length = rng.uniform(0.2, 0.6) * h  # from a short serif to the long continental up-stroke
    angle = math.radians(rng.uniform(15, 65))  # below the horizontal, to the left
    _line(
        draw,
        [(x_top - length * math.cos(angle), top + length * math.sin(angle)), (x_top, top)],
        width,
    )
    if rng.random() < 0.3:
        x_foot = float(np.flatnonzero(ink[bottom - 2 : bottom + 1].any(axis=0)).mean())
        half = rng.uniform(0.15, 0.3) * h
        _line(draw, [(x_foot - half, bottom), (x_foot + half, bottom)], width)


def _cross_seven(
    draw: ImageDraw.ImageDraw, ink: np.ndarray, width: int, rng: np.random.Generator
) -> None:
    top, bottom, _, _ = _extent(ink)
    h = bottom - top
    row = top + round(rng.uniform(0.45, 0.62) * h)
    cols = np.flatnonzero(ink[row])
    if cols.size == 0:
        return
    centre = float(cols.mean())
    half = rng.uniform(0.15, 0.3) * h
    tilt = rng.uniform(-0.05, 0.05) * h
    _line(draw, [(centre - half, row + tilt), (centre + half, row - tilt)], width)
