"""Run the real page with Streamlit's AppTest, on a throwaway database and the shipped models."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deadlines import PATIENT_WRITE_DEADLINE_S
from streamlit.testing.v1 import AppTest

from digitrec.config import Settings, get_settings
from digitrec.service import PredictionService, build_service
from digitrec.ui.launch import PAGE_PATH

# The first run loads a model and migrates the database; PostgreSQL adds a little more.
RUN_TIMEOUT_S = 60


@pytest.fixture
def page_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str
) -> Iterator[Callable[[str], Settings]]:
    """Point the page at a database (through the environment, as in production)."""

    def configure(database_url: str) -> Settings:
        monkeypatch.setenv("DIGITREC_DATABASE_URL", database_url)
        monkeypatch.setenv("DIGITREC_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("DIGITREC_DB_WRITE_DEADLINE_S", str(PATIENT_WRITE_DEADLINE_S))
        for name in ("DIGITREC_API_URL", "DIGITREC_MODEL_DIR", "DIGITREC_DEFAULT_MODEL"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()
        return get_settings()

    configure(sqlite_url)
    yield configure
    get_settings.cache_clear()


@pytest.fixture
def api_url(page_settings: Callable[[str], Settings]) -> Iterator[str]:
    """The model service (the real FastAPI app) on a free port, on the page's database."""
    import uvicorn

    from digitrec.api.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def make_app(page_settings: Callable[[str], Settings]) -> Callable[..., AppTest]:
    """A fresh browser session on the page; `session` puts a session id in its URL."""

    def make(session: str | None = None) -> AppTest:
        at = AppTest.from_file(str(PAGE_PATH), default_timeout=RUN_TIMEOUT_S)
        if session is not None:
            at.query_params["session"] = session
        return at

    return make


@pytest.fixture
def app(make_app: Callable[..., AppTest]) -> AppTest:
    """The page after its first run, on a fresh SQLite database."""
    return make_app().run()


@pytest.fixture
def db_app(
    database_url: str, page_settings: Callable[[str], Settings], make_app: Callable[..., AppTest]
) -> AppTest:
    """The page after its first run, once on SQLite and once on PostgreSQL."""
    page_settings(database_url)
    return make_app().run()


@pytest.fixture
def page_service() -> Iterator[Callable[[], PredictionService]]:
    """Open a second service on the page's current database, to check what the page wrote."""
    opened: list[PredictionService] = []

    def open_service() -> PredictionService:
        opened.append(build_service(get_settings()))
        return opened[-1]

    yield open_service
    for built in opened:
        built.close()
