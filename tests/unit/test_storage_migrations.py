"""Alembic migrations: they build the declared table, run idempotently and concurrently."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from digitrec.storage import create_engine_from_url, current_revision, head_revision, upgrade
from digitrec.storage.tables import Base, prediction_logs


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
    assert current_revision(database_url) == head_revision() == "0005"


def test_migrate_upgrade_from_several_starters_at_once_succeeds(database_url: str) -> None:
    # Two API workers and the page may all start together on an empty database.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: upgrade(database_url), range(4)))
    assert current_revision(database_url) == head_revision()


def _row(uid: str, prediction: int | None) -> dict[str, object]:
    return {
        "uid": uid,
        "timestamp": datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        "session_id": "s",
        "model": "default" if prediction is not None else "llm",
        "prediction": prediction,
        "confidence": None if prediction is None else 0.9,
        "probabilities": None if prediction is None else [0.1] * 10,
        "latency_ms": 1.0,
        "image_png": b"png",
    }


def test_unanswered_rows_arrive_with_0005_and_older_rows_survive_it(database_url: str) -> None:
    upgrade(database_url, "0004")
    engine = create_engine_from_url(database_url)
    with engine.begin() as conn:
        conn.execute(insert(prediction_logs).values(_row("before", 7)))
    upgrade(database_url)
    with engine.begin() as conn:
        conn.execute(insert(prediction_logs).values(_row("none", None)))
        rows = conn.execute(
            select(prediction_logs.c.uid, prediction_logs.c.prediction).order_by("id")
        ).all()
        kept = conn.execute(select(prediction_logs.c.probabilities)).scalars().first()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("before", 7), ("none", None)]
    assert json.loads(json.dumps(kept)) == [0.1] * 10


def test_an_unanswered_row_is_refused_before_0005(database_url: str) -> None:
    upgrade(database_url, "0004")
    engine = create_engine_from_url(database_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(prediction_logs).values(_row("none", None)))
    finally:
        engine.dispose()
