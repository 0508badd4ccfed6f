"""Serve the page for real and drive it with Chromium: start, draw, predict, read.

Used by the browser tests and by bench/click_to_result.py.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from deadlines import PATIENT_WRITE_DEADLINE_S
from playwright.sync_api import Browser, FloatRect, Locator, Page, Playwright, expect
from ports import free_port
from sqlalchemy import Row, create_engine, select
from sqlalchemy.pool import NullPool

from digitrec.storage import prediction_logs
from digitrec.ui.launch import app_command

CHROMIUM_PATH = "/usr/bin/chromium"  # Debian's Chromium; Playwright's own is not installed
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90.0  # Streamlit start-up plus the first import of the page's modules
UI_TIMEOUT_MS = 30_000  # the first prediction also loads the model
SLATE_PX = 280

T = TypeVar("T")

Stroke = list[tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, points: int = 24) -> Stroke:
    """A closed loop, started at the top and drawn anticlockwise, as people draw a 0."""
    angles = [2.0 * math.pi * k / points for k in range(points + 1)]
    return [(cx - rx * math.sin(a), cy - ry * math.cos(a)) for a in angles]


# Digits as a person draws them, in slate pixels, filling about 60% of the 280 px slate.
# The 7 is one stroke (bar, then diagonal), as most people write it without lifting the pen.
DIGIT_STROKES: dict[int, list[Stroke]] = {
    1: [[(146, 52), (144, 100), (141, 150), (138, 200), (137, 228)]],
    7: [[(84, 62), (140, 60), (196, 60), (176, 104), (156, 148), (138, 190), (124, 228)]],
    0: [_ellipse(140, 140, 56, 86)],
}


def app_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    """This process's environment with the page pointed at one database and data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITREC_")}
    env.update(
        DIGITREC_DATABASE_URL=database_url,
        DIGITREC_DATA_DIR=str(data_dir),
        DIGITREC_DB_WRITE_DEADLINE_S=str(PATIENT_WRITE_DEADLINE_S),  # see tests/deadlines.py
    )
    return env


def running_app(env: Mapping[str, str], log_path: Path) -> AbstractContextManager[str]:
    """Run the page with `streamlit run` on a free port; yields its URL."""
    port = free_port()
    return _running(app_command("127.0.0.1", port), port, "/_stcore/health", env, log_path)


def running_api(env: Mapping[str, str], log_path: Path) -> AbstractContextManager[str]:
    """Run the model service (`digitrec serve`) on a free port; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port)]
    return _running(command, port, "/health", env, log_path)


@contextmanager
def _running(
    command: list[str], port: int, health: str, env: Mapping[str, str], log_path: Path
) -> Iterator[str]:
    """Start `command`, wait until `health` answers on `port`, stop it afterwards."""
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(url, process, log_path, health)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, health: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}{health}", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the app did not start in {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()}")


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's headless Chromium, driven by Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)


PHONE_VIEWPORT = {"width": 390, "height": 844}
DESKTOP_VIEWPORT = {"width": 1280, "height": 1600}


def open_page(
    browser: Browser,
    url: str,
    *,
    phone: bool = False,
    ready_text: str = "Total Attempts:",
    **context: Any,
) -> Page:
    """A new tab on the page (on a desktop, or a touch-screen phone), once `ready_text` shows.

    `context`: more options for the browser context (a viewport, a time zone...).
    """
    if phone:
        context = {"viewport": PHONE_VIEWPORT, "has_touch": True, "is_mobile": True} | context
    page = browser.new_context(**({"viewport": DESKTOP_VIEWPORT} | context)).new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(url)
    slate(page).wait_for()
    expect(page.get_by_text(ready_text).first).to_be_visible()
    return page


def slate(page: Page) -> Locator:
    """The canvas that takes the pen, found by its accessible name."""
    return page.get_by_role("img", name=re.compile("^Drawing slate"))


def slate_button(page: Page, name: str) -> Locator:
    """The slate's own Clear or Predict button."""
    return page.locator(".st-key-slate").get_by_role("button", name=name, exact=True)


def settled(page: Page, read: Callable[[], T | None], polls: int = 3, interval_ms: int = 50) -> T:
    """What `read` gives once it is there and stays the same (the page reflows as it reruns)."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    last, same = None, 0
    while time.monotonic() < deadline:
        seen = read()
        same = same + 1 if seen is not None and seen == last else 0
        if same >= polls and seen is not None:
            return seen
        last = seen
        page.wait_for_timeout(interval_ms)
    raise TimeoutError(f"{read} kept changing")


def settled_slate_box(page: Page) -> FloatRect:
    """The slate's box once it stays put (the page reflows while results come and go)."""
    return settled(page, slate(page).bounding_box)


def draw(
    page: Page, strokes: list[Stroke], *, steps: int = 3, box: FloatRect | None = None
) -> None:
    """Draw polylines on the slate with the mouse, as a person would.

    `steps` mouse events per segment (1: only the corners, as a very fast hand gives them);
    `box` the slate's box when it is known not to move (skips waiting for it to settle).
    """
    box = box or settled_slate_box(page)
    scale = box["width"] / SLATE_PX
    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=steps)
        page.mouse.up()


def draw_by_touch(page: Page, strokes: list[Stroke]) -> None:
    """Draw polylines with a finger (touch events, as a phone sends them)."""
    box = settled_slate_box(page)
    scale = box["width"] / SLATE_PX
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, *points: tuple[float, float]) -> None:
        touch_points = [{"x": x, "y": y} for x, y in points]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        touch("touchStart", points[0])
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for step in (1, 2, 3):
                touch("touchMove", (x0 + (x1 - x0) * step / 3, y0 + (y1 - y0) * step / 3))
        touch("touchEnd")
    cdp.detach()


def press(page: Page, key: str) -> None:
    """Click the button with this widget key (Streamlit marks its container `st-key-<key>`)."""
    page.locator(f".st-key-{key} button").click()


def clear_slate(page: Page) -> None:
    """Press the slate's Clear and wait until the result it answers is gone."""
    slate_button(page, "Clear").click()
    expect(slate(page)).to_have_attribute("data-strokes", "0")
    expect(prediction_heading(page)).to_have_count(0)


def prediction_heading(page: Page) -> Locator:
    return page.locator("h3", has_text=re.compile(r"^Prediction: \d"))


def predict(page: Page) -> int:
    """Press Predict and return the digit the page shows once the result is on screen."""
    before = prediction_heading(page).all_inner_texts()
    slate_button(page, "Predict").click()
    expect(prediction_heading(page)).to_have_count(1)
    if before:
        expect(prediction_heading(page)).not_to_have_text(before[0])
    text = prediction_heading(page).inner_text()
    match = re.search(r"Prediction: (\d)", text)
    assert match, text
    return int(match[1])


def logged_rows(database_url: str, session: str) -> list[Row]:
    """The session's rows as the database holds them, oldest first: (prediction, actual, model)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            query = (
                select(
                    prediction_logs.c.prediction,
                    prediction_logs.c.actual,
                    prediction_logs.c.model,
                )
                .where(prediction_logs.c.session_id == session)
                .order_by(prediction_logs.c.timestamp, prediction_logs.c.id)
            )
            return list(connection.execute(query))
    finally:
        engine.dispose()


def session_id(page: Page) -> str:
    match = re.search(r"[?&]session=([0-9a-f]{32})", page.url)
    assert match, page.url
    return match[1]
