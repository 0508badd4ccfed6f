"""`digitrec models`: list, promote and roll back versions in a real (SQLite) registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from digitrec.cli import main
from digitrec.config import get_settings
from digitrec.model_store import register_shipped_models
from digitrec.storage import create_engine_from_url, upgrade
from digitrec.storage.registry import CANDIDATE, champions, register_version


@pytest.fixture
def registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    monkeypatch.setenv("DIGITREC_DATABASE_URL", url)
    monkeypatch.setenv("DIGITREC_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    upgrade(url)
    engine = create_engine_from_url(url)
    register_shipped_models(engine, tiny_model_dir)
    register_version(
        engine,
        "default",
        (tiny_model_dir / "lenet5.onnx").read_bytes(),
        temperature=1.0,
        metrics={"mnist_test": {"accuracy": 0.995}},
        trained_on={"rows": 60},
        status=CANDIDATE,
        by="test",
        reason="fine-tuned",
        parent_version=1,
    )
    register_version(
        engine,
        "default",
        b"broken",
        temperature=1.0,
        metrics={},
        trained_on={},
        by="test",
        reason="a corrupt upload",
    )
    yield engine
    engine.dispose()
    get_settings.cache_clear()


def test_models_list_shows_every_version_and_its_standing(registry: Engine) -> None:
    result = CliRunner().invoke(main, ["models", "list", "default"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[:4] == ["default", "3", "-", "candidate"]
    assert lines[2].split()[:5] == ["default", "2", "1", "candidate", "99.50%"]
    assert lines[3].split()[:4] == ["default", "1", "-", "champion"]


def test_models_promote_then_rollback(registry: Engine) -> None:
    runner = CliRunner()
    promoted = runner.invoke(main, ["models", "promote", "default", "2", "--reason", "checked"])
    assert promoted.exit_code == 0, promoted.output
    assert champions(registry)["default"].version == 2

    rolled = runner.invoke(main, ["models", "rollback", "default"])
    assert rolled.exit_code == 0, rolled.output
    assert champions(registry)["default"].version == 1


def test_models_promote_refuses_a_version_that_does_not_load(registry: Engine) -> None:
    result = CliRunner().invoke(main, ["models", "promote", "default", "3"])
    assert result.exit_code != 0
    assert "cannot be served" in result.output
    assert champions(registry)["default"].version == 1  # the champion stays


def test_models_promote_refuses_an_unknown_version(registry: Engine) -> None:
    result = CliRunner().invoke(main, ["models", "promote", "default", "9"])
    assert result.exit_code != 0 and "no version 9" in result.output
