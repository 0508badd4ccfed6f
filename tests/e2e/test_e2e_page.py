"""The page in a real browser: draw with the mouse, predict, correct, reload, clear."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from live_app import (
    DIGIT_STROKES,
    app_environment,
    clear_slate,
    draw,
    draw_by_touch,
    logged_rows,
    open_page,
    predict,
    prediction_heading,
    press,
    running_api,
    running_app,
    session_id,
    slate,
    slate_button,
)
from playwright.sync_api import Browser, Page, expect

from digitrec.ui.formatting import EMPTY_MESSAGE

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def history_table(page: Page, rows: int) -> list[list[str]]:
    """The table's cells (from the grid's accessible copy), once it shows `rows` rows."""
    body_rows = page.locator("[data-testid='stDataFrame'] table tbody tr")
    expect(body_rows).to_have_count(rows)
    return [row.locator("td").all_inner_texts() for row in body_rows.all()]


def save_screenshot(page: Page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window to fit it."""
    viewport = page.viewport_size
    assert viewport is not None
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(viewport)


def test_draw_predict_correct_reload_and_clear(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str, artifacts_dir: Path
) -> None:
    page = open_page(chromium, start_app(sqlite_url))
    session = session_id(page)

    shown = {}
    for digit in (1, 7, 0):
        if shown:
            clear_slate(page)
        draw(page, DIGIT_STROKES[digit])
        shown[digit] = predict(page)  # clicked at once: the drawing is still on its way
    assert shown == {1: 1, 7: 7, 0: 0}
    expect(page.get_by_text(re.compile(r"^Confidence: \d{1,3}%$"))).to_be_visible()

    page.locator(".st-key-feedback_text input").fill("6")
    press(page, "submit_feedback")
    expect(page.get_by_text("Thanks: recorded 6 as the right answer.")).to_be_visible()
    expect(page.get_by_text("Total Attempts: 3 | Correct Predictions: 2")).to_be_visible()
    rows = [tuple(r)[:2] for r in logged_rows(sqlite_url, session)]
    assert rows == [(1, None), (7, None), (0, 6)]
    save_screenshot(page, artifacts_dir / "e2e-page.png")

    page.reload()
    slate(page).wait_for()
    assert session_id(page) == session
    expect(
        page.get_by_text("Total Attempts: 3 | Correct Predictions: 2 | Realized Accuracy: 66.7%")
    ).to_be_visible()
    expect(page.get_by_text("Confirmed: 0 | Corrected: 1 | No feedback: 2")).to_be_visible()
    table = history_table(page, rows=3)  # Index, Prediction, Actual, Confidence, Model, Time
    assert [(row[0], row[1], row[2]) for row in table] == [
        ("3", "0", "6"),
        ("2", "7", ""),
        ("1", "1", ""),
    ]

    draw(page, DIGIT_STROKES[7])
    clear_slate(page)
    slate_button(page, "Predict").click()
    expect(page.get_by_text(EMPTY_MESSAGE)).to_be_visible()
    assert len(logged_rows(sqlite_url, session)) == 3
    page.context.close()


def test_drawing_with_a_finger_on_a_phone(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    page = open_page(chromium, start_app(sqlite_url), phone=True)

    draw_by_touch(page, DIGIT_STROKES[7])
    slate_button(page, "Predict").tap()

    expect(prediction_heading(page)).to_have_text(re.compile(r"^Prediction: 7"))
    page.context.close()


@pytest.mark.postgres
def test_page_logs_to_postgresql(
    start_app: Callable[[str], str], chromium: Browser, postgres_url: str
) -> None:
    page = open_page(chromium, start_app(postgres_url))
    session = session_id(page)

    draw(page, DIGIT_STROKES[7])
    assert predict(page) == 7
    press(page, "digit-7")
    expect(page.get_by_text("Thanks: 7 confirmed.")).to_be_visible()
    assert [tuple(r)[:2] for r in logged_rows(postgres_url, session)] == [(7, 7)]

    page.reload()
    expect(
        page.get_by_text("Total Attempts: 1 | Correct Predictions: 1 | Realized Accuracy: 100.0%")
    ).to_be_visible()
    assert session_id(page) == session
    page.context.close()


def test_page_in_api_mode_logs_through_the_model_service(
    tmp_path: Path, chromium: Browser, postgres_url: str
) -> None:
    """DIGITREC_API_URL set: the page sends drawings to a live `digitrec serve`, which logs."""
    with ExitStack() as stack:
        api_env = app_environment(postgres_url, tmp_path / "api-data")
        api_url = stack.enter_context(running_api(api_env, tmp_path / "api.log"))
        # The page's own database setting points at an unused file: every row must come
        # from the service.
        page_env = app_environment(f"sqlite:///{tmp_path / 'unused.sqlite3'}", tmp_path / "page")
        page_env["DIGITREC_API_URL"] = api_url
        page = open_page(chromium, stack.enter_context(running_app(page_env, tmp_path / "app.log")))
        session = session_id(page)

        draw(page, DIGIT_STROKES[1])
        assert predict(page) == 1
        press(page, "digit-4")
        expect(page.get_by_text("Thanks: recorded 4 as the right answer.")).to_be_visible()
        assert [tuple(r)[:2] for r in logged_rows(postgres_url, session)] == [(1, 4)]
        assert not (tmp_path / "unused.sqlite3").exists()
        page.context.close()
