"""Image bytes in and out: an upload decoded once, bounded in size; PNGs written for storing.

`as_canvas` decodes an upload once (PNG, JPEG or WebP, size checked before decoding, reduced
right after) into the picture that every path preprocesses, and `encode_png` re-encodes that
picture for storing or sending, so a drawing is read the same in-process and over HTTP. An
upload is kept byte for byte only when it is a PNG of its pixels and nothing else
(`png_to_store`).
"""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import zlib
from typing import TypeAlias

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps

from digitrec.contract import ImageTooLargeError, InvalidImageError, PreprocessingError

ImageSource: TypeAlias = bytes | bytearray | memoryview | Image.Image | np.ndarray

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
# zlib level 1: a canvas is mostly flat, so this is nearly as small as level 9 and 5x faster.
PNG_COMPRESS_LEVEL = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A picture this small (the slate sends 280x280) decodes into at most a few MB: it does not wait
# for the decoding lock below, and a slate-sized PNG, which decodes in well under a millisecond,
# may be read on a server's event loop rather than handed to a thread (`is_small_png`).
SMALL_PICTURE_PIXELS = 1024 * 1024
# Chunks that hold only pixels: a PNG of these alone carries no metadata worth dropping.
PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})

# OpenCV splits an operation over a pool of a thread per core by default. On a drawing's
# pictures the hand-offs cost as much as the work: `to_mnist` on 280x280 canvases took 0.20 ms
# either way, but 0.40 ms of CPU with 2 threads against 0.20 ms with one, CPU that a server's
# other workers need. Set for the whole process here, where every module using OpenCV gets it.
OPENCV_THREADS = 1

cv2.setNumThreads(OPENCV_THREADS)

# One upload is decoded at a time per process: a 12 MP PNG holds 48 MB until it is reduced, a
# full-HD WebP 32 MB; concurrent requests add only their reduced pictures. Decoding is CPU
# work, so with a worker per core this costs no throughput. A small picture (at most
# SMALL_PICTURE_PIXELS) does not queue behind a large one: the API reads slate PNGs on its
# event loop.
_DECODING = threading.Lock()


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
            check_size(source.shape[1], source.shape[0])  # before any copy is made
        return _reduced_array(to_uint8(source))
    raise InvalidImageError(f"expected an image, got {type(source).__name__}")


def encode_png(source: ImageSource) -> bytes:
    """PNG bytes of `as_canvas(source)`, losslessly: the pixels only, no metadata."""
    canvas = as_canvas(source)
    if isinstance(canvas, np.ndarray) and canvas.ndim == 2:
        # 8-bit grey (the 28x28 model input): OpenCV writes it in a tenth of Pillow's time.
        # Pillow stays for colour, where OpenCV's filter search takes longer than Pillow's.
        level = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESS_LEVEL]
        written, data = cv2.imencode(".png", canvas, level)
        if written:
            return data.tobytes()
    image = canvas if isinstance(canvas, Image.Image) else Image.fromarray(canvas)
    buffer = io.BytesIO()
    # No colour profile: whatever metadata an upload carried is not stored.
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, icc_profile=None)
    return buffer.getvalue()


def png_to_store(upload: ImageSource, canvas: Image.Image | np.ndarray) -> bytes:
    """The PNG to keep of `upload`, decoded into `canvas` by `as_canvas`: the bytes as sent
    when they are a PNG of exactly these pixels and nothing else, else `encode_png(canvas)`.

    The slate sends such PNGs (8-bit RGBA, no metadata): storing them as they are saves an
    encode that costs more than the rest of a prediction.
    """
    if isinstance(upload, bytes | bytearray | memoryview) and isinstance(canvas, Image.Image):
        header = _bare_png_header(bytes(upload))
        if header is not None and header == (canvas.width, canvas.height, canvas.mode):
            return bytes(upload)
    return encode_png(canvas)


def is_small_png(upload: ImageSource) -> bool:
    """Whether `upload` is PNG bytes whose header declares at most SMALL_PICTURE_PIXELS pixels."""
    if not isinstance(upload, bytes | bytearray | memoryview):
        return False
    head = bytes(upload[:24])  # the signature, then IHDR's length, type, width and height
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return False
    width, height = struct.unpack_from(">II", head, 16)
    return width * height <= SMALL_PICTURE_PIXELS


def _bare_png_header(data: bytes) -> tuple[int, int, str] | None:
    """(width, height, mode) of a PNG that holds 8-bit grey or RGBA pixels and nothing else:
    only pixel chunks, every checksum right, nothing after its end; None for anything else."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    position, kinds, header = len(PNG_SIGNATURE), [], None
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if kind not in PIXEL_CHUNKS or end > len(data):
            return None
        crc = struct.unpack_from(">I", data, end - 4)[0]
        if zlib.crc32(data[position + 4 : end - 4]) != crc:
            return None
        if kind == b"IHDR" and length == 13:
            header = struct.unpack_from(">IIBB", data, position + 8)
        kinds.append(kind)
        position = end
        if kind == b"IEND":
            break
    if position != len(data) or kinds[:1] != [b"IHDR"] or kinds[-1:] != [b"IEND"] or not header:
        return None
    width, height, depth, colour = header
    modes = {(8, 0): "L", (8, 6): "RGBA"}  # PNG colour types 0 (grey) and 6 (RGBA)
    mode = modes.get((depth, colour))
    return None if mode is None or b"tRNS" in kinds else (width, height, mode)


def _decode(data: bytes | bytearray | memoryview) -> Image.Image:
    """Decode an upload once, at most MAX_WORK_PIXELS large; every failure is InvalidImageError.

    Pillow's decoders raise many exception types on hostile input (OSError, SyntaxError,
    ValueError, struct.error, EOFError...), so any exception here means "not a readable image".
    """
    if not len(data):
        raise InvalidImageError("the image is empty (0 bytes)")
    image = _open(data)  # the header: its size says whether the decode takes the lock
    small = image.width * image.height <= SMALL_PICTURE_PIXELS
    with contextlib.nullcontext() if small else _DECODING:
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
    check_size(image.width, image.height, image.format)  # before the pixels are decoded
    if image.format in ("JPEG", "MPO"):
        # libjpeg decodes straight to grey at 1/2, 1/4 or 1/8 scale: no full-size copy.
        factor = _reduction(image.width, image.height)
        image.draft("L", (max(1, image.width // factor), max(1, image.height // factor)))
    image.load()
    return _normalised(image)


def _normalised(image: Image.Image) -> Image.Image:
    """8-bit grey (RGBA if it has transparency), upright, at most MAX_WORK_PIXELS large."""
    check_size(image.width, image.height)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "L"
    try:
        factor = _reduction(image.width, image.height)
        if factor > 1:
            image = _converted_and_reduced(image, mode, factor)
        elif image.mode != mode:
            image = _converted(image, mode)
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


def _converted(image: Image.Image, mode: str) -> Image.Image:
    """`image.convert(mode)`; RGB to grey by OpenCV's integer luma, as RGB arrays are read."""
    if image.mode != "RGB" or mode != "L":
        return image.convert(mode)
    grey = Image.fromarray(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY))
    grey.info = dict(image.info)  # the EXIF orientation, among others
    return grey


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


def check_size(width: int, height: int, image_format: str | None = None) -> None:
    """Refuse a picture with no pixels, or with more than the service accepts."""
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
