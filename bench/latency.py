"""Where the time of one prediction goes, in-process: the predictor, and the service per stage.

    python bench/latency.py                       # SQLite in a temporary folder
    python bench/latency.py --database-url postgresql+psycopg://postgres@127.0.0.1/digitrec

Prints medians and 90th percentiles (one thread, after a warm-up) of:

- `Predictor.predict` on a 280x280 RGBA canvas array (the slate: white ink on opaque black),
  and its two parts, `to_mnist` and the network run;
- `PredictionService.predict` on the PNGs the page sends (bench/slate_pngs.py), and each of its
  stages: decode, preprocess, network, encode the 28x28 input, the canvas to store, the
  database write (through the guard, as a request makes it).

For the whole calls it also prints the CPU the process used per call, over all its threads: a
library that hands work to a thread pool of its own shows there, not in the times. The
machine's load average is printed before and after: on a shared machine, read the medians
against it. Prints numbers only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from slate_pngs import canvas_png

from digitrec import drawings
from digitrec.config import Settings
from digitrec.inference import load_predictor
from digitrec.preprocessing import to_mnist
from digitrec.service import PredictionService, build_service

WARMUP = 50
STAGES = ("as_canvas", "to_mnist", "encode_png", "png_to_store")


def slate_canvas(digit: int) -> np.ndarray:
    """The page's slate holding `digit`: (280, 280, 4) uint8, white ink on opaque black."""
    return np.asarray(Image.open(io.BytesIO(canvas_png(digit))))


@dataclass
class Timing:
    """Seconds of each call, and the process's CPU seconds (all threads) per call."""

    seconds: list[float]
    cpu_s: float | None = None


def timings(run: Callable[[int], Any], repeats: int) -> Timing:
    """`repeats` calls of run(i), timed after WARMUP untimed ones."""
    for i in range(WARMUP):
        run(i)
    out = []
    cpu_started = time.process_time()
    for i in range(repeats):
        started = time.perf_counter()
        run(i)
        out.append(time.perf_counter() - started)
    return Timing(out, (time.process_time() - cpu_started) / repeats)


def line(name: str, timing: Timing) -> str:
    seconds = timing.seconds
    p90 = statistics.quantiles(seconds, n=10)[-1]
    text = (
        f"  {name:26s} median {statistics.median(seconds) * 1000:6.3f} ms, p90 {p90 * 1000:6.3f} ms"
    )
    if timing.cpu_s is not None:
        text += f", CPU {timing.cpu_s * 1000:6.3f} ms a call"
    return text


def bench_predictor(repeats: int) -> None:
    predictor = load_predictor("default")
    canvases = [slate_canvas(d) for d in range(10)]
    images = np.stack([to_mnist(c) for c in canvases])
    print("Predictor.predict (model default, one thread), 280x280 RGBA canvas:")
    print(line("predict", timings(lambda i: predictor.predict(canvases[i % 10]), repeats)))
    print(line("  to_mnist", timings(lambda i: to_mnist(canvases[i % 10]), repeats)))
    network = timings(lambda i: predictor.predict_preprocessed(images[i % 10][None]), repeats)
    print(line("  networks", network))


@contextmanager
def timed_stages(service: PredictionService) -> Iterator[dict[str, list[float]]]:
    """The service with each stage wrapped in a timer: {stage: [seconds, ...]}."""
    spent: dict[str, list[float]] = defaultdict(list)

    def timer(name: str, work: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return work(*args, **kwargs)
            finally:
                spent[name].append(time.perf_counter() - started)

        return timed

    originals = {name: getattr(drawings, name) for name in STAGES}
    for name, work in originals.items():
        setattr(drawings, name, timer(name, work))
    predictor = service.model_store.predictor(service.default_model)
    predictor.predict_preprocessed = timer("networks", predictor.predict_preprocessed)  # type: ignore[method-assign]
    service.storage.write = timer("database write", service.storage.write)  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        for name, work in originals.items():
            setattr(drawings, name, work)


def bench_service(database_url: str | None, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="digitrec-latency-") as folder:
        url = database_url or f"sqlite:///{folder}/latency.sqlite3"
        service = build_service(Settings(data_dir=Path(folder), database_url=url))
        pngs = [canvas_png(d) for d in range(10)]
        try:
            with timed_stages(service) as spent:
                whole = timings(
                    lambda i: service.predict(pngs[i % 10], session_id=f"{i % 10:032x}"), repeats
                )
        finally:
            service.close()
    print(f"PredictionService.predict on canvas PNGs ({url.split(':')[0]}):")
    print(line("predict", whole))
    for name, seconds in spent.items():
        print(line(f"  {name}", Timing(seconds[WARMUP:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--repeats", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU cores")
    bench_predictor(args.repeats)
    bench_service(args.database_url, args.repeats)
    print(f"load average after:  {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
