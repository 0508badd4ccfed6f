"""The benchmarks under bench/ still start: their numbers are in the notes and model cards.

A benchmark is run by hand, so nothing else notices when a change elsewhere breaks it (a
helper moved, a stage renamed). Each one must at least import and parse its arguments; the
in-process latency benchmark, which patches the service's stages by name, runs for real on a
few predictions, on the slate's own PNGs drawn in Chromium. Nothing here reads a time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted((ROOT / "bench").glob("*.py"))


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
