"""The PNGs the page sends: the slate's own component draws ten digits in Chromium.

`canvas_png(digit)` is what a press of Predict sends after the digit is drawn with the mouse:
slate.js, mounted alone in Debian's Chromium (as the browser tests drive it), takes the pointer
events of each digit's strokes and gives its 280x280 RGBA picture (white ink, antialiased, on
opaque black) as the browser encodes it. The ten are drawn once per process, in about a second.

Used by the benchmarks that post canvases (load, latency, memory, outage). Run alone, it writes
the ten to a folder, to look at:

    python bench/slate_pngs.py FOLDER
"""

from __future__ import annotations

import argparse
import functools
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]  # the browser tests' Chromium

from live_app import launch_chromium  # noqa: E402  (found through sys.path)

from digitrec.ui.slate import SLATE_SIZE_PX, Press  # noqa: E402

MOUSE_STEPS = 4  # pointer events per segment
# Polylines in a 0..1 box, roughly the digits 0-9 as a person draws them.
STROKES = [
    [(0.5, 0.15), (0.3, 0.3), (0.28, 0.7), (0.5, 0.85), (0.72, 0.7), (0.7, 0.3), (0.5, 0.15)],
    [(0.45, 0.25), (0.55, 0.15), (0.55, 0.85)],
    [(0.3, 0.3), (0.5, 0.15), (0.7, 0.3), (0.3, 0.85), (0.72, 0.85)],
    [(0.3, 0.2), (0.7, 0.2), (0.45, 0.48), (0.7, 0.65), (0.5, 0.85), (0.3, 0.78)],
    [(0.6, 0.85), (0.6, 0.15), (0.28, 0.6), (0.75, 0.6)],
    [(0.7, 0.15), (0.35, 0.15), (0.32, 0.45), (0.65, 0.5), (0.6, 0.82), (0.3, 0.82)],
    [(0.65, 0.15), (0.35, 0.5), (0.35, 0.8), (0.65, 0.78), (0.62, 0.52), (0.36, 0.55)],
    [(0.28, 0.18), (0.72, 0.18), (0.42, 0.85)],
    [
        (0.5, 0.5),
        (0.32, 0.32),
        (0.5, 0.15),
        (0.68, 0.32),
        (0.32, 0.7),
        (0.5, 0.85),
        (0.7, 0.68),
        (0.5, 0.5),
    ],
    [(0.68, 0.4), (0.5, 0.15), (0.32, 0.35), (0.5, 0.5), (0.68, 0.4), (0.62, 0.85)],
]
# Mounts slate.js as Streamlit would, its trigger values kept in `window.sent`.
MOUNT = """async (source) => {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const { default: slate } = await import(url);
    window.sent = [];
    slate({
        data: {},
        parentElement: document.body,
        setTriggerValue: (name, value) => window.sent.push({ name, value }),
    });
}"""
LAST_PRESS = "() => window.sent.filter((s) => s.name === 'press').at(-1).value"


def canvas_png(digit: int) -> bytes:
    """The PNG the page sends when `digit` (0-9) of STROKES is drawn and Predict pressed."""
    return _slate_pngs()[digit]


@functools.cache
def _slate_pngs() -> tuple[bytes, ...]:
    # On a thread of its own: Playwright's sync API refuses to run inside an asyncio loop,
    # where a load generator may ask for its first canvas.
    with ThreadPoolExecutor(max_workers=1) as drawer:
        return drawer.submit(_draw_all).result()


def _draw_all() -> tuple[bytes, ...]:
    slate = resources.files("digitrec.ui.slate")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_content((slate / "slate.html").read_text())
            page.evaluate(MOUNT, (slate / "slate.js").read_text())
            return tuple(_drawn(page, strokes) for strokes in STROKES)
        finally:
            browser.close()


def _drawn(page: Page, strokes: list[tuple[float, float]]) -> bytes:
    """Clear, draw one polyline with the mouse, press Predict: the PNG the press carries."""
    page.click("button.clear")
    box = page.locator("canvas").bounding_box()
    assert box is not None
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in strokes]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=MOUSE_STEPS)
    page.mouse.up()
    page.click("button.predict")
    press = Press.from_trigger(page.evaluate(LAST_PRESS))  # read as the page reads it
    assert press is not None and press.png is not None and box["width"] == SLATE_SIZE_PX
    return press.png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where digit-0.png ... digit-9.png go")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for digit in range(len(STROKES)):
        written, png = args.folder / f"digit-{digit}.png", canvas_png(digit)
        written.write_bytes(png)
        print(f"{written}: {len(png):,} bytes")


if __name__ == "__main__":
    main()
