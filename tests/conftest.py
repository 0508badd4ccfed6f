"""Shared fixtures: throwaway databases (SQLite and a real PostgreSQL), a tiny model, images."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from credentials import ADMIN_TOKEN
from deadlines import PATIENT_WRITE_DEADLINE_S
from drawing import draw_digit, encode_image, rgba_canvas
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool
from tiny_onnx import write_tiny_onnx

from digitrec.config import Settings, get_settings
from digitrec.data import DataUnavailableError, Mnist, load_mnist
from digitrec.service import PredictionService, build_service

# CI points this at a real server (trust auth), e.g.
# postgresql+psycopg://postgres@127.0.0.1:5432/digitrec_test
POSTGRES_URL_ENV = "DIGITREC_TEST_POSTGRES_URL"


# --- images -----------------------------------------------------------------------------


DIGIT_NAMES = {"zero": 0, "one": 1, "seven": 7}  # what `make_digit` draws


@pytest.fixture
def make_digit() -> Callable[..., np.ndarray]:
    """make_digit("zero"): a 280x280 white-on-black drawing of "zero", "one" or "seven"."""
    return lambda name: draw_digit(DIGIT_NAMES[name])


@pytest.fixture
def digit_jpeg() -> bytes:
    """A drawn digit as JPEG bytes (a photo upload)."""
    return encode_image(draw_digit(0), "JPEG")


@pytest.fixture
def digit_canvas() -> np.ndarray:
    """A 280x280 RGBA canvas as the page's drawing component returns it: ink on transparent."""
    return rgba_canvas(draw_digit(7), clear=True, colour=255)


@pytest.fixture
def digit_png() -> bytes:
    """A drawn digit as PNG bytes, as the API receives it."""
    return encode_image(draw_digit(1))


@pytest.fixture(scope="session")
def mnist_cache() -> Mnist:
    """MNIST from the local cache; fails, never skips, without it (`digitrec data`, which CI
    runs first)."""
    cache = get_settings().data_dir / "mnist"
    try:
        return load_mnist(cache)
    except DataUnavailableError as exc:
        pytest.fail(f"MNIST is not cached at {cache}: run `digitrec data` first ({exc})")


# --- a tiny model -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding random-weight "default" and "lenet5" models (fast, offline)."""
    folder = tmp_path_factory.mktemp("models")
    write_tiny_onnx(folder / "default.onnx", seed=0)
    write_tiny_onnx(folder / "lenet5.onnx", seed=1)
    return folder


# --- databases ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'digitrec-test.sqlite3'}"


class DisposablePostgres:
    """A PostgreSQL cluster of our own (pgserver's binaries) that a test may stop and start."""

    def __init__(self) -> None:
        import pgserver

        # Not under pytest's temporary root: pytest keeps that private (0700), and as root
        # pgserver runs the server as an unprivileged user who must reach the data folder.
        self.pgdata = Path(tempfile.mkdtemp(prefix="digitrec-pg-"))
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        self.url = _psycopg_url(self._server.get_uri())

    def stop(self) -> None:
        """Kill the server the way a crash would (no clean shutdown)."""
        from pgserver.postgres_server import POSTGRES_BIN_PATH

        pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
        subprocess.run(
            [pg_ctl, "-D", str(self.pgdata), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
            user=self._server.system_user,
            timeout=30,
        )

    def start(self) -> None:
        """Start it again on the same socket (crash recovery runs first)."""
        self._server.ensure_postgres_running()

    def cleanup(self) -> None:
        """Stop the server and delete its data."""
        self._server.cleanup()


def _psycopg_url(url: str | URL) -> URL:
    return make_url(url).set(drivername="postgresql+psycopg")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[URL]:
    """Admin URL of a real PostgreSQL: $DIGITREC_TEST_POSTGRES_URL, else a throwaway pgserver.

    Never skips: if neither is available, every PostgreSQL test errors.
    """
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        yield _psycopg_url(configured)
        return
    server = DisposablePostgres()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_admin(postgres_server: URL) -> Iterator[Engine]:
    """An autocommit engine on the server's maintenance database, for CREATE/DROP DATABASE."""
    engine = create_engine(
        postgres_server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    yield engine
    engine.dispose()


@pytest.fixture
def make_postgres_database(
    postgres_server: URL, postgres_admin: Engine
) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty PostgreSQL databases (URLs), all dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"digitrec_test_{uuid.uuid4().hex[:12]}"
        with postgres_admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        made.append(name)
        return postgres_server.set(database=name).render_as_string(hide_password=False)

    yield make
    with postgres_admin.connect() as conn:
        for name in made:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(make_postgres_database: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    return make_postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database URL: each test runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on each backend in turn, its schema migrated to the newest revision."""
    from digitrec.storage import create_engine_from_url, upgrade

    upgrade(database_url)
    built = create_engine_from_url(database_url)
    yield built
    built.dispose()


@pytest.fixture
def disposable_postgres() -> Iterator[DisposablePostgres]:
    """A PostgreSQL server of this test's own, which it may stop and start (outage tests)."""
    server = DisposablePostgres()
    try:
        yield server
    finally:
        server.cleanup()


# --- the service ------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, tiny_model_dir: Path) -> Settings:
    """Settings for one test: data in tmp_path, a fresh SQLite database, the tiny model."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=sqlite_url,
        api_url=None,
        model_dir=tiny_model_dir,
        default_model="default",
        admin_token=ADMIN_TOKEN,
        db_write_deadline_s=PATIENT_WRITE_DEADLINE_S,
    )


@pytest.fixture
def service(settings: Settings) -> Iterator[PredictionService]:
    """The in-process service on a fresh SQLite database with the tiny model."""
    built = build_service(settings)
    yield built
    built.close()


@pytest.fixture
def db_service(
    database_url: str, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[PredictionService]:
    """The service on each backend in turn (SQLite, then PostgreSQL)."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        model_dir=tiny_model_dir,
        db_write_deadline_s=PATIENT_WRITE_DEADLINE_S,
    )
    built = build_service(settings)
    yield built
    built.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With DIGITREC_FORBID_SKIPS=1 (CI), a skipped test makes the run fail."""
    if os.environ.get("DIGITREC_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        if reporter:
            reporter.write_line(f"{len(skipped)} test(s) skipped; CI forbids skips", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
