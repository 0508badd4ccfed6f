"""to_mnist: any picture of a digit -> the 28x28 form MNIST digits have."""

from __future__ import annotations

import functools
import io
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from drawing import DIGITS, MARKS, SLATE_PX, Stroke, draw_strokes, in_box, rgba_canvas
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from digitrec.codec import OPENCV_THREADS
from digitrec.preprocessing import (
    MAX_WORK_PIXELS,
    DrawingTooSmallError,
    EmptyDrawingError,
    ImageTooLargeError,
    InvalidImageError,
    PreprocessingError,
    as_canvas,
    encode_png,
    ink_map,
    stroke_width,
    to_mnist,
)

PEN_PX = 16  # a finer pen than the page's 18 px
# Strokes in units of the digit's box: x across (0..1 of its width), y down (0..1 of its height).
ONE: Stroke = ((0.5, 0.0), (0.5, 1.0))
SEVEN: Stroke = ((0.1, 0.05), (0.9, 0.05), (0.4, 0.95))
TWO: Stroke = (
    (0.1, 0.25), (0.3, 0.05), (0.7, 0.05), (0.9, 0.25), (0.85, 0.45), (0.1, 0.95), (0.95, 0.95),
)  # fmt: skip
# Stroke width (2 * area / outline) of MNIST test digits: 5th and 95th percentile, in px.
MNIST_STROKE_RANGE_PX = (1.3, 3.1)


def draw(
    stroke: Stroke = SEVEN,
    left: float = 60,
    top: float = 40,
    height: float = 200,
    pen: int = PEN_PX,
    canvas: tuple[int, int] = (SLATE_PX, SLATE_PX),  # (H, W)
    aspect: float = 0.8,  # box width / box height
) -> np.ndarray:
    """A white-on-black (H, W) uint8 drawing of `stroke` in a box at (left, top), square ends."""
    points = in_box(stroke, left, top, height, aspect)
    return draw_strokes([points], pen_px=pen, shape=canvas, round_ends=False)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 images, blurred by 3x3 and best aligned within 1 px.

    Placing the centre of mass on whole pixels leaves up to half a pixel of play, and a 1 px
    shift of a 1.5 px stroke would otherwise look like a different digit.
    """

    def blurred(x: np.ndarray) -> np.ndarray:
        padded = np.pad(x, 1)
        return sum(padded[i : i + 28, j : j + 28] for i in range(3) for j in range(3))

    fixed, moving = blurred(a).ravel(), np.pad(blurred(b), 1)
    return max(
        float(np.corrcoef(fixed, moving[i : i + 28, j : j + 28].ravel())[0, 1])
        for i in range(3)
        for j in range(3)
    )


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass, in index coordinates."""
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def png_bytes(image: Image.Image | np.ndarray, fmt: str = "PNG") -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The 28x28 result for a plainly drawn seven in the middle of the slate."""
    return to_mnist(draw())


# --- the MNIST form -----------------------------------------------------------------------


def test_to_mnist_returns_a_28x28_float32_image_in_unit_range(reference: np.ndarray) -> None:
    assert reference.shape == (28, 28)
    assert reference.dtype == np.float32
    assert reference.min() >= 0.0 and reference.max() <= 1.0
    assert reference.max() > 0.9  # the stroke is full ink, not a faint smear
    assert (reference < 0.05).mean() > 0.6  # and most of the field is background


@pytest.mark.parametrize(
    ("stroke", "aspect"), [(SEVEN, 0.8), (ONE, 0.8), (TWO, 1.8)], ids=["tall", "one", "wide"]
)
def test_to_mnist_fits_the_longer_side_of_the_ink_into_20_px(stroke: Stroke, aspect: float) -> None:
    image = to_mnist(draw(stroke, left=20, top=60, height=120, aspect=aspect))
    rows = np.flatnonzero(image.max(axis=1) > 0.1)
    cols = np.flatnonzero(image.max(axis=0) > 0.1)
    longer = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    assert 19 <= longer <= 21


@pytest.mark.parametrize(
    ("stroke", "left", "top"), [(SEVEN, 60, 40), (SEVEN, 0, 0), (TWO, 130, 90), (ONE, 10, 60)]
)
def test_to_mnist_puts_the_centre_of_mass_at_the_field_centre(
    stroke: Stroke, left: float, top: float
) -> None:
    # MNIST's own digits have their centre of mass at (14.0, 14.0) in index coordinates.
    row, col = centre_of_mass(to_mnist(draw(stroke, left=left, top=top, height=150)))
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


@settings(max_examples=12, deadline=None)
@given(left=st.integers(0, 150), top=st.integers(0, 130))
def test_to_mnist_ignores_where_the_digit_is_drawn(left: int, top: int) -> None:
    shifted = to_mnist(draw(left=left, top=top, height=150))
    centred = to_mnist(draw(left=65, top=65, height=150))
    assert similarity(shifted, centred) > 0.99


@settings(max_examples=12, deadline=None)
@given(height=st.integers(60, 270), pen_per_px=st.floats(0.06, 0.1))
def test_to_mnist_ignores_how_large_the_digit_is_drawn(height: int, pen_per_px: float) -> None:
    pen = max(2, round(pen_per_px * height))
    scaled = to_mnist(draw(left=5, top=5, height=height, pen=pen))
    assert similarity(scaled, to_mnist(draw(height=200, pen=16))) > 0.95


def test_to_mnist_reads_dark_ink_on_light_paper_like_light_on_dark(
    reference: np.ndarray,
) -> None:
    np.testing.assert_allclose(to_mnist(255 - draw()), reference, atol=1e-6)


@pytest.mark.parametrize("colour", [0, 255], ids=["black-ink", "white-ink"])
def test_to_mnist_reads_ink_held_only_in_the_alpha_channel(
    colour: int, reference: np.ndarray
) -> None:
    canvas = rgba_canvas(draw(), clear=True, colour=colour)  # only alpha tells the ink
    np.testing.assert_allclose(to_mnist(canvas), reference, atol=1e-5)


# --- the fast canvas path -------------------------------------------------------------------


@functools.cache
def _spread_of_drawings(antialiased: bool) -> tuple[np.ndarray, ...]:
    """Twelve ink maps: the page's digits, and strokes at many sizes, places and pen widths."""
    supersample = 4 if antialiased else 1
    inks = [draw_strokes(DIGITS[digit], supersample=supersample) for digit in sorted(DIGITS)]
    rng = np.random.default_rng(7)
    for i in range(9):
        height = float(rng.uniform(80, 260))
        aspect = float(rng.uniform(0.4, 1.0))
        left = float(rng.uniform(-10, SLATE_PX - aspect * height))  # some touch an edge
        top = float(rng.uniform(-10, SLATE_PX - height))
        points = in_box((ONE, SEVEN, TWO)[i % 3], left, top, height, aspect)
        pen = int(rng.integers(2, 41))
        inks.append(draw_strokes([points], pen, round_ends=i % 2 == 0, supersample=supersample))
    return tuple(inks)


def _half_clear(ink: np.ndarray) -> np.ndarray:
    canvas = rgba_canvas(ink, clear=True)
    canvas[..., 3] = ink.astype(np.uint16) * 150 // 255  # at most 59% opaque
    return canvas


def _see_through_paper(ink: np.ndarray) -> np.ndarray:
    canvas = rgba_canvas(255 - ink)
    canvas[..., 3] = 200  # a filled backdrop, 78% opaque everywhere
    return canvas


def _red_ink(ink: np.ndarray) -> np.ndarray:
    canvas = rgba_canvas(ink)
    canvas[..., 1:3] = 0
    return canvas


# How an (H, W) ink map is laid out as an 8-bit picture.
CANVAS_FORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "black-slate": rgba_canvas,  # the page's slate: white ink, opaque black
    "clear-layer": functools.partial(rgba_canvas, clear=True),
    "white-on-clear": functools.partial(rgba_canvas, clear=True, colour=255),
    "half-clear": _half_clear,
    "white-paper": lambda ink: rgba_canvas(255 - ink),
    "see-through-paper": _see_through_paper,
    "rgb": lambda ink: rgba_canvas(ink)[..., :3],
    "red-ink": _red_ink,
}


# Pictures with no see-through pixel: their ink comes from the 8-bit grey level alone.
OPAQUE_FORMS = frozenset({"black-slate", "white-paper", "rgb", "red-ink"})


def _general_path_input(form: str, canvas: np.ndarray) -> np.ndarray:
    """The same picture for the general (float) path: an opaque one as its grey levels
    (OpenCV's integer luma, as an RGB upload is read) in [0, 1]; a see-through one as float
    RGBA."""
    if form in OPAQUE_FORMS:
        to_grey = cv2.COLOR_RGBA2GRAY if canvas.shape[2] == 4 else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(canvas, to_grey).astype(np.float32) / 255
    return canvas.astype(np.float32) / 255


@pytest.mark.parametrize("antialiased", [False, True], ids=["hard-pen", "anti-aliased"])
@pytest.mark.parametrize("form", sorted(CANVAS_FORMS))
def test_to_mnist_reads_an_8_bit_canvas_exactly_as_the_general_path(
    form: str, antialiased: bool
) -> None:
    # An (H, W, 3|4) uint8 array takes the fast canvas path (crop first, 32-bit word tests,
    # level lookups); the same picture as float grey takes the general path. Both must give
    # the very same ink and image, bit for bit.
    for i, ink in enumerate(_spread_of_drawings(antialiased)):
        canvas = CANVAS_FORMS[form](ink)
        general_input = _general_path_input(form, canvas)
        fast_ink, general_ink = ink_map(canvas), ink_map(general_input)
        fast, general = to_mnist(canvas), to_mnist(general_input)
        assert np.array_equal(fast_ink, general_ink), (
            f"drawing {i}: {np.count_nonzero(fast_ink != general_ink)} ink pixels differ, "
            f"by up to {np.abs(fast_ink - general_ink).max():.3g}"
        )
        assert np.array_equal(fast, general), (
            f"drawing {i}: {np.count_nonzero(fast != general)} of 784 pixels differ, "
            f"by up to {np.abs(fast - general).max():.3g}"
        )


# --- nothing to read ------------------------------------------------------------------------


def _blank(value: int) -> np.ndarray:
    return np.full((SLATE_PX, SLATE_PX), value, dtype=np.uint8)


def _speck() -> np.ndarray:
    canvas = _blank(0).copy()
    canvas[140:144, 100:104] = 255  # a 4x4 px dot: a tap, not a digit
    return canvas


def _transparent() -> np.ndarray:
    return np.zeros((SLATE_PX, SLATE_PX, 4), dtype=np.uint8)


@pytest.mark.parametrize(
    "make",
    [lambda: _blank(0), lambda: _blank(255), lambda: _blank(128), _speck, _transparent],
    ids=["black", "white", "grey", "speck", "transparent"],
)
def test_to_mnist_refuses_a_canvas_without_a_drawing(make: Callable[[], np.ndarray]) -> None:
    with pytest.raises(EmptyDrawingError):
        to_mnist(make())


@pytest.mark.parametrize("form", ["black-slate", "clear-layer", "white-paper"])
@pytest.mark.parametrize("mark", sorted(MARKS))
def test_to_mnist_refuses_a_mark_too_small_to_be_a_digit(mark: str, form: str) -> None:
    canvas = CANVAS_FORMS[form](draw_strokes(MARKS[mark], supersample=4))
    with pytest.raises(DrawingTooSmallError, match="too small"):
        to_mnist(canvas)
    with pytest.raises(DrawingTooSmallError):
        to_mnist(png_bytes(canvas))


@pytest.mark.parametrize(
    ("stroke", "height", "pen"),
    [(ONE, 120, 4), (ONE, 60, 3), (SEVEN, 60, 6), (TWO, 55, 4)],
    ids=["thin-one", "short-one", "small-seven", "small-two"],
)
def test_to_mnist_keeps_small_and_thin_digits(stroke: Stroke, height: int, pen: int) -> None:
    # A thin 1 is tall; a digit a fifth of the slate high, drawn with a fine pen, is still one.
    image = to_mnist(draw(stroke, left=100, top=100, height=height, pen=pen, aspect=0.6))
    assert image.max() > 0.9


@pytest.mark.parametrize("value", [0, 255])
def test_to_mnist_refuses_a_single_pixel(value: int) -> None:
    with pytest.raises(PreprocessingError):
        to_mnist(np.full((1, 1), value, dtype=np.uint8))


# --- every form of input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.float32) / 255,
        lambda a: a.astype(np.float64),  # 0..255 floats
        lambda a: a[:, :, None],
        lambda a: np.repeat(a[:, :, None], 3, axis=2),
        lambda a: np.dstack([a, a, a, np.full_like(a, 255)]),  # opaque RGBA
        lambda a: a > 127,
    ],
    ids=["float-unit", "float-255", "HxWx1", "rgb", "rgba-opaque", "bool"],
)
def test_to_mnist_reads_every_array_form(
    convert: Callable[[np.ndarray], np.ndarray], reference: np.ndarray
) -> None:
    assert similarity(to_mnist(convert(draw())), reference) > 0.99


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "I", "F"])
def test_to_mnist_reads_every_pil_mode(mode: str, reference: np.ndarray) -> None:
    image = Image.fromarray(draw()).convert(mode)
    assert similarity(to_mnist(image), reference) > 0.99


def test_to_mnist_reads_16_bit_greys(reference: np.ndarray) -> None:
    deep = draw().astype(np.uint16) * 257  # 0..65535
    assert similarity(to_mnist(deep), reference) > 0.99
    assert similarity(to_mnist(Image.fromarray(deep)), reference) > 0.99


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_to_mnist_reads_png_bytes(wrap: Callable[[bytes], object], reference: np.ndarray) -> None:
    np.testing.assert_allclose(to_mnist(wrap(png_bytes(draw()))), reference, atol=1e-6)


def test_to_mnist_reads_jpeg_bytes(reference: np.ndarray) -> None:
    assert similarity(to_mnist(png_bytes(draw(), "JPEG")), reference) > 0.9
    photo = png_bytes(Image.fromarray(255 - draw()).convert("RGB"), "JPEG")  # dark on light
    assert similarity(to_mnist(photo), reference) > 0.9


def test_to_mnist_reads_a_bar_in_a_flat_strip() -> None:
    strip = np.zeros((7, 300), dtype=np.uint8)
    strip[2:5, 50:250] = 255  # a dash along a (7, 300) strip
    image = to_mnist(strip)
    rows, cols = np.nonzero(image > 0.3)
    assert set(rows) <= {13, 14, 15}
    assert 19 <= cols.max() - cols.min() + 1 <= 21


def test_to_mnist_reads_a_bar_in_a_tall_strip() -> None:
    strip = np.zeros((3000, 20), dtype=np.uint8)
    strip[300:2700, 8:12] = 255  # a one along a (3000, 20) strip
    image = to_mnist(strip)
    rows, cols = np.nonzero(image > 0.3)
    assert set(cols) <= {13, 14, 15}
    assert 19 <= rows.max() - rows.min() + 1 <= 21


# --- what is not an image -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        b"",
        b"definitely not a picture" * 10,
        png_bytes(draw())[:400],  # a truncated PNG
        np.zeros(10, dtype=np.uint8),
        np.zeros((4, 4, 4, 4), dtype=np.uint8),
        np.zeros((28, 28, 2), dtype=np.uint8),
        np.zeros((0, 5), dtype=np.uint8),
        np.full((28, 28), None, dtype=object),
        np.full((28, 28), "a", dtype="<U1"),
        "digit.png",
        [[0, 255], [255, 0]],
    ],
    ids=[
        "empty-bytes",
        "garbage-bytes",
        "truncated-png",
        "1-d",
        "4-d",
        "2-channels",
        "no-pixels",
        "object",
        "strings",
        "str",
        "list",
    ],
)
def test_to_mnist_refuses_what_is_not_an_image(source: object) -> None:
    with pytest.raises(InvalidImageError):
        to_mnist(source)  # type: ignore[arg-type]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds a scrap of pixel data: decoding it would fail."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    scrap = zlib.compress(bytes(64))  # far less than the declared rows
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", scrap)


def test_to_mnist_refuses_a_50_megapixel_png_before_decoding_it() -> None:
    with pytest.raises(InvalidImageError, match="too large"):
        to_mnist(_png_header_only(8000, 6250))


def test_to_mnist_refuses_a_50_megapixel_array() -> None:
    huge = np.broadcast_to(np.uint8(0), (6250, 8000))  # no memory behind it
    with pytest.raises(InvalidImageError, match="too large"):
        to_mnist(huge)


# --- drawings as people make them -----------------------------------------------------------


def _with_corner_specks(canvas: np.ndarray) -> np.ndarray:
    noisy = canvas.copy()
    for row, col in [(5, 5), (5, 270), (270, 5), (270, 270)]:
        noisy[row : row + 3, col : col + 3] = 255  # 3x3 px dust near each corner
    return noisy


def _with_salt(canvas: np.ndarray) -> np.ndarray:
    noisy = canvas.copy()
    rows, cols = np.random.default_rng(0).integers(0, SLATE_PX, (2, 30))
    noisy[rows, cols] = 255  # 30 stray single pixels
    return noisy


@pytest.mark.parametrize("add_noise", [_with_salt, _with_corner_specks], ids=["salt", "specks"])
def test_to_mnist_ignores_specks_far_from_the_digit(
    add_noise: Callable[[np.ndarray], np.ndarray], reference: np.ndarray
) -> None:
    assert similarity(to_mnist(add_noise(draw())), reference) > 0.95


@pytest.mark.parametrize("pen", [2, 40])
@pytest.mark.parametrize("stroke", [ONE, SEVEN, TWO], ids=["one", "seven", "two"])
def test_to_mnist_gives_thin_and_thick_pens_mnist_stroke_widths(stroke: Stroke, pen: int) -> None:
    width = stroke_width(to_mnist(draw(stroke, pen=pen)))
    low, high = MNIST_STROKE_RANGE_PX
    assert low <= width <= high


@pytest.mark.parametrize(
    ("left", "top", "height"),
    [(60, -8, 260), (280 - 0.9 * 160 - 4, 40, 200), (-20, 40, 200)],
    ids=["top-and-bottom", "right", "left"],
)
def test_to_mnist_reads_a_digit_touching_the_canvas_edge(
    left: float, top: float, height: float, reference: np.ndarray
) -> None:
    assert similarity(to_mnist(draw(left=left, top=top, height=height)), reference) > 0.9


def test_stroke_width_measures_a_bar() -> None:
    bar = np.zeros((120, 20), dtype=np.float32)
    bar[10:110, 8:11] = 1.0  # 3 px wide, 100 px long
    assert stroke_width(bar) == pytest.approx(3.0, abs=0.1)
    assert stroke_width(np.zeros((28, 28))) == 0.0


# --- decoding: once, bounded, only the documented formats -----------------------------------


@pytest.mark.parametrize("antialiased", [False, True], ids=["hard-pen", "anti-aliased"])
@pytest.mark.parametrize("paper", [False, True], ids=["dark-slate", "white-paper"])
def test_to_mnist_reads_8_bit_grey_exactly_as_its_float_pixels(
    antialiased: bool, paper: bool
) -> None:
    # An (H, W) uint8 array (every opaque image once decoded) is cropped to its ink in uint8;
    # the same pixels as float32 in [0, 1] take the general path. Bit for bit the same.
    for ink in _spread_of_drawings(antialiased):
        grey = 255 - ink if paper else ink
        floats = grey.astype(np.float32) / 255
        assert np.array_equal(ink_map(grey), ink_map(floats))
        assert np.array_equal(to_mnist(grey), to_mnist(floats))


def _enlarged(image: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel as a factor x factor block: a large picture that reduces back exactly."""
    return np.kron(image, np.ones((factor, factor), dtype=np.uint8))


def test_as_canvas_decodes_bytes_once_into_8_bit_grey_or_rgba() -> None:
    grey = as_canvas(png_bytes(draw()))
    clear = as_canvas(png_bytes(rgba_canvas(draw(), clear=True)))
    photo = as_canvas(png_bytes(Image.fromarray(255 - draw()).convert("RGB"), "JPEG"))

    assert isinstance(grey, Image.Image) and isinstance(clear, Image.Image)
    assert isinstance(photo, Image.Image)
    assert (grey.mode, clear.mode, photo.mode) == ("L", "RGBA", "L")
    assert np.array_equal(np.asarray(grey), draw())
    assert as_canvas(grey) is grey  # a canvas is its own canvas: nothing decoded twice


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_as_canvas_reduces_a_12_megapixel_photo_to_the_work_size(
    fmt: str, reference: np.ndarray
) -> None:
    paper = np.full((3000, 4000), 255, dtype=np.uint8)
    paper[380:2620, 880:3120] = _enlarged(255 - draw(), 8)  # a digit photographed close up
    canvas = as_canvas(png_bytes(paper, fmt))

    assert isinstance(canvas, Image.Image)
    assert canvas.size == (1000, 750) and canvas.width * canvas.height <= MAX_WORK_PIXELS
    assert similarity(to_mnist(canvas), reference) > 0.9


@pytest.mark.parametrize("shape", [(1601, 2003, 4), (3001, 1999, 3), (2500, 1777)])
def test_reduction_a_strip_at_a_time_equals_pillows_reduce(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    image = Image.fromarray(pixels)
    mode = "RGBA" if image.mode == "RGBA" else "L"

    canvas = as_canvas(image)

    assert isinstance(canvas, Image.Image)
    factor = 2 if pixels.shape[0] * pixels.shape[1] <= 4 * MAX_WORK_PIXELS else 4
    assert np.array_equal(np.asarray(canvas), np.asarray(image.convert(mode).reduce(factor)))
    assert np.array_equal(as_canvas(pixels), np.asarray(image.reduce(factor)))


def test_as_canvas_reads_a_large_drawing_like_a_small_one(reference: np.ndarray) -> None:
    big = _enlarged(draw(), 8)  # 2240x2240, over the work size
    assert similarity(to_mnist(as_canvas(big)), reference) > 0.99
    assert similarity(to_mnist(png_bytes(big)), reference) > 0.99


def test_as_canvas_turns_a_photo_upright_from_its_exif_orientation() -> None:
    upright = draw()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    Image.fromarray(upright).rotate(90, expand=True).save(buffer, "JPEG", exif=exif, quality=95)

    canvas = as_canvas(buffer.getvalue())

    assert isinstance(canvas, Image.Image)
    assert similarity(to_mnist(canvas), to_mnist(upright)) > 0.95
    assert np.array_equal(np.asarray(as_canvas(canvas)), np.asarray(canvas))  # once only


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "PPM", "ICO"])
def test_as_canvas_refuses_formats_other_than_png_jpeg_and_webp(fmt: str) -> None:
    with pytest.raises(InvalidImageError, match="PNG, JPEG or WebP"):
        as_canvas(png_bytes(draw(), fmt))


@pytest.mark.parametrize(
    "upload",
    [
        _png_header_only(4001, 3000),  # just over 12 megapixels
        _png_header_only(100_000, 100_000),  # over Pillow's own limit too
        png_bytes(Image.new("RGB", (1921, 1080)), "WEBP"),  # WebP: full HD at most
    ],
    ids=["png-12mp", "png-over-pillow-limit", "webp-over-full-hd"],
)
def test_as_canvas_refuses_too_many_pixels_before_decoding(upload: bytes) -> None:
    with pytest.raises(ImageTooLargeError, match="too large"):
        as_canvas(upload)


def test_encode_png_keeps_the_pixels_and_nothing_else_of_an_upload() -> None:
    upload = io.BytesIO()
    Image.fromarray(draw()).save(upload, "PNG", icc_profile=b"\0" * 4096)
    sent = upload.getvalue() + b"junk after the end" * 1000

    stored = encode_png(sent)

    assert b"junk" not in stored and b"iCCP" not in stored
    assert len(stored) < len(sent)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), draw())


def test_image_work_runs_on_one_opencv_thread() -> None:
    # In a fresh process: OpenCV's default pool (a thread per core) doubles the CPU of a
    # prediction's image work without making it faster.
    code = "import digitrec.preprocessing, cv2; print(cv2.getNumThreads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(OPENCV_THREADS) == "1"
