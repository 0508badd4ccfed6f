"""The Insights page in a real browser: label drawings on the Draw page, follow the navigation
to Insights, see the plots drawn and this session's corrections only; the operator sees all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from drawing import draw_digit
from live_app import (
    DIGIT_STROKES,
    UI_TIMEOUT_MS,
    app_environment,
    clear_slate,
    draw,
    open_page,
    predict,
    press,
    running_app,
    session_id,
)
from playwright.sync_api import Browser, Page, expect
from test_e2e_page import save_screenshot

from digitrec.config import Settings
from digitrec.inference import shipped_model_dir
from digitrec.schemas import new_session_id
from digitrec.service import build_service
from digitrec.storage.registry import CANDIDATE, CHAMPION, promote, register_version

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OPERATOR_TOKEN = "e2e-operator-token"


def seed_another_session_and_the_registry(database_url: str, data_dir: Path) -> None:
    """A stranger's corrected drawing, and a registry where version 2 of the default model
    replaced version 1 (the same shipped file: whatever serves keeps serving it)."""
    service = build_service(Settings(database_url=database_url, data_dir=data_dir))
    try:
        stranger = new_session_id()
        shown = service.predict(draw_digit(0), session_id=stranger)
        service.submit_feedback(shown.id, (shown.prediction + 3) % 10, session_id=stranger)
        onnx = (shipped_model_dir() / "default.onnx").read_bytes()
        for status in (CHAMPION, CANDIDATE):
            register_version(
                service.engine,
                "default",
                onnx,
                temperature=1.0,
                metrics={"mnist_test": {"accuracy": 0.996}, "gates": ["labelled rows: pass"]},
                trained_on={"rows": 60},
                status=status,
                by="e2e",
                reason="a browser test",
            )
        promote(service.engine, "default", 2, by="e2e", reason="every gate held")
    finally:
        service.close()


def label(page: Page, strokes_of: int, *, correct_to: int | None) -> int:
    """Draw, predict, then confirm (None) or correct the prediction; returns the prediction."""
    draw(page, DIGIT_STROKES[strokes_of])
    shown = predict(page)
    actual = shown if correct_to is None else correct_to
    page.locator(".st-key-feedback_text input").fill(str(actual))
    press(page, "submit_feedback")
    expect(page.get_by_text(re.compile(r"^Thanks: "))).to_be_visible()
    return shown


def test_insights_show_a_sessions_plots_and_corrections_and_the_operator_sees_all(
    chromium: Browser, sqlite_url: str, tmp_path: Path, artifacts_dir: Path
) -> None:
    env = app_environment(sqlite_url, tmp_path / "data") | {"DIGITREC_ADMIN_TOKEN": OPERATOR_TOKEN}
    seed_another_session_and_the_registry(sqlite_url, tmp_path / "seed")
    with running_app(env, tmp_path / "streamlit.log") as url:
        page = open_page(chromium, url)
        session = session_id(page)
        seven = label(page, 7, correct_to=None)
        clear_slate(page)
        one = label(page, 1, correct_to=(seven + 5) % 10)  # a correction

        page.locator("[data-testid='stSidebarNav'] a", has_text="Insights").click()
        page.locator("h1", has_text="Insights").wait_for()  # within the page's own timeout
        expect(page).to_have_url(re.compile(rf"/insights\?session={session}$"))

        charts = page.locator("[data-testid='stVegaLiteChart']")
        # Per digit, confusion matrix, over time.
        expect(charts).to_have_count(3, timeout=UI_TIMEOUT_MS)
        for chart in charts.all():
            expect(chart.locator("canvas, svg").first).to_be_visible()
        drawings = page.locator("[data-testid='stImage']")
        expect(drawings).to_have_count(1)  # this session's one correction; not the stranger's
        expect(page.get_by_text(f"predicted {one} → {(seven + 5) % 10}")).to_be_visible()
        expect(drawings.locator("img")).to_have_js_property("naturalWidth", 112)
        expect(page.locator("[data-testid='stDataFrame']")).to_be_visible()  # the versions
        save_screenshot(page, artifacts_dir / "e2e-insights.png")

        token = page.locator(".st-key-admin_token input")
        token.fill("not-the-token")
        token.press("Enter")
        page.get_by_text("That is not the admin token").wait_for()
        expect(drawings).to_have_count(1)

        token.fill(OPERATOR_TOKEN)
        token.press("Enter")
        page.get_by_text("Every session's drawings (operator view).").wait_for()
        expect(drawings).to_have_count(2)
        save_screenshot(page, artifacts_dir / "e2e-insights-operator.png")
        page.context.close()


def test_insights_page_opened_by_its_address_starts_empty_for_a_new_session(
    chromium: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    env = app_environment(sqlite_url, tmp_path / "data")
    with running_app(env, tmp_path / "streamlit.log") as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 1600})
        page.set_default_timeout(UI_TIMEOUT_MS)  # the first run builds the service
        page.goto(f"{url}/insights")
        page.get_by_text(re.compile(r"^No labelled drawings yet\.")).wait_for()
        expect(page).to_have_url(re.compile(r"/insights\?session=[0-9a-f]{32}$"))
        expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(0)
        page.context.close()
