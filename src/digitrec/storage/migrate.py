"""Bring a database's schema to the latest Alembic revision, from inside the installed app."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from digitrec.storage.engine import create_engine_from_url, is_sqlite
from digitrec.storage.repository import StorageUnavailableError

# Any constant works: it only has to be the same for every process of this app.
PG_MIGRATION_LOCK_KEY = 0x64696769  # "digi"


def alembic_config() -> Config:
    """The Alembic configuration packaged with digitrec (works from an installed wheel)."""
    folder = Path(str(resources.files("digitrec.storage")))
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder / "migrations"))
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision a database is stamped with; None for an empty database."""
    engine = create_engine_from_url(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url`; safe when several processes start at once."""
    engine = create_engine_from_url(url, poolclass=NullPool)
    if is_sqlite(url):
        _begin_immediately(engine)
    config = alembic_config()
    try:
        with engine.connect() as conn, conn.begin():
            _lock_out_other_migrators(conn)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except sa_exc.OperationalError as exc:
        raise StorageUnavailableError(f"cannot migrate the database: {exc.orig}") from exc
    finally:
        engine.dispose()


def _lock_out_other_migrators(conn: Connection) -> None:
    # Two API workers starting together must not both create the table. PostgreSQL: an
    # advisory lock held until commit. SQLite: BEGIN IMMEDIATE (below) took the write lock.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})


def _begin_immediately(engine: Engine) -> None:
    """Make this (migration-only) SQLite engine take the write lock when a transaction begins."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
