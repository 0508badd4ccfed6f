"""`digitrec learn` end to end on a real database: labelled rows in, a gated candidate out.

The champion is a LeNet-5 from a dry run of `digitrec train` on the MNIST cache (`make test`
fetches it); the labels come through the service, as the page sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from drawing import DIGITS, draw_digit
from sqlalchemy import Engine, select, update

from digitrec.cli import main
from digitrec.config import Settings, get_settings
from digitrec.learner import labelled_rows
from digitrec.service import build_service
from digitrec.storage import create_engine_from_url, upgrade
from digitrec.storage.registry import CHAMPION, REJECTED, list_versions, register_version
from digitrec.storage.tables import prediction_logs

SESSIONS = 10
ROWS_PER_SESSION = 6


@pytest.fixture(scope="module")
def champion_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lenet5.pt and lenet5.onnx from `digitrec train --dry-run` on the MNIST cache."""
    out = tmp_path_factory.mktemp("champion")
    result = CliRunner().invoke(
        main, ["train", "--model", "lenet5", "--dry-run", "--epochs", "1", "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def learn_db(
    database_url: str,
    champion_files: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Engine]:
    """A database whose lenet5 champion (version 1) has weights, and 60 labelled rows."""
    upgrade(database_url)
    engine = create_engine_from_url(database_url)
    register_version(
        engine,
        "lenet5",
        (champion_files / "lenet5.onnx").read_bytes(),
        temperature=1.0,
        metrics={},
        trained_on={"shipped": True},
        status=CHAMPION,
        by="test",
        reason="the champion",
        checkpoint=(champion_files / "lenet5.pt").read_bytes(),
    )
    service = build_service(
        settings.model_copy(update={"database_url": database_url, "model_dir": champion_files})
    )
    digits = sorted(DIGITS)
    for session in range(SESSIONS):
        for row in range(ROWS_PER_SESSION):
            digit = digits[(session + row) % len(digits)]
            prediction = service.predict(
                draw_digit(digit), session_id=f"{session:032x}", model="lenet5"
            )
            service.submit_feedback(prediction.id, digit)
    assert service.outbox.count() == 0, "a seeded row was not written"
    service.close()
    monkeypatch.setenv("DIGITREC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def _learn(*args: str) -> Result:
    return CliRunner().invoke(main, ["learn", "--model", "lenet5", *args])


def test_learn_dry_run_reads_the_log_gates_and_registers_nothing(
    learn_db: Engine, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = _learn("--dry-run", "--min-feedback", "10", "--report", str(report))

    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["champion_version"] == 1 and written["candidate_version"] is None
    assert set(written["metrics"]) == {"champion", "candidate"}
    assert {"mnist_test", "feedback_held_out"} <= set(written["metrics"]["candidate"])
    gates = [reason.split(":")[0] for reason in written["reasons"]]
    assert gates == [
        "MNIST test accuracy",
        "held-out feedback accuracy",
        "held-out feedback calibration error",
        "labelled rows",
    ]
    assert "dry run: nothing registered" in result.output
    assert [row.version for row in list_versions(learn_db, "lenet5")] == [1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_learn_registers_the_candidate_and_records_the_verdict(
    learn_db: Engine, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = _learn("--min-feedback", "10", "--max-steps", "3", "--report", str(report))

    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    newest = list_versions(learn_db, "lenet5")[0]
    assert (newest.version, newest.parent_version) == (2, 1)
    assert written["candidate_version"] == 2
    assert newest.status == (CHAMPION if written["promoted"] else REJECTED)
    assert newest.metrics["gates"]["promoted"] is written["promoted"]
    assert newest.trained_on["labelled_rows"] == SESSIONS * ROWS_PER_SESSION
    if not written["promoted"]:  # the failing gates are the reason on record
        assert all(part.endswith("fail") for part in newest.status_reason.split("; "))


def test_learn_without_enough_labels_trains_nothing(learn_db: Engine) -> None:
    result = _learn("--min-feedback", "1000")
    assert result.exit_code == 0, result.output
    assert "fewer than 1000" in result.output
    assert [row.version for row in list_versions(learn_db, "lenet5")] == [1]


def test_the_learner_reads_which_labelled_rows_the_page_refused(learn_db: Engine) -> None:
    c = prediction_logs.c
    with learn_db.begin() as conn:  # the first row, as if the model had said "not a digit"
        first = conn.execute(select(c.id).order_by(c.timestamp, c.id).limit(1)).scalar_one()
        conn.execute(update(prediction_logs).where(c.id == first).values(is_digit=False))

    rows = labelled_rows(learn_db)

    assert len(rows) == SESSIONS * ROWS_PER_SESSION
    assert [row.refused for row in rows] == [True] + [False] * (len(rows) - 1)
