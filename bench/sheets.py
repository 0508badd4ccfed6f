"""Contact sheets: drawings as the model sees them, each with a caption, for a person to judge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.preprocessing import ImageSource, to_mnist

TILE_PX, COLUMNS, CAPTION_PX = 84, 12, 14  # a model input shown 3x, its caption below


def write_sheet(path: Path, tiles: Sequence[tuple[ImageSource, str]]) -> None:
    """A sheet of (drawing, caption) tiles, each drawing (a canvas or PNG bytes) shown as its
    model input; none: no sheet."""
    if not tiles:
        return
    rows = -(-len(tiles) // COLUMNS)
    sheet = Image.new("L", (COLUMNS * TILE_PX, rows * (TILE_PX + CAPTION_PX)), 0)
    draw = ImageDraw.Draw(sheet)
    for i, (canvas, caption) in enumerate(tiles):
        left, top = (i % COLUMNS) * TILE_PX, (i // COLUMNS) * (TILE_PX + CAPTION_PX)
        pixels = Image.fromarray((to_mnist(canvas) * 255).astype(np.uint8))
        tile = pixels.resize((TILE_PX - 4, TILE_PX - 4), Image.Resampling.NEAREST)
        sheet.paste(tile, (left, top))
        draw.text((left + 2, top + TILE_PX - 2), caption, fill=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
