"""Peak memory of one API worker for large uploads: what one request can cost at most.

    python bench/memory.py
    python bench/memory.py --workers 2

For each case it starts `python -m digitrec serve` on a free port (bench/load.py's helpers, on
a throwaway SQLite database), sends one small drawing to warm the worker up, reads the
worker's peak resident memory (VmHWM in /proc/<pid>/status), posts the case's image(s) as
multipart uploads, and reads the peak again. A fresh server per case, since a peak only rises.

Prints numbers only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from load import start_server
from PIL import Image, ImageDraw, PngImagePlugin
from slate_pngs import canvas_png

REQUEST_TIMEOUT_S = 120
KIB = 1024


def paper_photo(width: int, height: int, fmt: str) -> bytes:
    """A dark 7 on white paper filling a third of the frame, as a phone photo of it would be."""
    image = Image.new("RGB", (width, height), (235, 232, 225))
    box = min(width, height) // 3
    left, top = (width - box) // 2, (height - box) // 2
    points = [(left, top), (left + box, top), (left + box // 3, top + box)]
    ImageDraw.Draw(image).line(points, fill=(30, 30, 40), width=max(2, box // 12))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def transparent_canvas(width: int, height: int) -> bytes:
    """The page's canvas form (white ink on transparent), drawn large."""
    small = Image.open(io.BytesIO(canvas_png(7)))
    buffer = io.BytesIO()
    small.resize((width, height), Image.Resampling.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def png_with_text(megabytes: int) -> bytes:
    """A small drawing whose PNG carries `megabytes` of compressed text chunks."""
    text = PngImagePlugin.PngInfo()
    for i in range(megabytes):
        text.add_text(f"note{i}", "x" * 1_000_000, zip=True)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(canvas_png(7))).save(buffer, format="PNG", pnginfo=text)
    return buffer.getvalue()


# name -> (how to make the upload, how many are sent at once)
CASES: dict[str, tuple[Callable[[], bytes], int]] = {
    "PNG 4000x4000 paper (16 MP)": (lambda: paper_photo(4000, 4000, "PNG"), 1),
    "PNG 4000x4000 paper, 4 at once": (lambda: paper_photo(4000, 4000, "PNG"), 4),
    "PNG 4000x4000 transparent canvas": (lambda: transparent_canvas(4000, 4000), 1),
    "PNG 4000x3000 paper (12 MP)": (lambda: paper_photo(4000, 3000, "PNG"), 1),
    "PNG 4000x3000 paper, 4 at once": (lambda: paper_photo(4000, 3000, "PNG"), 4),
    "PNG 4000x3000 transparent canvas": (lambda: transparent_canvas(4000, 3000), 1),
    "JPEG 4000x3000 photo (12 MP)": (lambda: paper_photo(4000, 3000, "JPEG"), 1),
    "JPEG 4000x3000 photo, 4 at once": (lambda: paper_photo(4000, 3000, "JPEG"), 4),
    "WebP 4000x3000 paper (12 MP)": (lambda: paper_photo(4000, 3000, "WEBP"), 1),
    "WebP 1920x1080 paper (2 MP)": (lambda: paper_photo(1920, 1080, "WEBP"), 1),
    "WebP 1920x1080 paper, 4 at once": (lambda: paper_photo(1920, 1080, "WEBP"), 4),
    "PNG with 70 MB of text, 4 at once": (lambda: png_with_text(70), 4),
}


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a process: the most resident memory it has held, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def worker_pids(server_pid: int) -> list[int]:
    """The processes that serve requests: the server's children, or the server itself."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children] or [server_pid]


def post_image(url: str, body: bytes) -> int:
    files = {"file": ("upload", body, "application/octet-stream")}
    return httpx.post(f"{url}/predict", files=files, timeout=REQUEST_TIMEOUT_S).status_code


def measure(name: str, body: bytes, at_once: int, workers: int) -> None:
    """Start a server, warm it, send `at_once` copies of `body` together, print the peaks."""
    with tempfile.TemporaryDirectory(prefix="digitrec-bench-mem-") as folder:
        database_url = f"sqlite:///{folder}/bench.sqlite3"
        server, port = start_server(database_url, Path(folder), workers, None)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(2 * workers):  # each worker runs one prediction first
                post_image(url, canvas_png(3))
            pids = worker_pids(server.pid)
            before = {pid: peak_rss_kib(pid) for pid in pids}
            with ThreadPoolExecutor(max_workers=at_once) as pool:
                statuses = list(pool.map(lambda _: post_image(url, body), range(at_once)))
            after = {pid: peak_rss_kib(pid) for pid in pids}
        finally:
            server.terminate()
            server.wait(timeout=30)
    grew = max(pids, key=lambda pid: after[pid] - before[pid])
    codes = ",".join(str(status) for status in sorted(set(statuses)))
    print(
        f"{name:34s} {len(body) / KIB:5.0f} KiB  HTTP {codes:8s}"
        f" peak RSS of the worker {before[grew] / KIB:6.0f} -> {after[grew] / KIB:6.0f} MiB"
        f" (+{(after[grew] - before[grew]) / KIB:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--case", action="append", choices=list(CASES), help="default: all")
    args = parser.parse_args()
    print(f"peak memory of one worker, {args.workers} worker(s) per server")
    for name in args.case or CASES:
        make, at_once = CASES[name]
        measure(name, make(), at_once, args.workers)


if __name__ == "__main__":
    main()
