"""Any picture of a digit -> a 28x28 MNIST-style image: the one place this happens.

MNIST was built by cropping each digit to its ink, fitting it into 20x20 with anti-aliasing
(aspect ratio kept) and placing its centre of mass at the centre of a 28x28 field. Every
drawing and upload (canvas, API upload, training augmentation, benchmarks) goes through
`to_mnist`, so the model sees drawings the way it saw MNIST; MNIST's own images are already in
that form and reach the model as they are. Uploads are decoded by `digitrec.codec`, whose
public names this module re-exports.

The work is done on 8-bit pixels with OpenCV where it can be (crop to the ink, look-up tables,
area resize, dilate and erode, moments); one canvas takes a fraction of a millisecond.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from digitrec.codec import (
    ACCEPTED_FORMATS,
    MAX_WORK_PIXELS,
    ImageSource,
    as_canvas,
    check_size,
    encode_png,
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

MNIST_SIZE_PX = 28
DIGIT_BOX_PX = 20  # MNIST fits the ink into 20x20, then centres it in 28x28
FAINT_INK = 0.05  # below this share of full ink a pixel is background
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
# The strongest ink is the 99th percentile of the inked pixels when there are more than this
# many (a few hot pixels of a photo do not set it), else the largest.
PEAK_PERCENTILE = 99
PEAK_MIN_PIXELS = 1000
# Stroke width of a typical MNIST digit, in pixels of the 28 px field (median over the
# training set, estimated as 2 * area / perimeter).
MNIST_STROKE_PX = 1.9
WORK_BOX_PX = 80  # thickness is normalised at 4x the box size, then reduced with anti-aliasing
WORK_MARGIN_PX = 5  # room around the work image for the largest pen change (9x9 filter)
LANCZOS_LOBES = 3  # the final reduction to the 20 px box is Lanczos-3, as Pillow's LANCZOS

_LEVELS = np.arange(256, dtype=np.float32) / 255  # the float value of each 8-bit level
BINARY = cv2.THRESH_BINARY  # 255 where a pixel is above the threshold, 0 elsewhere

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
    "png_to_store",
    "stroke_width",
    "to_mnist",
    "to_uint8",
]


def to_mnist(source: ImageSource) -> np.ndarray:
    """Turn one image into a (28, 28) float32 array in [0, 1], white digit on black."""
    region = _ink_region(source)
    top, bottom, left, right = _digit_box(region)
    digit = _fit_box(region.ink[top:bottom, left:right])
    return _place_by_mass(digit)


class _InkRegion(NamedTuple):
    """The part of an image that holds any ink, and where it sits in the whole image."""

    ink: np.ndarray  # (h, w) float32 in [0, 1], 1 = full ink
    origin: tuple[int, int]  # (row, column) of ink[0, 0] in the image
    shape: tuple[int, int]  # (H, W) of the whole image


def ink_map(source: ImageSource) -> np.ndarray:
    """How much ink each pixel holds, (H, W) float32 in [0, 1], whatever the input's form."""
    region = _ink_region(source)
    out = np.zeros(region.shape, dtype=np.float32)
    row, col = region.origin
    out[row : row + region.ink.shape[0], col : col + region.ink.shape[1]] = region.ink
    return out


def _ink_region(source: ImageSource) -> _InkRegion:
    if not isinstance(source, np.ndarray):
        source = as_canvas(source)
    if isinstance(source, Image.Image):
        source = np.asarray(source)  # (H, W) or (H, W, 4) uint8
    return _array_to_ink(source)


def _array_to_ink(array: np.ndarray) -> _InkRegion:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(f"expected (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    check_size(array.shape[1], array.shape[0])
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidImageError(f"expected numeric pixels, got {array.dtype}")
    if array.ndim == 3:
        # Colour is read at 8 bits, as a PNG of it would be (OpenCV's integer luma, as
        # `as_canvas` reads an RGB upload): the same ink in-process and over HTTP.
        return _canvas_to_ink(np.ascontiguousarray(to_uint8(array)))
    if array.dtype == np.uint8:  # 8-bit grey: the same ink as the float path, in less memory
        return _levels_to_ink(np.ascontiguousarray(array))
    return _grey_to_ink(_unit_range(array))


def _unit_range(array: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers are read as 0..255, floats as 0..1 (or 0..255)."""
    if array.dtype == np.uint8 or array.dtype == np.bool_:
        scale = 255.0 if array.dtype == np.uint8 else 1.0
        return array.astype(np.float32) / np.float32(scale)
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if values.max(initial=0.0) > 1.0:
        values /= np.float32(255.0 if values.max() <= 255.0 else values.max())
    return np.clip(values, 0.0, 1.0)


def _transparent_to_ink(grey: np.ndarray, alpha: np.ndarray) -> _InkRegion:
    """A drawing on a transparent layer: ink is where it is opaque, whatever its colour."""
    drawn = alpha > 0.5
    if not drawn.any():
        raise EmptyDrawingError("nothing is drawn")
    # Opaque pixels that match the background's own colour (a filled backdrop) are not ink.
    if drawn.mean() > 0.5:
        return _grey_to_ink(grey * alpha + (1.0 - alpha) * float(np.median(grey[drawn])))
    return _crop_to_ink(alpha.astype(np.float32), peak=1.0)


def _grey_to_ink(grey: np.ndarray) -> _InkRegion:
    """Map grey levels to ink: the background (the border's typical level) becomes 0."""
    border = _border(grey)
    background = float(np.median(border))
    # Dark ink on light paper (photos, scans) is flipped so the digit is white on black.
    ink = background - grey if background > 0.5 else grey - background
    return _crop_to_ink(ink, peak=None)


def _canvas_to_ink(array: np.ndarray) -> _InkRegion:
    """An 8-bit RGB(A) picture, such as the slate: its grey levels (OpenCV's integer luma),
    read as `_grey_to_ink` reads them, in less time."""
    if array.shape[2] == 4:
        # Each pixel's four bytes as one int32 (alpha in the top byte, its sign bit): every
        # pixel is opaque (alpha >= 253) when the words lie in [253 << 24, 2**32) as unsigned.
        low, high = cv2.minMaxLoc(array.view(np.int32)[:, :, 0])[:2]
        if high >= 0 or low < (253 << 24) - 2**32:  # partly see-through: ink is where opaque
            return _clear_canvas_to_ink(array, cv2.extractChannel(array, 3))
    grey = cv2.cvtColor(array, cv2.COLOR_RGBA2GRAY if array.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    # Black all along the edges (the slate): the border's median, the background, is 0.
    background = 0.0 if not _border(grey).any() else None
    return _levels_to_ink(grey, background)


def _clear_canvas_to_ink(array: np.ndarray, alpha: np.ndarray) -> _InkRegion:
    """`_transparent_to_ink` for an 8-bit RGBA picture (`alpha`: its alpha channel); a drawing
    on a clear layer is cropped to its ink in uint8 before any float work."""
    opaque = cv2.threshold(alpha, _first_level_above(0.5) - 1, 255, BINARY)[1]
    drawn = cv2.countNonZero(opaque)
    if drawn > 0.5 * alpha.size or drawn == 0:  # a filled backdrop (or nothing): the float path
        grey = np.asarray(Image.fromarray(array).convert("L"), dtype=np.float32) / 255
        return _transparent_to_ink(grey, alpha.astype(np.float32) / 255)
    inked = cv2.threshold(alpha, _first_level_above(FAINT_INK) - 1, 255, BINARY)[1]
    left, top, width, height = cv2.boundingRect(inked)
    crop = cv2.LUT(alpha[top : top + height, left : left + width], _LEVELS)
    return _InkRegion(crop, (top, left), (alpha.shape[0], alpha.shape[1]))  # peak: full alpha


def _first_level_above(threshold: float) -> int:
    """The lowest 8-bit level whose float value is above `threshold`."""
    return int(np.searchsorted(_LEVELS, threshold, side="right"))


def _levels_to_ink(pixels: np.ndarray, background: float | None = None) -> _InkRegion:
    """`_grey_to_ink` for 8-bit grey (H, W) uint8: cropped to the ink in uint8, then made float
    through one 256-entry table. The very same floats as the float path."""
    if background is None:
        border = _border(pixels)
        background = float(np.median(border.astype(np.float32) / 255))
    ink_of_level = background - _LEVELS if background > 0.5 else _LEVELS - background
    inked_levels = np.flatnonzero(ink_of_level > FAINT_INK)  # one run, at one end of 0..255
    if inked_levels.size == 0:
        raise EmptyDrawingError("nothing is drawn")
    # Light paper: ink is darker than a level; dark slate: ink is lighter than a level.
    if background > 0.5:
        inked = cv2.threshold(pixels, int(inked_levels[-1]), 255, cv2.THRESH_BINARY_INV)[1]
    else:
        inked = cv2.threshold(pixels, int(inked_levels[0]) - 1, 255, BINARY)[1]
    left, top, width, height = cv2.boundingRect(inked)
    if width == 0:
        raise EmptyDrawingError("nothing is drawn")
    levels = pixels[top : top + height, left : left + width]
    peak = _peak_of_levels(levels, ink_of_level, cv2.countNonZero(inked), background > 0.5)
    _check_peak(peak)
    table = np.clip(ink_of_level / np.float32(peak), 0.0, 1.0).astype(np.float32, copy=False)
    return _InkRegion(cv2.LUT(levels, table), (top, left), (pixels.shape[0], pixels.shape[1]))


def _peak_of_levels(levels: np.ndarray, ink_of_level: np.ndarray, inked: int, paper: bool) -> float:
    """`_normalise_ink`'s peak of `ink_of_level[levels]` (`inked` of them are ink); ink grows
    with the level on a dark background, and shrinks with it on light `paper`."""
    darkest, lightest = cv2.minMaxLoc(levels)[:2]
    strongest = int(darkest if paper else lightest)
    if inked > PEAK_MIN_PIXELS:
        # Usually more than 1 % of the ink is the strongest level (a pen's full colour).
        # The strongest level is the lightest (darkest on paper): count those at or past it.
        kind, edge = (cv2.THRESH_BINARY_INV, strongest) if paper else (BINARY, strongest - 1)
        at_strongest = cv2.countNonZero(cv2.threshold(levels, edge, 255, kind)[1])
        if _peak_rank(inked) < inked - at_strongest:
            counts = cv2.calcHist([levels], [0], None, [256], [0, 256]).ravel()
            strong = np.flatnonzero((ink_of_level > FAINT_INK) & (counts > 0))
            order = np.argsort(ink_of_level[strong], kind="stable")
            return _peak_of_sorted(ink_of_level[strong][order], counts[strong][order])
    return float(ink_of_level[strongest])


def _border(pixels: np.ndarray) -> np.ndarray:
    """The pixels along the four edges: they tell the background from the ink."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def _crop_to_ink(ink: np.ndarray, peak: float | None) -> _InkRegion:
    """Cut `ink` down to the rows and columns holding any, scaled so `peak` is full ink."""
    inked = ink > FAINT_INK
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError("nothing is drawn")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _normalise_ink(crop, (int(rows[0]), int(cols[0])), (ink.shape[0], ink.shape[1]), peak)


def _normalise_ink(
    crop: np.ndarray, origin: tuple[int, int], shape: tuple[int, int], peak: float | None
) -> _InkRegion:
    if peak is None:
        strong = crop[crop > FAINT_INK]
        if strong.size > PEAK_MIN_PIXELS:
            rank = _peak_rank(strong.size)
            peak = float(np.partition(strong, rank)[rank])
        else:
            peak = float(strong.max())
    _check_peak(peak)
    # Stretch so the strongest strokes are full ink: faint photos read like a pen on the slate.
    scaled = np.clip(crop / np.float32(peak), 0.0, 1.0).astype(np.float32, copy=False)
    return _InkRegion(scaled, origin, shape)


def _peak_of_sorted(values: np.ndarray, counts: np.ndarray) -> float:
    """`_normalise_ink`'s peak from a histogram: `values` the distinct ink values in increasing
    order, `counts` how many pixels hold each."""
    total = int(counts.sum())
    if total <= PEAK_MIN_PIXELS:
        return float(values[-1])
    return float(values[np.searchsorted(np.cumsum(counts), _peak_rank(total), side="right")])


def _peak_rank(total: int) -> int:
    """0-based rank, in increasing order, of the 99th percentile of `total` values (the next
    higher value where it falls between two)."""
    return math.ceil(PEAK_PERCENTILE / 100 * (total - 1))


def _check_peak(peak: float) -> None:
    if peak < 0.15:
        raise EmptyDrawingError("nothing is drawn")


def _digit_box(region: _InkRegion) -> tuple[int, int, int, int]:
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
