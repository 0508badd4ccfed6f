"""Bring a database's schema to the latest Alembic revision, from inside the installed app."""

from __future__ import annotations

import io
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from digitrec.contract import StorageUnavailableError
from digitrec.storage.engine import create_engine_from_url, is_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

# Any constant works: it only has to be the same for every process of this app.
PG_MIGRATION_LOCK_KEY = 0x64696769  # "digi"
# How long a SQLite migrator waits for another one's write lock: several starters queue behind
# each other, each running every migration, and on a busy machine that passes the 5 s a
# request waits.
SQLITE_MIGRATION_WAIT_S = 120.0


# Alembic is imported inside the functions that use it: the service imports this module, and
# most processes never migrate.


def alembic_config() -> Config:
    """The Alembic configuration packaged with digitrec (works from an installed wheel)."""
    from alembic.config import Config

    folder = Path(str(resources.files("digitrec.storage")))
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder / "migrations"))
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str | URL) -> str | None:
    """The revision a database is stamped with; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine_from_url(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url`; safe when several processes start at once."""
    from alembic import command

    # No statement or lock timeout: a migration may rewrite a large table, and the second of
    # two starting workers waits for the first one's migration lock.
    engine = create_engine_from_url(
        url,
        poolclass=NullPool,
        statement_timeout_s=None,
        lock_timeout_s=None,
        busy_timeout_s=SQLITE_MIGRATION_WAIT_S,
    )
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


def schema_sql() -> str:
    """A PostgreSQL script that makes the latest schema in an empty database and stamps it.

    Alembic's offline mode writes the migrations' SQL; it is wrapped in one DO block that runs
    only while the database has no `alembic_version` table, so the script can run more than
    once, and a database that already has the schema is left for migrate-on-start.
    """
    from alembic import command

    config = alembic_config()
    config.output_buffer = io.StringIO()
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://")
    command.upgrade(config, head_revision(), sql=True)
    script = config.output_buffer.getvalue()
    statements = [
        # PL/pgSQL has nowhere to put what RETURNING gives back.
        re.sub(r"\s+RETURNING [\w.]+;$", ";", part.strip())
        for part in re.split(r"\n\s*\n", script)
        if part.strip() and part.strip() not in ("BEGIN;", "COMMIT;")
    ]
    lines = "\n\n".join(statements).splitlines()
    body = "\n".join(f"    {line}".rstrip() for line in lines)
    return SCHEMA_SQL_TEMPLATE.format(revision=head_revision(), body=body)


SCHEMA_SQL_TEMPLATE = """\
-- The schema as the Alembic migrations make it (revision {revision}), stamped so that the
-- app's migrate-on-start is a no-op. Generated by `digitrec db sql`; do not edit by hand.
-- Runs only in a database without the schema, so it is safe to run more than once.

DO $schema$
BEGIN
IF to_regclass('alembic_version') IS NULL THEN

{body}

END IF;
END
$schema$;
"""
