"""Any picture of a digit -> a 28x28 MNIST-style image: the one place this happens.

MNIST was built by cropping each digit to its ink, fitting it into 20x20 with anti-aliasing
(aspect ratio kept) and placing its centre of mass at the centre of a 28x28 field. Every
drawing and upload (canvas, API upload, training augmentation, benchmarks) goes through
`to_mnist`, so the model sees drawings the way it saw MNIST; MNIST's own images are already in
that form and reach the model as they are. Uploads are decoded by `digitrec.codec` and their ink
found by `digitrec.ink`; this module re-exports their public names and fits the ink to MNIST's
form.

The work is done on 8-bit pixels with OpenCV where it can be (crop to the ink, look-up tables,
area resize, dilate and erode, moments); one canvas takes a fraction of a millisecond.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from digitrec.codec import (
    ACCEPTED_FORMATS,
    MAX_WORK_PIXELS,
    ImageSource,
    as_canvas,
    encode_png,
    is_small_png,
    png_to_store,
    to_uint8,
)
from digitrec.contract import (
    DrawingTooSmallError,
    EmptyDrawingError,
    ImageTooLargeError,
    InvalidImageError,
    PreprocessingError,
)
from digitrec.ink import InkRegion, ink_map, ink_region

MNIST_SIZE_PX = 28
DIGIT_BOX_PX = 20  # MNIST fits the ink into 20x20, then centres it in 28x28
INK_THRESHOLD = 0.25  # ink fraction above which a pixel counts as drawn
MIN_INK_FRACTION = 0.001  # fewer drawn pixels than this share of the image: a blank slate
MIN_EXTENT_FRACTION = 0.03  # a drawing smaller than this share of the image side: a speck
# A mark whose length (its longer side less the pen's width) is under this share of the
# image's shorter side is a click or a tick, not a digit: 50 px on the 280 px slate, so that
# every straight tick under 15 % of the slate is refused. Scaled to the MNIST field, such a
# tick and a short 1 are the same picture; drawn digits are 40 % of the slate or more,
# MNIST's 18 px of 28.
MIN_DIGIT_FRACTION = 0.18
SPECK_MASS_FRACTION = 0.02  # a separate blot with less of the ink than this is a speck
# Stroke width of a typical MNIST digit, in pixels of the 28 px field (median over the
# training set, estimated as 2 * area / perimeter).
MNIST_STROKE_PX = 1.9
WORK_BOX_PX = 80  # thickness is normalised at 4x the box size, then reduced with anti-aliasing
WORK_MARGIN_PX = 5  # room around the work image for the largest pen change (9x9 filter)
LANCZOS_LOBES = 3  # the final reduction to the 20 px box is Lanczos-3, as Pillow's LANCZOS


__all__ = [
    "ACCEPTED_FORMATS",
    "MAX_WORK_PIXELS",
    "DrawingTooSmallError",
    "EmptyDrawingError",
    "ImageSource",
    "ImageTooLargeError",
    "InvalidImageError",
    "PreprocessingError",
    "as_canvas",
    "encode_png",
    "ink_map",
    "is_small_png",
    "png_to_store",
    "stroke_width",
    "to_mnist",
    "to_uint8",
]


def to_mnist(source: ImageSource) -> np.ndarray:
    """Turn one image into a (28, 28) float32 array in [0, 1], white digit on black."""
    region = ink_region(source)
    top, bottom, left, right = _digit_box(region)
    digit = _fit_box(region.ink[top:bottom, left:right])
    return _place_by_mass(digit)


def _digit_box(region: InkRegion) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the digit in `region.ink`, ignoring tiny specks."""
    height, width = region.shape
    mass = cv2.threshold(region.ink, INK_THRESHOLD, 0, cv2.THRESH_TOZERO)[1]  # drawn ink, else 0
    if cv2.countNonZero(mass) < MIN_INK_FRACTION * height * width:
        raise EmptyDrawingError("nothing is drawn")
    top, bottom = _mass_span(cv2.reduce(mass, 1, cv2.REDUCE_SUM, dtype=cv2.CV_64F)[:, 0])
    left, right = _mass_span(cv2.reduce(mass, 0, cv2.REDUCE_SUM, dtype=cv2.CV_64F)[0])
    longer = max(bottom - top, right - left)
    length = longer - stroke_width(region.ink[top:bottom, left:right])
    if length < MIN_DIGIT_FRACTION * min(height, width) or longer < (
        MIN_EXTENT_FRACTION * max(height, width)
    ):
        # The reason only: the page adds its own advice (draw one digit, large and centred).
        raise DrawingTooSmallError("the mark is too small to be a digit")
    return top, bottom, left, right


def _mass_span(profile: np.ndarray) -> tuple[int, int]:
    """The index range from the first to the last run of ink that is more than a speck.

    A run is a stretch of inked rows (or columns) with gaps of at most 2 px; a run holding less
    than SPECK_MASS_FRACTION of the ink is a speck, unless every run is.
    """
    nonzero = np.flatnonzero(profile)
    breaks = np.flatnonzero(np.diff(nonzero) > 2)  # runs end at nonzero[b] for b in breaks
    if breaks.size == 0:  # one run: the common case
        return int(nonzero[0]), int(nonzero[-1]) + 1
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, len(nonzero) - 1]
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    mass = cumulative[nonzero[ends] + 1] - cumulative[nonzero[starts]]
    keep = mass >= SPECK_MASS_FRACTION * cumulative[-1]
    if not keep.any():
        keep = mass == mass.max()
    return int(nonzero[starts[keep][0]]), int(nonzero[ends[keep][-1]]) + 1


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Scale the cropped digit so its longer side is 20 px, strokes at MNIST's width."""
    height, width = crop.shape
    scale = WORK_BOX_PX / max(height, width)
    work_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(crop, work_size, interpolation=cv2.INTER_AREA)
    # A margin lets strokes grow past, and shrink from, the edges of the tight crop.
    margin = WORK_MARGIN_PX
    padded = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    pixels = _normalise_stroke(padded)
    left, top, width, height = cv2.boundingRect((pixels > INK_THRESHOLD).view(np.uint8))
    if width == 0:  # cannot happen: erosion is undone when it removes most ink
        raise EmptyDrawingError("nothing is drawn")
    pixels = pixels[top : top + height, left : left + width]
    factor = DIGIT_BOX_PX / max(pixels.shape)
    size = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
    # Pillow's LANCZOS (anti-aliased, as the shipped models were trained), as two small matrix
    # products: Pillow spends most of its time on this small image in converting it.
    across = (pixels @ _lanczos_weights(pixels.shape[1], size[0]).T).astype(np.float32)
    digit = (_lanczos_weights(pixels.shape[0], size[1]) @ across).astype(np.float32)
    return np.clip(digit, 0.0, 1.0)


@functools.lru_cache(maxsize=512)
def _lanczos_weights(in_px: int, out_px: int) -> np.ndarray:
    """(out_px, in_px) float64: Pillow's LANCZOS resampling of one axis, as a matrix.

    Pillow's `precompute_coeffs`: output pixel i is centred on input position (i + 0.5) * scale,
    and weighs the input pixels within 3 * max(scale, 1) of it by the 3-lobed Lanczos window,
    stretched by max(scale, 1); each row sums to 1.
    """
    scale = in_px / out_px
    stretch = max(scale, 1.0)
    support = LANCZOS_LOBES * stretch
    weights = np.zeros((out_px, in_px))
    for out in range(out_px):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_px)
        x = (np.arange(first, last) - centre + 0.5) / stretch
        row = np.where((x >= -LANCZOS_LOBES) & (x < LANCZOS_LOBES), _lanczos(x), 0.0)
        weights[out, first:last] = row / row.sum() if row.sum() else row
    return weights


def _lanczos(x: np.ndarray) -> np.ndarray:
    """sinc(x) * sinc(x / 3): numpy's sinc is sin(pi x) / (pi x), 1 at 0, as Pillow's."""
    return np.sinc(x) * np.sinc(x / LANCZOS_LOBES)


def _normalise_stroke(work: np.ndarray) -> np.ndarray:
    """Thicken hair-lines and thin marker strokes towards MNIST's stroke width."""
    target = MNIST_STROKE_PX * WORK_BOX_PX / DIGIT_BOX_PX
    width = stroke_width(work)
    if width < 0.7 * target:
        size = 2 * round((target - width) / 2) + 1  # grow by about the missing width
        work = _square_filter(work, max(3, min(size, 9)), cv2.dilate)
    elif width > 1.5 * target:
        size = 2 * round((width - target) / 2) + 1
        eroded = _square_filter(work, max(3, min(size, 9)), cv2.erode)
        # Never erode a stroke away: keep the erosion only if most of the ink survives.
        if cv2.sumElems(eroded)[0] > 0.3 * cv2.sumElems(work)[0]:
            work = eroded
    return work


def _square_filter(image: np.ndarray, size: int, morph: Callable[..., np.ndarray]) -> np.ndarray:
    """Max (cv2.dilate) or min (cv2.erode) over size x size squares, zeros outside."""
    kernel = np.ones((size, size), dtype=np.uint8)
    return morph(image, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels, estimated as 2 * inked area / inked outline length."""
    # (H + 2, W + 2) uint8, 1 where inked: the blank frame makes the image's edge an outline.
    drawn = cv2.copyMakeBorder((ink > 0.5).view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    area = cv2.countNonZero(drawn)
    if area == 0:
        return 0.0
    edges = cv2.countNonZero(cv2.compare(drawn[1:, :], drawn[:-1, :], cv2.CMP_NE))
    edges += cv2.countNonZero(cv2.compare(drawn[:, 1:], drawn[:, :-1], cv2.CMP_NE))
    return 2.0 * area / max(edges, 1)


def _place_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste the digit into 28x28 so that its centre of mass lands on the centre."""
    height, width = digit.shape
    moments = cv2.moments(digit)
    total = moments["m00"]
    mass_row = moments["m01"] / total if total else (height - 1) / 2
    mass_col = moments["m10"] / total if total else (width - 1) / 2
    centre = MNIST_SIZE_PX / 2
    top = min(max(round(centre - mass_row), 0), MNIST_SIZE_PX - height)
    left = min(max(round(centre - mass_col), 0), MNIST_SIZE_PX - width)
    out = np.zeros((MNIST_SIZE_PX, MNIST_SIZE_PX), dtype=np.float32)
    out[top : top + height, left : left + width] = digit
    return out
