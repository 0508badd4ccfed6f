"""The model registry on SQLite and PostgreSQL: register, promote, roll back, refuse corrupt
bytes, and the shipped models as version 1 champions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from tiny_onnx import write_tiny_onnx

from digitrec.contract import UnknownModelError
from digitrec.model_store import ModelStore, register_shipped_models
from digitrec.storage.registry import (
    CANDIDATE,
    CHAMPION,
    REJECTED,
    RETIRED,
    champions,
    fetch_onnx,
    list_versions,
    previous_champion,
    promote,
    register_version,
    rollback,
    set_status,
)
from digitrec.storage.tables import model_versions

BY = "test"


def _register(engine: Engine, onnx: bytes, status: str = CANDIDATE, name: str = "default") -> int:
    return register_version(
        engine,
        name,
        onnx,
        temperature=0.5,
        metrics={"mnist_test": {"accuracy": 0.99}},
        trained_on={"rows": 10},
        status=status,
        by=BY,
        reason="a test",
    )


def _statuses(engine: Engine) -> dict[int, str]:
    return {row.version: row.status for row in list_versions(engine, "default")}


def test_registry_numbers_versions_and_keeps_one_champion(engine: Engine) -> None:
    assert _register(engine, b"one", CHAMPION) == 1
    assert _register(engine, b"two") == 2
    assert champions(engine)["default"].version == 1

    promote(engine, "default", 2, by=BY, reason="gates held")

    assert champions(engine)["default"].version == 2
    assert _statuses(engine) == {1: RETIRED, 2: CHAMPION}
    assert fetch_onnx(engine, "default", 2) == b"two"
    newest = list_versions(engine, "default")[0]
    assert (newest.status_by, newest.status_reason) == (BY, "gates held")


def test_registry_rolls_back_to_the_previous_champion(engine: Engine) -> None:
    _register(engine, b"one", CHAMPION)
    _register(engine, b"two", CHAMPION)  # registering a champion retires the old one
    assert previous_champion(engine, "default") == 1

    assert rollback(engine, "default", by=BY, reason="worse in production") == 1

    assert _statuses(engine) == {1: CHAMPION, 2: REJECTED}


def test_registry_refuses_what_it_does_not_have(engine: Engine) -> None:
    with pytest.raises(UnknownModelError):
        promote(engine, "default", 7, by=BY, reason="no such version")
    with pytest.raises(UnknownModelError):
        rollback(engine, "default", by=BY, reason="nothing to go back to")
    _register(engine, b"one")
    set_status(engine, "default", 1, REJECTED, by=BY, reason="shuffled labels")
    assert _statuses(engine) == {1: REJECTED}


def test_registry_refuses_bytes_that_do_not_match_their_digest(engine: Engine) -> None:
    _register(engine, b"one", CHAMPION)
    with engine.begin() as conn:
        conn.execute(update(model_versions).values(onnx=b"tampered"))
    with pytest.raises(ValueError, match="digest"):
        fetch_onnx(engine, "default", 1)


def test_shipped_models_become_version_1_champions_once(
    engine: Engine, tiny_model_dir: Path
) -> None:
    assert register_shipped_models(engine, tiny_model_dir) == ["default", "lenet5"]
    assert register_shipped_models(engine, tiny_model_dir) == []
    assert {name: ref.version for name, ref in champions(engine).items()} == {
        "default": 1,
        "lenet5": 1,
    }


def test_model_store_serves_a_promoted_champion_and_never_a_corrupt_one(
    engine: Engine, tiny_model_dir: Path
) -> None:
    register_shipped_models(engine, tiny_model_dir)
    store = ModelStore(engine, tiny_model_dir, poll_s=None)
    store.refresh()
    assert store.predictor("default").version == 1

    # A new version (the lenet5 file's bytes under the name "default") is promoted.
    _register(engine, (tiny_model_dir / "lenet5.onnx").read_bytes(), CHAMPION)
    assert store.refresh() == ["default"]
    assert store.predictor("default").version == 2

    # A champion whose bytes do not load is never served: version 2 stays.
    _register(engine, b"not an onnx model", CHAMPION)
    assert store.refresh() == []
    assert store.predictor("default").version == 2
    store.close()


def test_replicas_starting_together_register_each_model_once(
    engine: Engine, tiny_model_dir: Path
) -> None:
    # Two API workers start at the same moment on an empty registry.
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: register_shipped_models(engine, tiny_model_dir), range(4)))
    versions = [(row.name, row.version, row.status) for row in list_versions(engine)]
    assert versions == [("default", 1, CHAMPION), ("lenet5", 1, CHAMPION)]


def _newer_release(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """The tiny model folder with another default.onnx, as a newer release would ship it."""
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "lenet5.onnx").write_bytes((tiny_model_dir / "lenet5.onnx").read_bytes())
    write_tiny_onnx(folder / "default.onnx", seed=5)
    return folder


def test_a_newer_shipped_model_replaces_a_shipped_champion(
    engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    register_shipped_models(engine, tiny_model_dir)

    assert register_shipped_models(engine, _newer_release(tmp_path, tiny_model_dir)) == ["default"]

    assert champions(engine)["default"].version == 2
    statuses = {(r.name, r.version): r.status for r in list_versions(engine)}
    assert statuses == {
        ("default", 2): CHAMPION,
        ("default", 1): RETIRED,
        ("lenet5", 1): CHAMPION,
    }
    assert register_shipped_models(engine, tmp_path / "release") == []  # once


def test_a_newer_shipped_model_waits_behind_a_champion_learned_here(
    engine: Engine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    register_shipped_models(engine, tiny_model_dir)
    learned = _register(engine, (tiny_model_dir / "lenet5.onnx").read_bytes(), CHAMPION)

    register_shipped_models(engine, _newer_release(tmp_path, tiny_model_dir))

    assert champions(engine)["default"].version == learned
    (newest, *_) = list_versions(engine, "default")
    assert (newest.version, newest.status) == (learned + 1, CANDIDATE)
    assert f"digitrec models promote default {learned + 1}" in newest.status_reason
