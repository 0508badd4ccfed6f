"""db/create_table.sql is what `digitrec db sql` makes from the migrations, never hand-kept."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from digitrec.cli import main
from digitrec.storage import head_revision
from digitrec.storage.migrate import schema_sql

COMMITTED = Path(__file__).resolve().parents[2] / "db" / "create_table.sql"


def test_committed_create_table_sql_is_what_the_migrations_generate() -> None:
    assert COMMITTED.read_text() == schema_sql(), (
        "run: digitrec db sql --output db/create_table.sql"
    )


def test_schema_sql_is_guarded_and_stamps_the_head_revision() -> None:
    script = schema_sql()
    assert "IF to_regclass('alembic_version') IS NULL THEN" in script
    assert "INSERT INTO alembic_version" in script
    assert f"'{head_revision()}'" in script  # inserted, or updated to, the newest revision
    assert "CREATE TABLE prediction_logs" in script
    assert "BEGIN;" not in script and "RETURNING" not in script


def test_db_sql_command_writes_the_script(tmp_path: Path) -> None:
    out = tmp_path / "create_table.sql"
    result = CliRunner().invoke(main, ["db", "sql", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == schema_sql()
