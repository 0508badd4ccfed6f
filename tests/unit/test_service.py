"""The service on both backends: predict-and-log, feedback, history, stats, concurrency."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from drawing import MARKS, draw_strokes, rgba_canvas
from PIL import Image

from digitrec.config import Settings
from digitrec.inference import UnknownModelError
from digitrec.preprocessing import DrawingTooSmallError, EmptyDrawingError, InvalidImageError
from digitrec.service import (
    InvalidDigitError,
    PredictionNotFoundError,
    PredictionService,
    build_service,
)
from digitrec.storage.guard import WRITE_DEADLINE_S


def test_service_predict_logs_the_row_with_both_images(
    db_service: PredictionService, digit_canvas: np.ndarray
) -> None:
    result = db_service.predict(digit_canvas, session_id="s1")

    assert result.logged and result.session_id == "s1" and result.model == "default"
    assert result.timestamp.tzinfo is not None
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert result.confidence == max(result.probabilities)
    assert result.prediction == int(np.argmax(result.probabilities))
    assert result.latency_ms > 0
    assert db_service.history().data == [result]

    model_input = Image.open(io.BytesIO(db_service.image_png(result.id)))
    assert (model_input.size, model_input.mode) == ((28, 28), "L")
    assert np.asarray(model_input).max() > 200  # white digit on black


def test_service_predict_stores_a_bare_png_as_sent_and_reencodes_anything_more(
    service: PredictionService, digit_canvas: np.ndarray
) -> None:
    bare = _png(digit_canvas)  # the slate's PNG: 8-bit RGBA pixels and nothing else
    with_metadata = _png(digit_canvas, icc_profile=b"\0" * 4096)

    assert _canvas_png(service, service.predict(bare, session_id="s1").id) == bare
    for upload in (bare + b"junk after the end" * 1000, with_metadata):
        stored = _canvas_png(service, service.predict(upload, session_id="s1").id)
        assert b"junk" not in stored and b"iCCP" not in stored
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), digit_canvas)


def _png(pixels: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def test_service_predict_reencodes_jpeg_and_arrays_as_png(
    service: PredictionService, digit_canvas: np.ndarray, digit_jpeg: bytes
) -> None:
    from_jpeg = Image.open(
        io.BytesIO(_canvas_png(service, service.predict(digit_jpeg, session_id="s").id))
    )
    from_array = Image.open(
        io.BytesIO(_canvas_png(service, service.predict(digit_canvas, session_id="s").id))
    )
    assert from_jpeg.format == from_array.format == "PNG"
    assert from_jpeg.size == (280, 280)
    assert np.array_equal(np.asarray(from_array), digit_canvas)  # lossless, RGBA kept


@pytest.mark.parametrize(
    ("image", "model", "error"),
    [
        (np.zeros((280, 280), dtype=np.uint8), None, EmptyDrawingError),
        (rgba_canvas(draw_strokes(MARKS["click"])), None, DrawingTooSmallError),
        (rgba_canvas(draw_strokes(MARKS["tick"])), None, DrawingTooSmallError),
        (b"not an image", None, InvalidImageError),
        (np.eye(280, dtype=np.uint8) * 255, "no-such-model", UnknownModelError),
    ],
)
def test_service_predict_reraises_input_errors_and_logs_nothing(
    service: PredictionService, image: object, model: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        service.predict(image, session_id="s1", model=model)  # type: ignore[arg-type]
    assert service.history().count == 0


def test_service_predict_runs_the_named_model(
    make_digit: Callable[..., np.ndarray], service: PredictionService
) -> None:
    result = service.predict(make_digit("one"), session_id="s1", model="lenet5")
    assert result.model == "lenet5"
    assert service.models() == ["default", "lenet5"]


def test_service_feedback_is_stored_and_can_be_changed(
    make_digit: Callable[..., np.ndarray], db_service: PredictionService
) -> None:
    result = db_service.predict(make_digit("one"), session_id="s1")
    first = db_service.submit_feedback(result.id, 4)
    second = db_service.submit_feedback(result.id, 1)
    assert (first.actual, second.actual) == (4, 1)
    assert first.feedback_at is not None and second.feedback_at is not None
    assert second.feedback_at >= first.feedback_at
    (row,) = db_service.history().data
    assert (row.id, row.actual, row.prediction) == (result.id, 1, result.prediction)


@pytest.mark.parametrize("actual", [True, False, "12", "a", "7", 12, -1, 3.0, 10**20])
def test_service_feedback_rejects_anything_but_a_digit(
    make_digit: Callable[..., np.ndarray], service: PredictionService, actual: object
) -> None:
    result = service.predict(make_digit("one"), session_id="s1")
    with pytest.raises(InvalidDigitError, match="0 to 9"):
        service.submit_feedback(result.id, actual)  # type: ignore[arg-type]
    assert service.history().data[0].actual is None


def test_service_feedback_none_says_not_a_digit_and_a_digit_replaces_it(
    make_digit: Callable[..., np.ndarray], service: PredictionService
) -> None:
    result = service.predict(make_digit("one"), session_id="s1")

    labelled = service.submit_feedback(result.id, None)
    assert (labelled.actual, labelled.not_a_digit) == (None, True)
    assert labelled.feedback_at is not None
    stats = service.stats()
    assert (stats.not_a_digit, stats.no_feedback, stats.total) == (1, 0, 1)

    relabelled = service.submit_feedback(result.id, 1)
    assert (relabelled.actual, relabelled.not_a_digit) == (1, False)
    assert service.stats().not_a_digit == 0


def test_service_feedback_accepts_numpy_integers(
    make_digit: Callable[..., np.ndarray], service: PredictionService
) -> None:
    result = service.predict(make_digit("one"), session_id="s1")
    assert service.submit_feedback(result.id, np.int64(0)).actual == 0  # type: ignore[arg-type]


def test_service_feedback_unknown_id_raises_not_found(db_service: PredictionService) -> None:
    with pytest.raises(PredictionNotFoundError):
        db_service.submit_feedback("0" * 32, 3)
    with pytest.raises(PredictionNotFoundError):
        db_service.image_png("0" * 32)


def test_service_history_is_newest_first_paged_and_filtered(
    make_digit: Callable[..., np.ndarray], db_service: PredictionService
) -> None:
    made = [db_service.predict(make_digit("one"), session_id="a") for _ in range(4)]
    other = db_service.predict(make_digit("zero"), session_id="b")

    page = db_service.history(session_id="a", limit=2, offset=1)
    assert page.count == 4
    assert [p.id for p in page.data] == [made[2].id, made[1].id]
    everything = db_service.history()
    assert everything.count == 5 and everything.data[0].id == other.id
    assert db_service.history(session_id="nobody").count == 0
    with pytest.raises(ValueError):
        db_service.history(limit=-1)


def test_service_stats_match_a_reference_computation(
    make_digit: Callable[..., np.ndarray], db_service: PredictionService
) -> None:
    rng = random.Random(0)
    rows = []
    for i in range(24):
        result = db_service.predict(make_digit(["one", "zero", "seven"][i % 3]), session_id="s")
        actual = rng.choice([None, None, result.prediction, rng.randrange(10)])
        if actual is not None:
            db_service.submit_feedback(result.id, actual)
        rows.append((result.prediction, actual))
    db_service.predict(make_digit("one"), session_id="elsewhere")

    stats = db_service.stats(session_id="s")

    labelled = [(p, a) for p, a in rows if a is not None]
    assert stats.total == 24
    assert stats.no_feedback == 24 - len(labelled)
    assert stats.confirmed == sum(p == a for p, a in labelled)
    assert stats.corrected == sum(p != a for p, a in labelled)
    assert stats.correct == stats.no_feedback + stats.confirmed
    assert stats.realized_accuracy == pytest.approx(stats.correct / 24)
    for digit in range(10):
        mine = [p for p, a in labelled if a == digit]
        expected = sum(p == digit for p in mine) / len(mine) if mine else None
        assert stats.per_digit_accuracy[digit] == expected
        for predicted in range(10):
            assert stats.confusion[digit][predicted] == labelled.count((predicted, digit))
    assert stats.pending_writes == 0
    assert db_service.stats().total == 25


def test_service_stats_of_an_empty_log_have_no_accuracy(service: PredictionService) -> None:
    stats = service.stats()
    assert (stats.total, stats.realized_accuracy) == (0, None)
    assert stats.per_digit_accuracy == dict.fromkeys(range(10))
    assert stats.confusion == [[0] * 10 for _ in range(10)]


def test_service_concurrent_predictions_lose_no_row(
    make_digit: Callable[..., np.ndarray], db_service: PredictionService
) -> None:
    images = [make_digit(shape) for shape in ("one", "zero", "seven")]

    def predict(i: int) -> str:
        return db_service.predict(images[i % 3], session_id=f"s{i % 4}").id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(predict, range(64)))

    history = db_service.history(limit=1000)
    assert history.count == 64
    assert sorted(p.id for p in history.data) == sorted(ids)
    assert all(p.logged for p in history.data)


def test_service_ready_reports_model_database_and_outbox(
    service: PredictionService, settings: Settings, tmp_path: Path
) -> None:
    outbox = {"pending": 0, "capacity": settings.outbox_capacity}
    assert service.ready() == {"model": True, "database": True, "outbox": outbox}
    # No model file and a registry that has none either: not ready.
    fresh = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'fresh.db'}"})
    missing = build_service(fresh, model_dir=tmp_path / "empty")
    assert missing.ready() == {"model": False, "database": True, "outbox": outbox}
    assert missing.models() == []
    missing.close()


def test_the_write_deadline_comes_from_the_settings(settings: Settings) -> None:
    patient = build_service(settings.model_copy(update={"db_write_deadline_s": 2.5}))
    assert patient.guard.deadline_s == 2.5
    patient.close()
    # Unset: the guard's own default, which the outage tests and docs/deployment.md rely on.
    unset = build_service(settings.model_copy(update={"db_write_deadline_s": None}))
    assert unset.guard.deadline_s == WRITE_DEADLINE_S == 0.75
    unset.close()


def test_a_replica_needs_nothing_but_the_database(
    service: PredictionService, settings: Settings, tmp_path: Path, digit_png: bytes
) -> None:
    # `service` registered its model files; a replica with no model folder serves them.
    replica = build_service(settings, model_dir=tmp_path / "empty")
    try:
        assert replica.models() == ["default", "lenet5"]
        prediction = replica.predict(digit_png, session_id="s1")
        assert (prediction.model, prediction.model_version) == ("default", 1)
        assert prediction.probabilities == service.predict(digit_png).probabilities
    finally:
        replica.close()


def test_service_build_creates_the_data_dir_and_migrates(
    make_digit: Callable[..., np.ndarray], tmp_path: Path, tiny_model_dir: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "fresh" / "data", database_url=None)
    built = build_service(settings, model_dir=tiny_model_dir)
    built.predict(make_digit("one"), session_id="s1")
    built.close()
    assert (settings.data_dir / "digitrec.sqlite3").is_file()
    assert build_service(settings, model_dir=tiny_model_dir).history().count == 1


def test_service_import_has_no_side_effects(tmp_path: Path) -> None:
    data_dir = tmp_path / "untouched"
    env = {**os.environ, "DIGITREC_DATA_DIR": str(data_dir)}
    code = "import digitrec.service, digitrec.storage"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert not data_dir.exists()


def _canvas_png(service: PredictionService, uid: str) -> bytes:
    from sqlalchemy import select

    from digitrec.storage import prediction_logs

    with service.engine.connect() as conn:
        query = select(prediction_logs.c.canvas_png).where(prediction_logs.c.uid == uid)
        return bytes(conn.execute(query).scalar_one())
