"""The page in a real browser: draw with the mouse, predict, correct, reload, clear."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fake_chat import KEY, MODEL, fake_chat_server
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
    settled,
    slate,
    slate_button,
)
from playwright.sync_api import Browser, Page, expect

from digitrec.inference import available_models
from digitrec.ui.formatting import (
    EMPTY_MESSAGE,
    HISTORY_SERVICE_DOWN_MESSAGE,
    NOT_A_DIGIT_MESSAGE,
    SERVICE_DOWN_MESSAGE,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The top of each of the ten digit buttons, rounded to a pixel, read in one go; null while any
# of them is not drawn.
DIGIT_BUTTON_TOPS = """() => {
    const buttons = [...Array(10).keys()].map(
        (d) => document.querySelector(`.st-key-digit-${d} button`));
    return buttons.every((b) => b !== null)
        ? buttons.map((b) => Math.round(b.getBoundingClientRect().y)) : null;
}"""


def history_table(page: Page, rows: int) -> list[list[str]]:
    """The table's cells (from the grid's accessible copy), once it shows `rows` rows."""
    body_rows = page.locator("[data-testid='stDataFrame'] table tbody tr")
    expect(body_rows).to_have_count(rows)

    def cells() -> list[list[str]] | None:
        found = [row.locator("td").all_inner_texts() for row in body_rows.all()]
        return found if len(found) == rows else None

    return settled(page, cells)  # read again until a rerun is done redrawing the grid


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
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str, artifacts_dir: Path
) -> None:
    page = open_page(chromium, start_app(sqlite_url), phone=True)  # 390x844, touch
    scrolled = "() => [window.scrollY, document.querySelector('[data-testid=stMain]').scrollTop]"
    before = page.evaluate(scrolled)

    draw_by_touch(page, DIGIT_STROKES[7])
    assert page.evaluate(scrolled) == before  # the finger drew; the page did not move
    slate_button(page, "Predict").tap()

    expect(prediction_heading(page)).to_have_text(re.compile(r"^Prediction: 7"))
    # The answer, its confidence and the model's input show without scrolling.
    for shown in (
        prediction_heading(page),
        page.get_by_text(re.compile(r"^Confidence: \d+%$")),
        page.get_by_role("img", name=re.compile("^The model input")),
    ):
        box = settled(page, shown.bounding_box)  # where it stays, once the rerun is done
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    # Feedback: ten digits in at most two rows, not a column. Measured all ten in one frame, once
    # they are all drawn and stay put: the page still reruns around them.
    rows = set(settled(page, lambda: page.evaluate(DIGIT_BUTTON_TOPS)))
    assert len(rows) <= 2, rows
    save_screenshot(page, artifacts_dir / "e2e-phone.png")
    page.context.close()


def test_a_refusal_on_a_phone_shows_without_scrolling(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    page = open_page(chromium, start_app(sqlite_url), phone=True)  # 390x844, touch

    draw_by_touch(page, [[(60, 240), (140, 40), (220, 240)], [(95, 160), (185, 160)]])  # an A
    slate_button(page, "Predict").tap()

    message = page.locator("h3", has_text=NOT_A_DIGIT_MESSAGE)
    expect(message).to_be_visible()
    # The sentence, the chance it is a digit and the model's input, all above the fold.
    for shown in (
        message,
        page.get_by_text(re.compile(r"^Chance it is one digit: \d{1,3}%")),
        page.get_by_role("img", name=re.compile("^The model input")),
    ):
        box = settled(page, shown.bounding_box)  # where it stays, once the rerun is done
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    page.context.close()


def test_enter_submits_typed_feedback_and_a_digit_click_keeps_the_focus(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    # A short window: the feedback sits below the fold, where a jump to the top would show.
    page = open_page(chromium, start_app(sqlite_url), viewport={"width": 1280, "height": 700})
    draw(page, DIGIT_STROKES[7])
    assert predict(page) == 7

    typed = page.locator(".st-key-feedback_text input")
    typed.fill("6")
    typed.press("Enter")
    expect(page.get_by_text("Thanks: recorded 6 as the right answer.")).to_be_visible()
    expect(typed).to_have_value("")

    digit = page.locator(".st-key-digit-7 button")
    digit.scroll_into_view_if_needed()
    scrolled = "() => document.querySelector('[data-testid=stMain]').scrollTop"
    before = page.evaluate(scrolled)
    digit.click()
    expect(page.get_by_text("Thanks: 7 confirmed.")).to_be_visible()
    expect(page.get_by_text("Confirmed: 1 | Corrected: 0")).to_be_visible()  # history caught up

    expect(digit).to_be_focused()
    assert page.evaluate(scrolled) == before
    page.keyboard.press("Tab")  # the keyboard carries on from the button, not from the top
    expect(page.locator(".st-key-digit-8 button")).to_be_focused()
    page.context.close()


def test_another_model_reads_the_drawing_again_and_takes_the_feedback(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    page = open_page(chromium, start_app(sqlite_url))
    session = session_id(page)
    draw(page, DIGIT_STROKES[7])
    assert predict(page) == 7
    expect(page.get_by_text(re.compile(r"^Model default"))).to_be_visible()

    page.locator(".st-key-model").click()
    page.get_by_role("option", name="lenet5").click()

    expect(page.get_by_text(re.compile(r"^Model lenet5"))).to_be_visible()  # no click needed
    expect(prediction_heading(page)).to_have_text("Prediction: 7")
    expect(page.get_by_text(re.compile(r"^Model default"))).to_have_count(0)
    press(page, "digit-7")
    expect(page.get_by_text("Thanks: 7 confirmed.")).to_be_visible()
    assert [tuple(r) for r in logged_rows(sqlite_url, session)] == [
        (7, None, "default"),
        (7, 7, "lenet5"),
    ]
    page.context.close()


def test_history_shows_local_times_and_what_a_phone_needs_first(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    url = start_app(sqlite_url)
    page = open_page(chromium, url, timezone_id="Asia/Tokyo")
    draw(page, DIGIT_STROKES[1])
    assert predict(page) == 1
    expect(page.get_by_text("(1 of 1 not reviewed, counted as correct)")).to_be_visible()
    table = page.locator("[data-testid='stDataFrame'] table")
    expect(table.locator("thead th")).to_have_count(6)
    assert table.locator("thead th").last.inner_text() == "Time (Asia/Tokyo)"
    shown = history_table(page, rows=1)[0][-1]
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    assert shown[:13] in {
        now.strftime("%Y-%m-%d %H"),
        (now - timedelta(hours=1)).strftime("%Y-%m-%d %H"),
    }

    phone = open_page(chromium, f"{url}/?session={session_id(page)}", phone=True)
    columns = phone.locator("[data-testid='stDataFrame'] table thead th")
    expect(columns.nth(2)).to_have_text("Actual")
    # The grid's accessible copy holds the columns it draws on screen: Actual is among them.
    assert columns.all_inner_texts()[:3] == ["#", "Prediction", "Actual"]
    phone.context.close()
    page.context.close()


# The contrast of a caption's text on the page (WCAG's ratio; the colour blended on white);
# null for a caption with no colour yet (one that a rerun is replacing).
CAPTION_CONTRAST_JS = """(caption) => {
  const numbers = getComputedStyle(caption).color.match(/[\\d.]+/g);
  if (!numbers) return null;
  const [r, g, b, a = 1] = numbers.map(Number);
  const channel = (c) => {
    const v = (c * a + 255 * (1 - a)) / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const light = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  return 1.05 / (light + 0.05);
}"""


def test_captions_are_readable_and_images_and_slate_are_named(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    page = open_page(chromium, start_app(sqlite_url))
    draw(page, DIGIT_STROKES[7])
    predict(page)
    expect(page.get_by_text("Total Attempts: 1 |")).to_be_visible()

    captions = page.locator("[data-testid='stCaptionContainer'], [data-testid='stImageCaption']")
    expect(captions.first).to_be_visible()

    def contrasts() -> list[float] | None:
        found = captions.evaluate_all(f"captions => captions.map({CAPTION_CONTRAST_JS})")
        return found if found and None not in found else None

    measured = settled(page, contrasts)
    assert min(measured) >= 4.5, measured
    assert slate(page).get_attribute("aria-label")
    images = page.locator("[data-testid='stMain'] img")
    alts = settled(page, lambda: images.evaluate_all("images => images.map(i => i.alt)"))
    assert len(alts) == 2 and all(alts), alts  # the model input and the example sheet
    page.context.close()


def test_a_model_service_that_is_down_is_named_not_the_database(
    tmp_path: Path, chromium: Browser
) -> None:
    env = app_environment(f"sqlite:///{tmp_path / 'unused.sqlite3'}", tmp_path / "page")
    env["DIGITREC_API_URL"] = "http://127.0.0.1:9"  # nothing listens there
    with running_app(env, tmp_path / "app.log") as url:
        page = open_page(chromium, url, ready_text=HISTORY_SERVICE_DOWN_MESSAGE)
        draw(page, DIGIT_STROKES[1])
        slate_button(page, "Predict").click()

        expect(page.get_by_text(SERVICE_DOWN_MESSAGE)).to_be_visible()
        expect(page.get_by_text(HISTORY_SERVICE_DOWN_MESSAGE)).to_be_visible()
        expect(page.get_by_text(re.compile("database"))).to_have_count(0)
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


def test_compare_shows_every_models_answer_to_one_drawing(
    start_app: Callable[[str], str], chromium: Browser, sqlite_url: str
) -> None:
    page = open_page(chromium, start_app(sqlite_url))
    session = session_id(page)
    draw(page, DIGIT_STROKES[7])
    assert predict(page) == 7

    page.get_by_role("button", name="Compare models").click()

    table = page.locator(".st-key-comparison [data-testid='stDataFrame'] table tbody tr")
    expect(table).to_have_count(len(available_models()))
    rows = [row.locator("td").all_inner_texts() for row in table.all()]
    assert [r[0].split(" v")[0] for r in rows] == available_models()  # Model, Answer, ...
    assert all(r[1] == "7" for r in rows)
    assert len(logged_rows(sqlite_url, session)) == 1 + len(available_models())
    page.context.close()


def test_compare_shows_the_chat_models_answer_with_its_confidence_unknown(
    chromium: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        chat, chat_url = stack.enter_context(fake_chat_server())
        env = app_environment(sqlite_url, tmp_path / "data")
        env |= {"DIGITREC_LLM_URL": chat_url, "DIGITREC_LLM_MODEL": MODEL}
        env["DIGITREC_LLM_API_KEY"] = KEY
        page = open_page(chromium, stack.enter_context(running_app(env, tmp_path / "app.log")))
        draw(page, DIGIT_STROKES[7])
        assert predict(page) == 7

        page.get_by_role("button", name="Compare models").click()

        table = page.locator(".st-key-comparison [data-testid='stDataFrame'] table tbody tr")
        expect(table).to_have_count(len(available_models()) + 1)
        rows = {r[0]: r for r in (row.locator("td").all_inner_texts() for row in table.all())}
        assert rows["llm"][1:3] == ["7", "unknown"]  # Answer, Confidence
        assert len(chat.requests) == 1
        page.context.close()
