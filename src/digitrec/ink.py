"""Any picture -> its ink: how much ink each pixel holds, in [0, 1], whatever the picture's form.

A slate (light strokes on black, or strokes on a clear layer), a photo or scan (dark ink on
light paper), an array of any numeric type: the background (the border's typical level) becomes
0 and the strongest strokes 1, so a faint photo reads like a pen on the slate. The work is done
on 8-bit pixels with OpenCV where it can be (crop to the ink, one look-up table).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from digitrec.codec import ImageSource, as_canvas, check_size, to_uint8
from digitrec.contract import EmptyDrawingError, InvalidImageError

FAINT_INK = 0.05  # below this share of full ink a pixel is background
# The strongest ink is the 99th percentile of the inked pixels when there are more than this
# many (a few hot pixels of a photo do not set it), else the largest.
PEAK_PERCENTILE = 99
PEAK_MIN_PIXELS = 1000

_LEVELS = np.arange(256, dtype=np.float32) / 255  # the float value of each 8-bit level
BINARY = cv2.THRESH_BINARY  # 255 where a pixel is above the threshold, 0 elsewhere


class InkRegion(NamedTuple):
    """The part of an image that holds any ink, and where it sits in the whole image."""

    ink: np.ndarray  # (h, w) float32 in [0, 1], 1 = full ink
    origin: tuple[int, int]  # (row, column) of ink[0, 0] in the image
    shape: tuple[int, int]  # (H, W) of the whole image


def ink_map(source: ImageSource) -> np.ndarray:
    """How much ink each pixel holds, (H, W) float32 in [0, 1], whatever the input's form."""
    region = ink_region(source)
    out = np.zeros(region.shape, dtype=np.float32)
    row, col = region.origin
    out[row : row + region.ink.shape[0], col : col + region.ink.shape[1]] = region.ink
    return out


def ink_region(source: ImageSource) -> InkRegion:
    """The ink of any image (see `ink_map`), cropped to where there is any."""
    if not isinstance(source, np.ndarray):
        source = as_canvas(source)
    if isinstance(source, Image.Image):
        source = np.asarray(source)  # (H, W) or (H, W, 4) uint8
    return _array_to_ink(source)


def _array_to_ink(array: np.ndarray) -> InkRegion:
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


def _transparent_to_ink(grey: np.ndarray, alpha: np.ndarray) -> InkRegion:
    """A drawing on a transparent layer: ink is where it is opaque, whatever its colour."""
    drawn = alpha > 0.5
    if not drawn.any():
        raise EmptyDrawingError("nothing is drawn")
    # Opaque pixels that match the background's own colour (a filled backdrop) are not ink.
    if drawn.mean() > 0.5:
        return _grey_to_ink(grey * alpha + (1.0 - alpha) * float(np.median(grey[drawn])))
    return _crop_to_ink(alpha.astype(np.float32), peak=1.0)


def _grey_to_ink(grey: np.ndarray) -> InkRegion:
    """Map grey levels to ink: the background (the border's typical level) becomes 0."""
    border = _border(grey)
    background = float(np.median(border))
    # Dark ink on light paper (photos, scans) is flipped so the digit is white on black.
    ink = background - grey if background > 0.5 else grey - background
    return _crop_to_ink(ink, peak=None)


def _canvas_to_ink(array: np.ndarray) -> InkRegion:
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


def _clear_canvas_to_ink(array: np.ndarray, alpha: np.ndarray) -> InkRegion:
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
    return InkRegion(crop, (top, left), (alpha.shape[0], alpha.shape[1]))  # peak: full alpha


def _first_level_above(threshold: float) -> int:
    """The lowest 8-bit level whose float value is above `threshold`."""
    return int(np.searchsorted(_LEVELS, threshold, side="right"))


def _levels_to_ink(pixels: np.ndarray, background: float | None = None) -> InkRegion:
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
    return InkRegion(cv2.LUT(levels, table), (top, left), (pixels.shape[0], pixels.shape[1]))


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


def _crop_to_ink(ink: np.ndarray, peak: float | None) -> InkRegion:
    """Cut `ink` down to the rows and columns holding any, scaled so `peak` is full ink."""
    inked = ink > FAINT_INK
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError("nothing is drawn")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return _normalise_ink(crop, (int(rows[0]), int(cols[0])), (ink.shape[0], ink.shape[1]), peak)


def _normalise_ink(
    crop: np.ndarray, origin: tuple[int, int], shape: tuple[int, int], peak: float | None
) -> InkRegion:
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
    return InkRegion(scaled, origin, shape)


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
