"""A live page (a `streamlit run` subprocess) and Debian's Chromium to drive it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from live_app import app_environment, launch_chromium, running_app
from playwright.sync_api import Browser, Playwright, sync_playwright

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole run; each test opens its own tab."""
    browser = launch_chromium(playwright)
    yield browser
    browser.close()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start the page on a database (its own data folder in tmp_path); returns its URL."""
    with ExitStack() as stack:

        def start(database_url: str) -> str:
            env = app_environment(database_url, tmp_path / "data")
            return stack.enter_context(running_app(env, tmp_path / "streamlit.log"))

        yield start


@pytest.fixture
def artifacts_dir() -> Path:
    """Where screenshots are kept for a person to look at (gitignored)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
