"""db/init.sql and db/create_table.sql build the same schema as the Alembic migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from digitrec.storage import create_engine_from_url, current_revision, head_revision, upgrade

DB_DIR = Path(__file__).resolve().parents[2] / "db"
# The container's entrypoint runs its scripts in name order.
SCRIPTS = sorted(DB_DIR.glob("*.sql"))
TABLES = ("prediction_logs", "model_versions", "alembic_version")

pytestmark = pytest.mark.postgres


def run_scripts(url: str, scripts: list[Path]) -> None:
    """Run SQL files the way psql -f would, without psql: through psycopg, in autocommit."""
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for script in scripts:
            conn.execute(script.read_text())  # type: ignore[call-overload]


def describe(engine: Engine) -> dict[str, Any]:
    """Everything SQLAlchemy can reflect of the app's tables, in a comparable form."""
    found = inspect(engine)
    schema: dict[str, Any] = {}
    for table in TABLES:
        schema[table] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], c["default"], c.get("autoincrement"))
                for c in found.get_columns(table)
            ],
            "primary_key": found.get_pk_constraint(table),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)
            ),
            "checks": sorted((c["name"], c["sqltext"]) for c in found.get_check_constraints(table)),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), i["unique"]) for i in found.get_indexes(table)
            ),
            "foreign_keys": found.get_foreign_keys(table),
        }
    return schema


def test_sql_scripts_match_the_alembic_schema(
    make_postgres_database: Callable[[], str],
) -> None:
    assert [s.name for s in SCRIPTS] == ["create_table.sql", "init.sql"]
    migrated_url, scripted_url = make_postgres_database(), make_postgres_database()
    upgrade(migrated_url)
    run_scripts(scripted_url, SCRIPTS)

    migrated = create_engine_from_url(migrated_url)
    scripted = create_engine_from_url(scripted_url)
    try:
        assert describe(scripted) == describe(migrated)
    finally:
        migrated.dispose()
        scripted.dispose()


def test_sql_scripts_stamp_head_so_migrating_on_start_is_a_no_op(postgres_url: str) -> None:
    run_scripts(postgres_url, SCRIPTS)
    assert current_revision(postgres_url) == head_revision()
    upgrade(postgres_url)  # would fail on CREATE TABLE if the stamp were missing
    assert current_revision(postgres_url) == head_revision()


def test_sql_scripts_can_run_twice_in_any_order(postgres_url: str) -> None:
    run_scripts(postgres_url, SCRIPTS)
    run_scripts(postgres_url, list(reversed(SCRIPTS)))
    engine = create_engine_from_url(postgres_url)
    with engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        zone = conn.exec_driver_sql("SHOW timezone").scalar()
    engine.dispose()
    assert versions == [(head_revision(),)]
    assert zone == "UTC"  # init.sql's database default, seen by new sessions
