"""The model registry: every version of every model, in the database every replica shares.

One champion per name is served; a candidate waits for the learning gates; a champion that is
replaced is retired, one that is rolled back is rejected. Each change records who made it
and why. Only these functions read or write `model_versions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.engine import RowMapping

from digitrec.contract import UnknownModelError
from digitrec.storage.repository import run_in_transaction
from digitrec.storage.tables import model_versions

CANDIDATE, CHAMPION, REJECTED, RETIRED = "candidate", "champion", "rejected", "retired"

# Everything but the bytes: what listings and the API show.
SUMMARY_COLUMNS = tuple(c for c in model_versions.c if c.name not in ("id", "onnx", "checkpoint"))


class ChampionRef(NamedTuple):
    """Which version of a name serves, and the digest of its ONNX bytes."""

    version: int
    sha256: str


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of a model file's bytes."""
    return hashlib.sha256(data).hexdigest()


def register_version(
    engine: Engine,
    name: str,
    onnx: bytes,
    *,
    temperature: float,
    metrics: Mapping[str, Any],
    trained_on: Mapping[str, Any],
    status: str = CANDIDATE,
    by: str,
    reason: str,
    parent_version: int | None = None,
    checkpoint: bytes | None = None,
    version: int | None = None,
) -> int:
    """Add a version of `name` (the next one, unless `version` is given) and return its number.

    Two writers adding the same number: one fails (StorageUnavailableError caused by an
    IntegrityError) and changes nothing.
    """

    def work(conn: Connection) -> int:
        if version is not None:
            return _insert(conn, version)
        newest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
        ).scalar_one()
        return _insert(conn, (newest or 0) + 1)

    def _insert(conn: Connection, number: int) -> int:
        now = datetime.now(UTC)
        if status == CHAMPION:
            _retire_champion(conn, name, now, by, f"replaced by version {number}")
        conn.execute(
            model_versions.insert().values(
                name=name,
                version=number,
                parent_version=parent_version,
                created_at=now,
                onnx=onnx,
                sha256=sha256_of(onnx),
                checkpoint=checkpoint,
                temperature=temperature,
                metrics=dict(metrics),
                trained_on=dict(trained_on),
                status=status,
                status_changed_at=now,
                status_by=by,
                status_reason=reason,
            )
        )
        return number

    return run_in_transaction(engine, work)


def list_versions(engine: Engine, name: str | None = None) -> list[RowMapping]:
    """Every version (of one name), newest first, without the bytes."""
    query = select(*SUMMARY_COLUMNS).order_by(
        model_versions.c.name, model_versions.c.version.desc()
    )
    if name is not None:
        query = query.where(model_versions.c.name == name)
    return run_in_transaction(engine, lambda conn: list(conn.execute(query).mappings()))


def champions(engine: Engine) -> dict[str, ChampionRef]:
    """The serving version of each name: one small query, cheap enough to poll."""
    c = model_versions.c
    query = select(c.name, c.version, c.sha256).where(c.status == CHAMPION)
    rows = run_in_transaction(engine, lambda conn: conn.execute(query).all())
    return {name: ChampionRef(version, digest) for name, version, digest in rows}


def fetch_onnx(engine: Engine, name: str, version: int) -> bytes:
    """A version's ONNX bytes, checked against the digest stored with them."""
    row = _one(engine, name, version, model_versions.c.onnx, model_versions.c.sha256)
    if sha256_of(row.onnx) != row.sha256:
        raise ValueError(f"{name} version {version}: the stored model does not match its digest")
    return bytes(row.onnx)


def fetch_checkpoint(engine: Engine, name: str, version: int) -> bytes | None:
    """A version's torch checkpoint bytes; None when it was registered without one."""
    row = _one(engine, name, version, model_versions.c.checkpoint)
    return None if row.checkpoint is None else bytes(row.checkpoint)


def promote(engine: Engine, name: str, version: int, *, by: str, reason: str) -> None:
    """Make `version` the champion of `name`; the champion it replaces is retired."""

    def work(conn: Connection) -> None:
        now = datetime.now(UTC)
        _retire_champion(conn, name, now, by, f"replaced by version {version}")
        _set_status(conn, name, version, CHAMPION, now, by, reason)

    _one(engine, name, version, model_versions.c.version)  # unknown: UnknownModelError
    run_in_transaction(engine, work)


def set_status(
    engine: Engine, name: str, version: int, status: str, *, by: str, reason: str
) -> None:
    """Record a version's new standing (a candidate rejected by the gates, say)."""
    _one(engine, name, version, model_versions.c.version)
    now = datetime.now(UTC)
    run_in_transaction(
        engine, lambda conn: _set_status(conn, name, version, status, now, by, reason)
    )


def previous_champion(engine: Engine, name: str) -> int | None:
    """The version that served before the current champion (the newest retired one)."""
    c = model_versions.c
    query = (
        select(c.version)
        .where(c.name == name, c.status == RETIRED)
        .order_by(c.status_changed_at.desc(), c.version.desc())
        .limit(1)
    )
    return run_in_transaction(engine, lambda conn: conn.execute(query).scalar_one_or_none())


def rollback(engine: Engine, name: str, *, by: str, reason: str) -> int:
    """Serve the previous champion again; the current one is rejected. Returns the version."""
    previous = previous_champion(engine, name)
    if previous is None:
        raise UnknownModelError(f"{name} has no earlier champion to roll back to")
    current = champions(engine).get(name)

    def work(conn: Connection) -> None:
        now = datetime.now(UTC)
        if current is not None:
            _set_status(conn, name, current.version, REJECTED, now, by, reason)
        _set_status(conn, name, previous, CHAMPION, now, by, reason)

    run_in_transaction(engine, work)
    return previous


def _retire_champion(conn: Connection, name: str, now: datetime, by: str, reason: str) -> None:
    c = model_versions.c
    conn.execute(
        update(model_versions)
        .where(c.name == name, c.status == CHAMPION)
        .values(status=RETIRED, status_changed_at=now, status_by=by, status_reason=reason)
    )


def _set_status(
    conn: Connection, name: str, version: int, status: str, now: datetime, by: str, reason: str
) -> None:
    c = model_versions.c
    conn.execute(
        update(model_versions)
        .where(c.name == name, c.version == version)
        .values(status=status, status_changed_at=now, status_by=by, status_reason=reason)
    )


def _one(engine: Engine, name: str, version: int, *columns: Any) -> Any:
    c = model_versions.c
    query = select(*columns).where(c.name == name, c.version == version)
    row = run_in_transaction(engine, lambda conn: conn.execute(query).first())
    if row is None:
        raise UnknownModelError(f"{name} has no version {version}")
    return row
