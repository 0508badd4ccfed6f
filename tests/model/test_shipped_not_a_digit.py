"""The shipped default says "not a digit" for letters, rows of digits, scribbles, shapes and
struck-out digits, and keeps drawn digits. Fixtures are drawn here, with the page's pen."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from drawing import Stroke, draw_strokes, loop, rgba_canvas

from digitrec.inference import Predictor, load_predictor
from digitrec.preprocessing import DrawingTooSmallError

Points = list[tuple[float, float]]


def _box(
    strokes: Sequence[Points], left: float, top: float, width: float, height: float
) -> list[Points]:
    """Strokes given in a unit box (x, y in 0..1), placed in slate pixels."""
    return [[(left + x * width, top + y * height) for x, y in s] for s in strokes]


# Upper-case letters that nobody writes as a digit, as strokes in a unit box.
LETTERS: dict[str, list[Points]] = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.8, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.75, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.55), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
}
ONE: list[Points] = [[(0.55, 0), (0.5, 1)]]
FOUR: list[Points] = [[(0.7, 0), (0, 0.7), (1, 0.7)], [(0.7, 0.3), (0.7, 1)]]
SEVEN: list[Points] = [[(0, 0), (1, 0), (0.45, 1)]]
ZERO: list[Points] = [
    [
        (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))
        for a in np.linspace(-math.pi / 2, 1.5 * math.pi, 40)
    ]
]


def _two(left: list[Points], right: list[Points]) -> list[Points]:
    """Two digits side by side, each 100 px tall and 60 px wide, a small gap between."""
    return _box(left, 60, 90, 60, 100) + _box(right, 150, 90, 60, 100)


OTHERS: dict[str, list[Points]] = {
    "12 side by side": _two(ONE, [[(0, 0.25), (0.5, 0), (1, 0.3), (0, 1), (1, 1)]]),
    "47 side by side": _two(FOUR, SEVEN),
    "10 side by side": _two(ONE, ZERO),
    "scribble": [
        [(60 + 160 * ((k * 37) % 17) / 16, 60 + 160 * ((k * 53) % 13) / 12) for k in range(30)]
    ],
    "star": _box(
        [
            [
                (
                    0.5 + 0.5 * math.sin(4 * math.pi * k / 5),
                    0.5 - 0.5 * math.cos(4 * math.pi * k / 5),
                )
                for k in range(6)
            ]
        ],
        50,
        50,
        180,
        180,
    ),
    "grid": _box(
        [
            [(0, 0.33), (1, 0.33)],
            [(0, 0.66), (1, 0.66)],
            [(0.33, 0), (0.33, 1)],
            [(0.66, 0), (0.66, 1)],
        ],
        50,
        50,
        180,
        180,
    ),
    "struck-out seven": [
        *_box(SEVEN, 70, 50, 140, 180),
        [(60, 50), (220, 230)],
        [(220, 50), (60, 230)],
    ],
}
DIGITS: dict[str, tuple[int, list[Points]]] = {
    "one": (1, _box(ONE, 90, 40, 100, 200)),
    "four": (4, _box(FOUR, 60, 40, 160, 200)),
    "seven": (7, _box(SEVEN, 70, 40, 140, 200)),
    "zero": (0, [loop(140, 140, 62, 98, points=48)]),
}


@pytest.fixture(scope="module")
def default_model() -> Predictor:
    return load_predictor("default")


def _canvas(strokes: Sequence[Stroke]) -> np.ndarray:
    return rgba_canvas(draw_strokes(strokes, supersample=4))


def test_the_default_reads_its_threshold_from_its_model_file(default_model: Predictor) -> None:
    assert default_model.detects
    assert default_model.digit_threshold == pytest.approx(default_model.metadata["digit_threshold"])
    assert 0.0 < default_model.digit_threshold < 1.0


@pytest.mark.parametrize("letter", sorted(LETTERS))
def test_the_default_says_a_letter_is_not_a_digit(default_model: Predictor, letter: str) -> None:
    prediction = default_model.predict(_canvas(_box(LETTERS[letter], 60, 50, 160, 180)))
    assert prediction.digit_probability is not None
    assert not prediction.is_digit
    assert prediction.digit_probability < default_model.digit_threshold


@pytest.mark.parametrize("drawing", sorted(OTHERS))
def test_the_default_says_rows_scribbles_and_shapes_are_not_a_digit(
    default_model: Predictor, drawing: str
) -> None:
    assert not default_model.predict(_canvas(OTHERS[drawing])).is_digit


@pytest.mark.parametrize("drawing", sorted(DIGITS))
def test_the_default_keeps_a_drawn_digit(default_model: Predictor, drawing: str) -> None:
    digit, strokes = DIGITS[drawing]
    prediction = default_model.predict(_canvas(strokes))
    assert prediction.is_digit
    assert prediction.digit == digit
    assert prediction.digit_probability is not None and prediction.digit_probability > 0.5


@pytest.mark.parametrize("angle", [0, 30, 60, 90, 135])
@pytest.mark.parametrize("length", [10, 25, 41])  # px of the 280 px slate: under 15 %
def test_a_straight_tick_under_15_percent_of_the_slate_is_refused(
    default_model: Predictor, angle: int, length: int
) -> None:
    start = np.array([140.0, 140.0])
    end = start + length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    with pytest.raises(DrawingTooSmallError):
        default_model.predict(_canvas([[tuple(start), tuple(end)]]))


@pytest.mark.parametrize("name", ["seed-cnn", "lenet5", "capsnet", "vit"])
def test_models_without_a_detector_call_everything_a_digit(name: str) -> None:
    predictor = load_predictor(name)
    prediction = predictor.predict(_canvas(_box(LETTERS["X"], 60, 50, 160, 180)))
    assert not predictor.detects
    assert prediction.digit_probability is None
    assert prediction.is_digit
