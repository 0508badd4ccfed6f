"""Alembic migrations: they build the declared table, run idempotently and concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from digitrec.storage import create_engine_from_url, current_revision, head_revision, upgrade
from digitrec.storage.tables import Base


def test_migrate_upgrade_builds_exactly_the_declared_schema(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine_from_url(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        names = {ix["name"] for ix in inspect(conn).get_indexes("prediction_logs")}
    engine.dispose()
    assert diff == []
    assert names >= {
        "ix_prediction_logs_session_id_timestamp_id",
        "ix_prediction_logs_timestamp_id",
    }


def test_migrate_upgrade_twice_is_a_no_op(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == head_revision() == "0004"


def test_migrate_upgrade_from_several_starters_at_once_succeeds(database_url: str) -> None:
    # Two API workers and the page may all start together on an empty database.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: upgrade(database_url), range(4)))
    assert current_revision(database_url) == head_revision()
