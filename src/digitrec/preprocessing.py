"""Any picture of a digit -> a 28x28 MNIST-style image: the one place this happens.

MNIST was built by cropping each digit to its ink, fitting it into 20x20 with anti-aliasing
(aspect ratio kept) and placing its centre of mass at the centre of a 28x28 field. Every
drawing and upload (canvas, API upload, training augmentation, benchmarks) goes through
`to_mnist`, so the model sees drawings the way it saw MNIST; MNIST's own images are already in
that form and reach the model as they are.

The image codec lives here too: `as_canvas` decodes an upload once (PNG, JPEG or WebP, size
checked before decoding, reduced right after) into the picture that every path preprocesses,
and `encode_png` re-encodes that picture for storing or sending, so a drawing is read the same
in-process and over HTTP and an upload is never kept byte for byte.
"""

from __future__ import annotations

import io
import threading
from typing import NamedTuple, TypeAlias

import numpy as np
from PIL import ExifTags, Image, ImageOps

from digitrec.contract import (
    EmptyDrawingError,
    ImageTooLargeError,
    InvalidImageError,
    PreprocessingError,
)

ImageSource: TypeAlias = bytes | bytearray | memoryview | Image.Image | np.ndarray

MNIST_SIZE_PX = 28
DIGIT_BOX_PX = 20  # MNIST fits the ink into 20x20, then centres it in 28x28
# A phone photo (12 MP, 4000x3000) is the largest picture of a digit anyone needs to send;
# larger ones are refused from their header, before a pixel is decoded.
MAX_INPUT_PIXELS = 12_000_000
# Decoded pictures with more pixels are halved (JPEG: decoded at 1/2, 1/4, 1/8 scale) until
# they fit: a full-HD screenshot stays whole, a 12 MP photo becomes 1000x750, where a digit a
# tenth of its width still spans more than the 80 px work box. Bounds the work arrays to ~2 MP.
MAX_WORK_PIXELS = 1920 * 1080
REDUCE_STRIP_ROWS = 64  # rows of the reduced image made at a time
# libwebp's decoder (Pillow reads every WebP through the animation decoder) holds four copies
# of the picture, 16 bytes a pixel, and cannot decode reduced: WebPs, made by browsers and
# screenshots rather than cameras, are refused above full HD.
MAX_WEBP_PIXELS = MAX_WORK_PIXELS
# Formats the API documents; anything else is refused before a decoder looks at its pixels.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
UNREADABLE = "not a readable PNG, JPEG or WebP image"
FAINT_INK = 0.05  # below this share of full ink a pixel is background
INK_THRESHOLD = 0.25  # ink fraction above which a pixel counts as drawn
MIN_INK_FRACTION = 0.001  # fewer drawn pixels than this share of the image: a blank slate
MIN_EXTENT_FRACTION = 0.03  # a drawing smaller than this share of the image side: a speck
SPECK_MASS_FRACTION = 0.02  # a separate blot with less of the ink than this is a speck
# Stroke width of a typical MNIST digit, in pixels of the 28 px field (median over the
# training set, estimated as 2 * area / perimeter).
MNIST_STROKE_PX = 1.9
WORK_BOX_PX = 80  # thickness is normalised at 4x the box size, then reduced with anti-aliasing
WORK_MARGIN_PX = 5  # room around the work image for the largest pen change (9x9 filter)


# One upload is decoded at a time per process: a 12 MP PNG holds 48 MB until it is reduced, a
# full-HD WebP 32 MB; concurrent requests add only their reduced pictures. Decoding is CPU
# work, so with a worker per core this costs no throughput.
_DECODING = threading.Lock()
_LEVELS = np.arange(256, dtype=np.float32) / 255  # the float value of each 8-bit level
# zlib level 1: a canvas is mostly flat, so this is nearly as small as level 9 and 5x faster.
PNG_COMPRESS_LEVEL = 1

__all__ = [
    "EmptyDrawingError",
    "ImageSource",
    "ImageTooLargeError",
    "InvalidImageError",
    "PreprocessingError",
    "as_canvas",
    "encode_png",
    "ink_map",
    "stroke_width",
    "to_mnist",
    "to_uint8",
]


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixels as uint8: floats in [0, 1] are scaled to 0..255 and rounded, others clipped."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if values.max(initial=0.0) <= 1.0:
        values = values * np.float32(255.0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def as_canvas(source: ImageSource) -> Image.Image | np.ndarray:
    """The picture every path preprocesses and `encode_png` stores: bytes decoded once.

    Images come out as 8-bit grey, or RGBA when they have transparency, upright (EXIF
    orientation), and reduced to at most MAX_WORK_PIXELS; arrays as uint8, reduced alike.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return _decode(source)
    if isinstance(source, Image.Image):
        return _normalised(source)
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_size(source.shape[1], source.shape[0])  # before any copy is made
        return _reduced_array(to_uint8(source))
    raise InvalidImageError(f"expected an image, got {type(source).__name__}")


def encode_png(source: ImageSource) -> bytes:
    """PNG bytes of `as_canvas(source)`, losslessly: the pixels only, never the upload's bytes."""
    canvas = as_canvas(source)
    image = canvas if isinstance(canvas, Image.Image) else Image.fromarray(canvas)
    buffer = io.BytesIO()
    # No colour profile: whatever metadata an upload carried is not stored.
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, icc_profile=None)
    return buffer.getvalue()


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


def _decode(data: bytes | bytearray | memoryview) -> Image.Image:
    """Decode an upload once, at most MAX_WORK_PIXELS large; every failure is InvalidImageError.

    Pillow's decoders raise many exception types on hostile input (OSError, SyntaxError,
    ValueError, struct.error, EOFError...), so any exception here means "not a readable image".
    """
    if not len(data):
        raise InvalidImageError("the image is empty (0 bytes)")
    with _DECODING:
        image = _open(data)
        try:
            canvas = _load_reduced(image)
        except PreprocessingError:
            image.close()  # frees what was decoded before the next decode starts
            raise
        except Exception as exc:
            image.close()
            raise InvalidImageError(UNREADABLE) from exc
        if canvas is not image:
            image.close()  # frees the full-size pixels before the next decode starts
        return canvas


def _open(data: bytes | bytearray | memoryview) -> Image.Image:
    """The upload's header (a PNG's text chunks too), if it is one of the accepted formats."""
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:  # over Pillow's own limit
        raise ImageTooLargeError(f"the image is too large; {_size_limit(None)}") from exc
    except Exception as exc:
        raise InvalidImageError(UNREADABLE) from exc


def _load_reduced(image: Image.Image) -> Image.Image:
    """The pixels of an opened image, size-checked first, as `_normalised` gives them."""
    _check_size(image.width, image.height, image.format)  # before the pixels are decoded
    if image.format in ("JPEG", "MPO"):
        # libjpeg decodes straight to grey at 1/2, 1/4 or 1/8 scale: no full-size copy.
        factor = _reduction(image.width, image.height)
        image.draft("L", (max(1, image.width // factor), max(1, image.height // factor)))
    image.load()
    return _normalised(image)


def _normalised(image: Image.Image) -> Image.Image:
    """8-bit grey (RGBA if it has transparency), upright, at most MAX_WORK_PIXELS large."""
    _check_size(image.width, image.height)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "L"
    try:
        factor = _reduction(image.width, image.height)
        if factor > 1:
            image = _converted_and_reduced(image, mode, factor)
        elif image.mode != mode:
            image = image.convert(mode)
        if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            image = ImageOps.exif_transpose(image)  # a phone held upright
    except Exception as exc:  # a mode Pillow cannot convert (LAB, HSV...), or broken EXIF
        raise InvalidImageError(f"cannot read an image of mode {image.mode}") from exc
    return image


def _converted_and_reduced(image: Image.Image, mode: str, factor: int) -> Image.Image:
    """`image.convert(mode).reduce(factor)`, a strip at a time: no full-size copy is made
    (Pillow's own RGBA reduce makes two, to premultiply by alpha and back)."""
    width, height = image.size
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    reduced.info = dict(image.info)  # the EXIF orientation, among others
    step = factor * REDUCE_STRIP_ROWS  # a multiple of `factor`: blocks never straddle strips
    for top in range(0, height, step):
        strip = image.crop((0, top, width, min(top + step, height)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        reduced.paste(strip.reduce(factor), (0, top // factor))
    return reduced


def _reduced_array(array: np.ndarray) -> np.ndarray:
    """`array` (uint8), reduced like a decoded image when it is a picture over MAX_WORK_PIXELS."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        return array  # not a picture: `to_mnist` says why
    factor = _reduction(array.shape[1], array.shape[0])
    if factor == 1:
        return array
    image = Image.fromarray(array)
    return np.asarray(_converted_and_reduced(image, image.mode, factor))


def _reduction(width: int, height: int) -> int:
    """The smallest power of two that divides the sides to at most MAX_WORK_PIXELS in all."""
    factor = 1
    while -(-width // factor) * -(-height // factor) > MAX_WORK_PIXELS:
        factor *= 2
    return factor


def _check_size(width: int, height: int, image_format: str | None = None) -> None:
    limit = MAX_WEBP_PIXELS if image_format == "WEBP" else MAX_INPUT_PIXELS
    if width * height > limit:
        raise ImageTooLargeError(
            f"the image is too large ({width}x{height}); {_size_limit(image_format)}"
        )
    if width < 1 or height < 1:
        raise InvalidImageError("the image has no pixels")


def _size_limit(image_format: str | None) -> str:
    if image_format == "WEBP":
        return f"WebP images of at most {MAX_WEBP_PIXELS / 1e6:.1f} megapixels are accepted"
    return f"at most {MAX_INPUT_PIXELS / 1e6:.0f} megapixels are accepted"


def _array_to_ink(array: np.ndarray) -> _InkRegion:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidImageError(f"expected (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    _check_size(array.shape[1], array.shape[0])
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidImageError(f"expected numeric pixels, got {array.dtype}")
    if array.ndim == 3:
        # Colour is read at 8 bits, as a PNG of it would be (PIL's integer luma): the same
        # ink in-process and over HTTP, whatever the array's type.
        return _canvas_to_ink(np.ascontiguousarray(to_uint8(array)))
    if array.dtype == np.uint8:  # 8-bit grey: the same ink as the float path, in less memory
        return _grey_image_to_ink(Image.fromarray(array))
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
    """An 8-bit RGB(A) picture, such as the slate: `_grey_to_ink`'s result, in less time.

    On a black slate only the part holding anything is converted to grey; the full-size
    checks run on each pixel's four bytes read as one 32-bit word.
    """
    shape = (array.shape[0], array.shape[1])
    if array.shape[2] == 4:
        words = array.view("<u4")[:, :, 0]  # R | G << 8 | B << 16 | A << 24
        if (words < 253 << 24).any():  # partly see-through: ink is where it is opaque
            return _clear_canvas_to_ink(array)
        colour = words & 0xFFFFFF
        if not _border(colour).any():  # a black slate
            rows = np.flatnonzero(colour.any(axis=1))
            cols = np.flatnonzero(colour.any(axis=0))
            if rows.size == 0:
                raise EmptyDrawingError("nothing is drawn")
            top, left = int(rows[0]), int(cols[0])
            part = array[top : rows[-1] + 1, left : cols[-1] + 1]
            part_grey = Image.fromarray(part).convert("L")
            return _grey_image_to_ink(part_grey, background=0.0, origin=(top, left), shape=shape)
    return _grey_image_to_ink(Image.fromarray(array).convert("L"))


def _clear_canvas_to_ink(array: np.ndarray) -> _InkRegion:
    """`_transparent_to_ink` for an 8-bit RGBA picture; a drawing on a clear layer is cropped
    to its ink in uint8 before any float work."""
    alpha = array[:, :, 3]
    drawn = alpha >= _first_level_above(0.5)
    if drawn.mean() > 0.5 or not drawn.any():  # a filled backdrop (or nothing): the float path
        grey = np.asarray(Image.fromarray(array).convert("L"), dtype=np.float32) / 255
        return _transparent_to_ink(grey, alpha.astype(np.float32) / 255)
    inked = alpha >= _first_level_above(FAINT_INK)
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    crop = _LEVELS[alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]]
    return _normalise_ink(crop, (int(rows[0]), int(cols[0])), (alpha.shape[0], alpha.shape[1]), 1.0)


def _first_level_above(threshold: float) -> int:
    """The lowest 8-bit level whose float value is above `threshold`."""
    return int(np.searchsorted(_LEVELS, threshold, side="right"))


def _grey_image_to_ink(
    grey: Image.Image,
    background: float | None = None,
    origin: tuple[int, int] = (0, 0),
    shape: tuple[int, int] | None = None,
) -> _InkRegion:
    """`_grey_to_ink` for an 8-bit image (or a part of one at `origin` in an image of `shape`)."""
    pixels = np.asarray(grey)
    if background is None:
        border = _border(pixels)
        background = float(np.median(border.astype(np.float32) / 255))
    ink_of_level = background - _LEVELS if background > 0.5 else _LEVELS - background
    inked_levels = np.flatnonzero(ink_of_level > FAINT_INK)  # one run, at one end of 0..255
    if inked_levels.size == 0:
        raise EmptyDrawingError("nothing is drawn")
    # Light paper: ink is darker than a level; dark slate: ink is lighter than a level.
    inked = pixels <= inked_levels[-1] if background > 0.5 else pixels >= inked_levels[0]
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        raise EmptyDrawingError("nothing is drawn")
    crop = ink_of_level[pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]]
    at = (origin[0] + int(rows[0]), origin[1] + int(cols[0]))
    return _normalise_ink(crop, at, shape or (pixels.shape[0], pixels.shape[1]), peak=None)


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
        # The strongest ink, ignoring a few hot pixels (photos): 99th percentile of inked pixels.
        strong = crop[crop > FAINT_INK]
        peak = float(np.percentile(strong, 99)) if strong.size > 1000 else float(strong.max())
    if peak < 0.15:
        raise EmptyDrawingError("nothing is drawn")
    # Stretch so the strongest strokes are full ink: faint photos read like a pen on the slate.
    scaled = np.clip(crop / np.float32(peak), 0.0, 1.0).astype(np.float32, copy=False)
    return _InkRegion(scaled, origin, shape)


def _digit_box(region: _InkRegion) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the digit in `region.ink`, ignoring tiny specks."""
    height, width = region.shape
    ink = region.ink
    drawn = ink > INK_THRESHOLD
    if drawn.sum() < MIN_INK_FRACTION * height * width:
        raise EmptyDrawingError("nothing is drawn")
    mass = np.where(drawn, ink, 0.0)
    top, bottom = _mass_span(mass.sum(axis=1))
    left, right = _mass_span(mass.sum(axis=0))
    if max(bottom - top, right - left) < MIN_EXTENT_FRACTION * max(height, width):
        raise EmptyDrawingError("the drawing is too small to read")
    return top, bottom, left, right


def _mass_span(profile: np.ndarray) -> tuple[int, int]:
    """The index range from the first to the last run of ink that is more than a speck.

    A run is a stretch of inked rows (or columns) with gaps of at most 2 px; a run holding less
    than SPECK_MASS_FRACTION of the ink is a speck, unless every run is.
    """
    nonzero = np.flatnonzero(profile)
    breaks = np.flatnonzero(np.diff(nonzero) > 2)  # runs end at nonzero[b] for b in breaks
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
    small = Image.fromarray(crop).resize(work_size, Image.Resampling.BOX)
    # A margin lets strokes grow past, and shrink from, the edges of the tight crop.
    pixels = _normalise_stroke(np.pad(np.asarray(small), WORK_MARGIN_PX))
    rows = np.flatnonzero((pixels > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((pixels > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:  # cannot happen: erosion is undone when it removes most ink
        raise EmptyDrawingError("nothing is drawn")
    pixels = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    factor = DIGIT_BOX_PX / max(pixels.shape)
    size = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
    digit = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(digit, dtype=np.float32), 0.0, 1.0)


def _normalise_stroke(work: np.ndarray) -> np.ndarray:
    """Thicken hair-lines and thin marker strokes towards MNIST's stroke width."""
    target = MNIST_STROKE_PX * WORK_BOX_PX / DIGIT_BOX_PX
    width = stroke_width(work)
    if width < 0.7 * target:
        size = 2 * round((target - width) / 2) + 1  # grow by about the missing width
        work = _square_filter(work, max(3, min(size, 9)), np.maximum)
    elif width > 1.5 * target:
        size = 2 * round((width - target) / 2) + 1
        eroded = _square_filter(work, max(3, min(size, 9)), np.minimum)
        # Never erode a stroke away: keep the erosion only if most of the ink survives.
        if eroded.sum() > 0.3 * work.sum():
            work = eroded
    return work


def _square_filter(image: np.ndarray, size: int, combine: np.ufunc) -> np.ndarray:
    """Max (dilate) or min (erode) over size x size squares, as two 1-D passes, zeros outside."""
    radius = size // 2
    height, width = image.shape
    padded = np.pad(image, radius)
    rows = padded[:, :width].copy()
    for shift in range(1, size):
        combine(rows, padded[:, shift : shift + width], out=rows)
    out = rows[:height].copy()
    for shift in range(1, size):
        combine(out, rows[shift : shift + height], out=out)
    return out


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels, estimated as 2 * inked area / inked outline length."""
    drawn = ink > 0.5
    area = float(drawn.sum())
    if area == 0:
        return 0.0
    edges = (drawn[1:, :] != drawn[:-1, :]).sum() + (drawn[:, 1:] != drawn[:, :-1]).sum()
    edges += drawn[0, :].sum() + drawn[-1, :].sum() + drawn[:, 0].sum() + drawn[:, -1].sum()
    return 2.0 * area / max(float(edges), 1.0)


def _place_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste the digit into 28x28 so that its centre of mass lands on the centre."""
    height, width = digit.shape
    total = float(digit.sum())
    rows, cols = np.indices(digit.shape)
    mass_row = float((rows * digit).sum() / total) if total else (height - 1) / 2
    mass_col = float((cols * digit).sum() / total) if total else (width - 1) / 2
    centre = MNIST_SIZE_PX / 2
    top = min(max(round(centre - mass_row), 0), MNIST_SIZE_PX - height)
    left = min(max(round(centre - mass_col), 0), MNIST_SIZE_PX - width)
    out = np.zeros((MNIST_SIZE_PX, MNIST_SIZE_PX), dtype=np.float32)
    out[top : top + height, left : left + width] = digit
    return out
