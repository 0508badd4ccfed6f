"""Click-to-result time of the page in a real browser: press Predict, see "Prediction: N".

Starts the page on a throwaway SQLite database, drives Debian's Chromium with Playwright (the
same set-up as the browser tests) and, for each run, clears the slate, draws a digit with the
mouse, presses Predict and times, inside the browser, the click until the result is on screen.

Three ways of clicking are measured (the slate sends its picture with the press, so they
should not differ; they did when the slate sent its drawing on its own, 200 ms after a stroke):
  fast     Predict pressed right after the mouse is released.
  0.3 s    Predict pressed 0.3 s after the last stroke, as a person does.
  settled  Predict pressed 0.6 s after the last stroke.

    python bench/click_to_result.py --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
# The tests' shared helpers (as pytest's `pythonpath`) and the browser tests' own.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from live_app import (  # noqa: E402  (found through sys.path)
    DIGIT_STROKES,
    app_environment,
    clear_slate,
    draw,
    launch_chromium,
    open_page,
    running_app,
    slate,
    slate_button,
)

# Seconds from the last stroke to the Predict click, per way of clicking.
CLICK_DELAYS_S = {"fast": 0.0, "0.3 s": 0.3, "settled": 0.6}
RESULT_TIMEOUT_MS = 30_000

# Records, in the page's own clock, the Predict click and the moment a result heading appears.
WATCH_JS = """
() => {
  window.__bench = {};
  if (window.__benchInstalled) return;
  window.__benchInstalled = true;
  // The slate's buttons live in its shadow root: the click's path names the real target.
  document.addEventListener("click", (event) => {
    const predict = event.composedPath().some((el) => el.classList?.contains("predict"));
    if (predict) window.__bench.click = performance.now();
  }, true);
  const shown = () => [...document.querySelectorAll("h3")]
    .some((h) => /^Prediction: \\d/.test(h.textContent.trim()));
  new MutationObserver(() => {
    if (window.__bench.click !== undefined && window.__bench.shown === undefined && shown()) {
      window.__bench.shown = performance.now();
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}
"""


def time_one(page: Page, digit: int, *, settle_s: float) -> float:
    """Milliseconds from the Predict click to the result on screen, for one drawn digit."""
    clear_slate(page)
    draw(page, DIGIT_STROKES[digit])
    if settle_s:
        time.sleep(settle_s)
    page.evaluate(WATCH_JS)
    slate_button(page, "Predict").click()
    page.wait_for_function("() => window.__bench.shown !== undefined", timeout=RESULT_TIMEOUT_MS)
    return float(page.evaluate("() => window.__bench.shown - window.__bench.click"))


def summarise(name: str, times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return (
        f"{name:8s} n={len(ordered):3d}  median {statistics.median(ordered):7.1f} ms  "
        f"p90 {p90:7.1f} ms  min {ordered[0]:7.1f} ms  max {ordered[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="predictions per way of clicking")
    parser.add_argument("--warmup", type=int, default=2, help="untimed predictions first")
    args = parser.parse_args()

    digits = list(DIGIT_STROKES)
    with tempfile.TemporaryDirectory(prefix="digitrec-bench-") as tmp:
        folder = Path(tmp)
        env = app_environment(f"sqlite:///{folder / 'bench.sqlite3'}", folder / "data")
        with (
            running_app(env, folder / "streamlit.log") as url,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            page = open_page(browser, url)
            slate(page).wait_for()
            for run in range(args.warmup):
                time_one(page, digits[run % len(digits)], settle_s=CLICK_DELAYS_S["settled"])
            results = {}
            for name, settle_s in CLICK_DELAYS_S.items():
                results[name] = [
                    time_one(page, digits[run % len(digits)], settle_s=settle_s)
                    for run in range(args.runs)
                ]
            browser.close()
    print("click-to-result in Chromium (Predict click -> 'Prediction: N' on screen)")
    for name, times_ms in results.items():
        print(summarise(name, times_ms))


if __name__ == "__main__":
    main()
