"""Alembic environment: runs on the connection `digitrec.storage.migrate.upgrade` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from digitrec.storage.engine import create_engine_from_url
from digitrec.storage.tables import Base

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL for the URL's dialect instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one made from ``sqlalchemy.url``."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: call digitrec.storage.migrate.upgrade(url)")
    engine = create_engine_from_url(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite alters tables by copying them; Alembic does that in batch mode.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
