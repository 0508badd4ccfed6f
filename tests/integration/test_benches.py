"""The benchmarks under bench/ still start: their numbers are in the notes and model cards.

A benchmark is run by hand, so nothing else notices when a change elsewhere breaks it (a
helper moved, a stage renamed). Each one must at least import and parse its arguments; the
in-process latency benchmark, which patches the service's stages by name, runs for real on a
few predictions, on the slate's own PNGs drawn in Chromium; the sheets that show drawings for
a person to judge are drawn. Nothing here reads a time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted(
    script
    for script in (ROOT / "bench").glob("*.py")
    if 'if __name__ == "__main__":' in script.read_text()
)  # the rest are helpers the benchmarks share


def run_bench(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_benchmark_is_found() -> None:
    names = {script.stem for script in BENCHES}
    assert {"latency", "load", "drawn", "learn", "not_a_digit", "click_to_result"} <= names


@pytest.mark.parametrize("script", BENCHES, ids=lambda path: path.stem)
def test_benchmark_imports_and_explains_itself(script: Path) -> None:
    done = run_bench(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


@pytest.mark.browser  # the canvases it posts are drawn by the slate in Chromium
def test_latency_benchmark_times_every_stage_of_a_prediction() -> None:
    done = run_bench(ROOT / "bench" / "latency.py", "--repeats", "20")
    assert done.returncode == 0, done.stderr
    for stage in ("to_mnist", "networks", "as_canvas", "encode_png", "database write"):
        assert f"  {stage} " in done.stdout, done.stdout


def test_a_sheet_shows_each_drawing_as_the_model_sees_it_with_its_caption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from sheets import CAPTION_PX, COLUMNS, TILE_PX, write_sheet

    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[60:220, 130:150, :3] = 255  # a bar: a 1 in the middle of the tile
    write_sheet(tmp_path / "none.png", [])
    write_sheet(tmp_path / "sheet.png", [(canvas, "1")] * (COLUMNS + 1))

    assert not (tmp_path / "none.png").exists()
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape[1] == COLUMNS * TILE_PX and sheet.shape[0] > 2 * TILE_PX  # two rows
    middle = sheet[TILE_PX // 2 - 10 : TILE_PX // 2 + 10, TILE_PX // 2 - 20 : TILE_PX // 2 + 20]
    assert middle.max() == 255 and middle.min() == 0  # the bar, centred, between dark sides
    assert sheet[TILE_PX - 4 : TILE_PX + CAPTION_PX, :TILE_PX].any()  # the first one's caption
