"""The sheet of real MNIST digits shown as "Example Drawing from Training Data"."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.preprocessing import to_uint8

# Each 28x28 digit is drawn at this many screen pixels per MNIST pixel.
SCALE = 3
CELL_PX = 28 * SCALE
GAP_PX = 6
LABEL_PX = 28  # the column at the left of each row, holding the digit's name
BACKGROUND = 32  # a dark grey, so the black of each digit's own background shows its size
MAX_PER_DIGIT = 8


def examples_path() -> Path:
    """Where the packaged example sheet lives (made by ``digitrec examples``)."""
    return Path(str(resources.files("digitrec") / "assets" / "examples.png"))


def render_example_grid(
    images: np.ndarray, labels: np.ndarray, out: Path, per_digit: int = MAX_PER_DIGIT
) -> None:
    """Write a PNG with one row per digit: its name, then up to `per_digit` examples."""
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(
            f"want (N, 28, 28) images and N labels, got {images.shape}, {labels.shape}"
        )
    digits = sorted({int(d) for d in labels})
    rows = [images[labels == d][:per_digit] for d in digits]
    columns = max((len(r) for r in rows), default=0)
    width = LABEL_PX + columns * (CELL_PX + GAP_PX) + GAP_PX
    height = len(rows) * (CELL_PX + GAP_PX) + GAP_PX
    sheet = Image.new("L", (max(width, 1), max(height, 1)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=20)
    for row, (digit, examples) in enumerate(zip(digits, rows, strict=True)):
        top = GAP_PX + row * (CELL_PX + GAP_PX)
        draw.text((LABEL_PX // 2, top + CELL_PX // 2), str(digit), fill=255, font=font, anchor="mm")
        for column, image in enumerate(examples):
            cell = Image.fromarray(to_uint8(image), mode="L").resize(
                (CELL_PX, CELL_PX), Image.Resampling.NEAREST
            )
            sheet.paste(cell, (LABEL_PX + GAP_PX + column * (CELL_PX + GAP_PX), top))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG", optimize=True)
