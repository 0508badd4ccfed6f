"""Read-only summaries of the prediction log for the Insights page: accuracy per period and
model over the labelled rows, and the latest corrected drawings. Each runs one transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Engine, case, func, literal_column, select
from sqlalchemy.engine import RowMapping

from digitrec.storage.repository import run_in_transaction
from digitrec.storage.tables import prediction_logs

HOUR, DAY = "hour", "day"
# Labelled rows spanning up to this long are counted per hour; longer spans per day (a week
# of hours is 168 points a model, too many to read).
HOURLY_SPAN = timedelta(days=2)

# SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC: cut the text.
_SQLITE_FORMATS = {HOUR: "'%Y-%m-%d %H:00:00'", DAY: "'%Y-%m-%d 00:00:00'"}


class PeriodAccuracy(NamedTuple):
    """How one model did on the rows labelled within one period (by prediction time)."""

    start: datetime  # UTC, the start of the hour or day
    model: str
    labelled: int
    correct: int  # the label equals the prediction


def accuracy_by_period(
    engine: Engine, session_id: str | None = None
) -> tuple[str, list[PeriodAccuracy]]:
    """The period used ("hour" or "day") and each model's accuracy in each period, oldest
    first, over the rows people labelled (one session's, or every session's for None)."""
    c = prediction_logs.c
    where: list[ColumnElement[bool]] = [c.actual.is_not(None)]
    if session_id is not None:
        where.append(c.session_id == session_id)
    span = select(func.min(c.timestamp), func.max(c.timestamp)).where(*where)

    def work(conn: Connection) -> tuple[str, list[PeriodAccuracy]]:
        first, last = conn.execute(span).one()
        if first is None:
            return HOUR, []
        unit = HOUR if last - first <= HOURLY_SPAN else DAY
        start = _period_start(conn.dialect.name, unit)
        correct = func.sum(case((c.actual == c.prediction, 1), else_=0))
        query = (
            select(start, c.model, func.count(), correct)
            .where(*where)
            .group_by(start, c.model)
            .order_by(start, c.model)
        )
        rows = conn.execute(query).all()
        return unit, [PeriodAccuracy(_utc(s), m, int(n), int(k)) for s, m, n, k in rows]

    return run_in_transaction(engine, work)


def latest_corrections(
    engine: Engine, session_id: str | None = None, limit: int = 12
) -> list[RowMapping]:
    """The newest corrected rows (label differs from the prediction), newest label first:
    id (the public uid), timestamp, feedback_at, model, model_version, prediction, actual,
    confidence and image_png (the 28x28 model input)."""
    c = prediction_logs.c
    query = select(
        c.uid.label("id"),
        c.timestamp,
        c.feedback_at,
        c.model,
        c.model_version,
        c.prediction,
        c.actual,
        c.confidence,
        c.image_png,
    ).where(c.actual.is_not(None), c.actual != c.prediction)
    if session_id is not None:
        query = query.where(c.session_id == session_id)
    query = query.order_by(c.feedback_at.desc(), c.id.desc()).limit(limit)
    return run_in_transaction(engine, lambda conn: list(conn.execute(query).mappings()))


def _period_start(dialect: str, unit: str) -> ColumnElement[Any]:
    """The start of the prediction's hour or day, in UTC. The unit is written into the SQL
    text, not bound: PostgreSQL matches GROUP BY to the select list by text, and two bound
    parameters are two different expressions to it."""
    timestamp = prediction_logs.c.timestamp
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), timestamp)  # timestamp without zone, UTC
        return func.date_trunc(literal_column(f"'{unit}'"), utc)
    if dialect == "sqlite":
        return func.strftime(literal_column(_SQLITE_FORMATS[unit]), timestamp)
    raise NotImplementedError(f"unsupported database: {dialect}")


def _utc(value: datetime | str) -> datetime:
    """A period start as the driver returns it (PostgreSQL: naive UTC; SQLite: text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC)


def labelled_predictions(engine: Engine) -> list[RowMapping]:
    """Every row a person labelled (with a digit, or as not a digit), oldest first: what
    learning from corrections reads."""
    c = prediction_logs.c
    query = (
        select(c.session_id, c.image_png, c.prediction, c.actual, c.feedback_at, c.is_digit)
        .where(c.actual.is_not(None) | c.not_a_digit)
        .order_by(c.timestamp, c.id)
    )
    return run_in_transaction(engine, lambda conn: list(conn.execute(query).mappings()))
