"""Behaviour of the shipped models: MNIST test accuracy, calibration, and drawings people make.

Needs the MNIST cache (`digitrec data`, which CI runs first); fails, never skips, without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from drawing import Stroke, draw_strokes, loop, rgba_canvas

from digitrec.calibration import expected_calibration_error
from digitrec.config import get_settings
from digitrec.data import DataUnavailableError, load_mnist
from digitrec.inference import Predictor, load_predictor
from digitrec.preprocessing import EmptyDrawingError

# The least each shipped model must reach on the 10k MNIST test digits.
MIN_TEST_ACCURACY = {
    "default": 0.995,
    "seed-cnn": 0.990,
    "lenet5": 0.985,
    "capsnet": 0.995,
    "vit": 0.993,
}
MAX_DEFAULT_ECE = 0.01  # calibrated expected calibration error, 15 bins
RECORDED_ACCURACY_TOLERANCE = 0.001
MIN_DRAWING_CONFIDENCE = 0.7


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split from the local cache, (10000, 28, 28) uint8 and labels."""
    cache = get_settings().data_dir / "mnist"
    try:
        return load_mnist(cache).split("test")
    except DataUnavailableError as exc:
        pytest.fail(f"MNIST is not cached at {cache}: run `digitrec data` first ({exc})")


@pytest.fixture(scope="session")
def test_probabilities(mnist_test: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Each shipped model's calibrated probabilities (10000, 10) on the test digits, lazily."""
    images, _ = mnist_test
    batch = (images.astype(np.float32) / 255)[:, None]  # (N, 1, 28, 28)

    class Lazy(dict[str, np.ndarray]):
        def __missing__(self, name: str) -> np.ndarray:
            predictor = load_predictor(name)
            self[name] = np.concatenate(
                [predictor.predict_tensor(part) for part in np.array_split(batch, 10)]
            )
            return self[name]

    return Lazy()


@pytest.fixture(scope="module")
def default_model() -> Predictor:
    return load_predictor("default")


# --- MNIST test -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MIN_TEST_ACCURACY))
def test_shipped_model_reaches_its_mnist_test_accuracy(
    name: str,
    mnist_test: tuple[np.ndarray, np.ndarray],
    test_probabilities: dict[str, np.ndarray],
) -> None:
    _, labels = mnist_test
    accuracy = float((test_probabilities[name].argmax(axis=1) == labels).mean())
    assert accuracy >= MIN_TEST_ACCURACY[name]


@pytest.mark.parametrize("name", sorted(MIN_TEST_ACCURACY))
def test_shipped_model_records_the_accuracy_it_has(
    name: str,
    mnist_test: tuple[np.ndarray, np.ndarray],
    test_probabilities: dict[str, np.ndarray],
) -> None:
    _, labels = mnist_test
    measured = float((test_probabilities[name].argmax(axis=1) == labels).mean())
    recorded = load_predictor(name).metadata["metrics"]["test_accuracy"]
    assert recorded == pytest.approx(measured, abs=RECORDED_ACCURACY_TOLERANCE)


def test_default_model_is_calibrated_on_mnist_test(
    mnist_test: tuple[np.ndarray, np.ndarray], test_probabilities: dict[str, np.ndarray]
) -> None:
    _, labels = mnist_test
    ece = expected_calibration_error(test_probabilities["default"], labels.astype(np.int64))
    assert ece <= MAX_DEFAULT_ECE


# --- drawings ---------------------------------------------------------------------------------


PLAIN = {
    "one": (1, [[(138, 40), (142, 240)]]),
    "seven": (7, [[(70, 50), (210, 50), (120, 240)]]),
    "zero": (0, [loop(140, 140, 62, 98, points=48)]),
}
STYLED = {
    "european-one": (1, [[(95, 95), (148, 40), (148, 240)]]),
    "crossed-seven": (7, [[(70, 50), (210, 50), (120, 240)], [(120, 148), (210, 142)]]),
    "slashed-zero": (0, [loop(140, 140, 62, 98, points=48), [(195, 55), (85, 225)]]),
}


def render(strokes: Sequence[Stroke], transparent: bool = False) -> np.ndarray:
    """A (280, 280, 4) uint8 canvas: the page's white pen on black (or on a clear layer)."""
    return rgba_canvas(draw_strokes(strokes), clear=transparent)


@pytest.mark.parametrize("name", sorted(MIN_TEST_ACCURACY))
@pytest.mark.parametrize("drawing", sorted(PLAIN))
def test_shipped_model_reads_a_plain_drawing(name: str, drawing: str) -> None:
    digit, strokes = PLAIN[drawing]
    prediction = load_predictor(name).predict(render(strokes))
    assert prediction.digit == digit
    assert prediction.confidence >= MIN_DRAWING_CONFIDENCE


@pytest.mark.parametrize("transparent", [False, True], ids=["black", "clear"])
@pytest.mark.parametrize("drawing", sorted(PLAIN | STYLED))
def test_default_model_reads_plain_and_european_styles(
    default_model: Predictor, drawing: str, transparent: bool
) -> None:
    digit, strokes = (PLAIN | STYLED)[drawing]
    prediction = default_model.predict(render(strokes, transparent))
    assert prediction.digit == digit
    assert prediction.confidence >= MIN_DRAWING_CONFIDENCE


def test_default_model_refuses_a_blank_canvas(default_model: Predictor) -> None:
    with pytest.raises(EmptyDrawingError):
        default_model.predict(render([]))
