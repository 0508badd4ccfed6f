"""Several worker processes share one database (as the API's uvicorn workers do)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from credentials import sid
from drawing import draw_digit
from sqlalchemy import text

from digitrec.config import Settings
from digitrec.service import build_service
from digitrec.storage import create_engine_from_url

PROCESSES = 3
PREDICTIONS_EACH = 15


def _predict_many(settings_json: str, digit: int, count: int) -> None:
    image = draw_digit(digit)
    service = build_service(Settings.model_validate_json(settings_json))
    for _ in range(count):
        assert service.predict(image, session_id=str(digit)).logged
    service.close()


def test_workers_several_processes_predicting_at_once_lose_no_row(
    database_url: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, model_dir=tiny_model_dir
    )
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_predict_many,
            args=(settings.model_dump_json(), [1, 0][i % 2], PREDICTIONS_EACH),
        )
        for i in range(PROCESSES)
    ]
    for worker in workers:  # all start on an empty database: each one migrates
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0

    service = build_service(settings)
    assert service.history().count == PROCESSES * PREDICTIONS_EACH
    assert service.stats().pending_writes == 0
    service.close()


@pytest.mark.postgres
def test_postgres_timestamps_read_back_in_utc_whatever_the_session_zone(
    postgres_url: str, tmp_path: Path, tiny_model_dir: Path, make_digit: Callable[..., np.ndarray]
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=postgres_url, model_dir=tiny_model_dir
    )
    service = build_service(settings)
    made = service.predict(make_digit("one"), session_id=sid("s"))
    service.close()

    engine = create_engine_from_url(postgres_url)
    with engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'America/New_York'"))
        stored = conn.execute(text("SELECT timestamp FROM prediction_logs")).scalar_one()
    engine.dispose()
    assert stored == made.timestamp  # same instant

    service = build_service(settings)
    (row,) = service.history().data
    assert row.timestamp == made.timestamp and row.timestamp.utcoffset() is not None
    assert row.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    service.close()
