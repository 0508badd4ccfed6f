"""The example sheet of real MNIST digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.ui.examples import CELL_PX, GAP_PX, LABEL_PX, examples_path, render_example_grid


def sheet_shape(rows: int, columns: int) -> tuple[int, int]:
    """(height, width) of a sheet with this many digits and examples per digit."""
    return rows * (CELL_PX + GAP_PX) + GAP_PX, LABEL_PX + columns * (CELL_PX + GAP_PX) + GAP_PX


def test_example_grid_has_one_row_per_digit_and_keeps_each_digit_visible(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 3)  # (30,)
    images = np.zeros((30, 28, 28), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255  # a white bar on black, like an MNIST "1"
    out = tmp_path / "sheet" / "examples.png"

    render_example_grid(images, labels[rng.permutation(30)], out)

    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (
        10 * (CELL_PX + GAP_PX) + GAP_PX,
        LABEL_PX + 3 * (CELL_PX + GAP_PX) + GAP_PX,
    )
    first_cell = sheet[GAP_PX : GAP_PX + CELL_PX, LABEL_PX + GAP_PX : LABEL_PX + GAP_PX + CELL_PX]
    assert first_cell.max() == 255 and first_cell.min() == 0
    assert sheet[:, :LABEL_PX].max() > 200  # the digit names are written


def test_example_grid_caps_examples_per_digit(tmp_path: Path) -> None:
    out = tmp_path / "examples.png"
    render_example_grid(np.zeros((20, 28, 28), np.uint8), np.full(20, 4), out, per_digit=5)
    with Image.open(out) as grid:
        assert grid.size == (LABEL_PX + 5 * (CELL_PX + GAP_PX) + GAP_PX, CELL_PX + 2 * GAP_PX)


def test_example_grid_refuses_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="28, 28"):
        render_example_grid(np.zeros((3, 32, 32), np.uint8), np.arange(3), tmp_path / "x.png")


def test_example_sheet_lives_in_the_package_assets() -> None:
    assert examples_path().parts[-3:] == ("digitrec", "assets", "examples.png")
