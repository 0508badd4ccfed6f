"""The only functions that read or write prediction rows; each runs one short transaction."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, Insert, Update, false, func, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from digitrec.contract import StorageUnavailableError
from digitrec.storage.engine import PG_STATEMENT_TIMEOUT_S
from digitrec.storage.records import Feedback, PredictionRecord
from digitrec.storage.tables import prediction_logs
from digitrec.storage.watchdog import WATCHDOG, Alarm

T = TypeVar("T")

# The longest one call (a transaction of a few statements) may hold its connection: past it
# the watchdog cuts the connection. The server's statement timeout stops a slow query; this
# stops a wait on a server, proxy or network that went silent.
CALL_LIMIT_S = 2 * PG_STATEMENT_TIMEOUT_S

# What history and feedback return: every column but the row number and the images, `uid`
# under its public name.
PRIVATE_COLUMNS = frozenset({"id", "image_png", "canvas_png"})
PUBLIC_COLUMNS = tuple(
    column.label("id") if column.name == "uid" else column
    for column in prediction_logs.c
    if column.name not in PRIVATE_COLUMNS
)


def insert_prediction(engine: Engine, record: PredictionRecord) -> bool:
    """Insert one prediction; False when a row with the same uid was already there."""
    statement = _insert_returning_uid(engine.dialect.name)
    row = record.model_dump()
    # The commit waits for its fsync on PostgreSQL (synchronous_commit stays on): an answered
    # prediction survives a crash of the server, which tests/integration/test_outage.py checks.
    return run_in_transaction(engine, lambda conn: conn.execute(statement, row).first()) is not None


def log_prediction(engine: Engine, record: PredictionRecord) -> RowMapping | None:
    """Insert one prediction; None when it is new, else the row first logged under its uid."""
    if insert_prediction(engine, record):
        return None
    return fetch_prediction(engine, record.uid)


def fetch_prediction(engine: Engine, uid: str) -> RowMapping | None:
    """One prediction's public columns; None for an unknown uid."""
    query = select(*PUBLIC_COLUMNS).where(prediction_logs.c.uid == uid)
    return run_in_transaction(engine, lambda conn: conn.execute(query).mappings().first())


def set_feedback(
    engine: Engine, feedback: Feedback, session_id: str | None = None
) -> RowMapping | None:
    """Record the label unless a newer one is there, and return the row as it now stands;
    None when no row has that uid (in `session_id`, when one is given: another session's
    prediction is not found)."""
    statement = _feedback_update(feedback).returning(*PUBLIC_COLUMNS)
    current = select(*PUBLIC_COLUMNS).where(prediction_logs.c.uid == feedback.uid)
    if session_id is not None:
        statement = statement.where(prediction_logs.c.session_id == session_id)
        current = current.where(prediction_logs.c.session_id == session_id)

    def work(conn: Connection) -> RowMapping | None:
        updated = conn.execute(statement).mappings().first()
        # None: no such row, or a newer label won; the row as it stands says which.
        return updated if updated is not None else conn.execute(current).mappings().first()

    return run_in_transaction(engine, work)


def apply_pending(
    engine: Engine, records: Sequence[PredictionRecord], feedback: Sequence[Feedback]
) -> None:
    """Replay queued writes in one transaction: inserts first, then feedback (idempotent)."""

    def work(conn: Connection) -> None:
        if records:
            conn.execute(_insert_statement(engine.dialect.name), [r.model_dump() for r in records])
        for item in feedback:
            conn.execute(_feedback_update(item))

    run_in_transaction(engine, work)


def list_predictions(
    engine: Engine, session_id: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[RowMapping], int]:
    """One page of rows, newest first, and the number of rows for the same filter."""
    page = select(*PUBLIC_COLUMNS)
    total = select(func.count()).select_from(prediction_logs)
    if session_id is not None:
        page = page.where(prediction_logs.c.session_id == session_id)
        total = total.where(prediction_logs.c.session_id == session_id)
    page = page.order_by(prediction_logs.c.timestamp.desc(), prediction_logs.c.id.desc())
    page = page.limit(limit).offset(offset)

    def work(conn: Connection) -> tuple[list[RowMapping], int]:
        rows = list(conn.execute(page).mappings())
        return rows, int(conn.execute(total).scalar_one())

    return run_in_transaction(engine, work)


class Outcome(NamedTuple):
    """How many rows share a label and an answer."""

    actual: int | None  # the person's digit; None: no feedback, or not a digit
    prediction: int | None  # None: the reader gave no digit (the chat model)
    rows: int
    not_a_digit: bool = False  # the person said it is not a digit
    is_digit: bool = True  # the model's decision


def count_outcomes(engine: Engine, session_id: str | None = None) -> list[Outcome]:
    """The rows counted per label and answer: every combination present."""
    c = prediction_logs.c
    keys = (c.actual, c.prediction, c.not_a_digit, c.is_digit)
    query = select(*keys, func.count()).group_by(*keys)
    if session_id is not None:
        query = query.where(c.session_id == session_id)
    rows = run_in_transaction(engine, lambda conn: conn.execute(query).all())
    return [
        Outcome(
            actual,
            None if prediction is None else int(prediction),
            int(n),
            bool(not_digit),
            bool(is_digit),
        )
        for actual, prediction, not_digit, is_digit, n in rows
    ]


def fetch_image_png(engine: Engine, uid: str, session_id: str | None = None) -> bytes | None:
    """The 28x28 model input of a prediction as PNG bytes; None for an unknown uid (or one
    of another session, when `session_id` is given)."""
    query = select(prediction_logs.c.image_png).where(prediction_logs.c.uid == uid)
    if session_id is not None:
        query = query.where(prediction_logs.c.session_id == session_id)
    return run_in_transaction(engine, lambda conn: conn.execute(query).scalar_one_or_none())


def check_writable(engine: Engine) -> None:
    """Raise StorageUnavailableError unless the database takes a prediction and a label now.

    An insert and an update that touch no row: they fail as a real write would on a
    read-only database, a missing table or privilege, or a lock held past the lock timeout.
    """
    columns = [column for column in prediction_logs.c if column.name != "id"]
    no_rows = select(*columns).where(false())
    probes = (
        insert(prediction_logs).from_select([column.name for column in columns], no_rows),
        update(prediction_logs).where(false()).values(actual=None),
    )

    def work(conn: Connection) -> None:
        for probe in probes:
            conn.execute(probe)

    run_in_transaction(engine, work)


def ping(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        run_in_transaction(engine, lambda conn: conn.execute(text("SELECT 1")))
    except StorageUnavailableError:
        return False
    return True


@functools.cache
def _insert_statement(dialect: str) -> Insert:
    # A replayed insert may already have landed (the process died before clearing the
    # outbox, or the commit succeeded but its acknowledgement was lost): skip it.
    if dialect == "postgresql":
        return postgresql.insert(prediction_logs).on_conflict_do_nothing(index_elements=["uid"])
    if dialect == "sqlite":
        return sqlite.insert(prediction_logs).on_conflict_do_nothing(index_elements=["uid"])
    raise NotImplementedError(f"unsupported database: {dialect}")


@functools.cache
def _insert_returning_uid(dialect: str) -> Insert:
    """One statement per dialect, its values given at execution: SQLAlchemy then builds its
    cache key once, not once per row (about half the time of a write on SQLite)."""
    # RETURNING, not rowcount: psycopg reports -1 rows for INSERT ... ON CONFLICT DO NOTHING.
    return _insert_statement(dialect).returning(prediction_logs.c.uid)


def _feedback_update(feedback: Feedback) -> Update:
    # Only over an older label (or none), checked by the database row by row: of two labels
    # racing (two requests, a request and a replay, a write given up on that lands late),
    # the newer one stays whichever commits last. PostgreSQL re-checks the condition on the
    # row a concurrent update committed; SQLite runs one writer at a time.
    c = prediction_logs.c
    return (
        update(prediction_logs)
        .where(c.uid == feedback.uid)
        .where(c.feedback_at.is_(None) | (c.feedback_at <= feedback.feedback_at))
        .values(
            actual=feedback.actual,
            not_a_digit=feedback.actual is None,
            feedback_at=feedback.feedback_at,
        )
    )


def run_in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction, within CALL_LIMIT_S; any database failure becomes
    StorageUnavailableError. A dead pooled connection (a server restart) is retried once."""
    for attempt in (1, 2):
        alarm: Alarm | None = None
        try:
            with engine.connect() as conn:
                dbapi_connection = conn.connection.dbapi_connection
                with WATCHDOG.armed(dbapi_connection, CALL_LIMIT_S) as alarm, conn.begin():
                    return work(conn)
        except sa_exc.DBAPIError as exc:
            if alarm is not None and alarm.fired:
                raise StorageUnavailableError(
                    f"database unavailable: no answer within {CALL_LIMIT_S:g} s"
                ) from exc
            if exc.connection_invalidated and attempt == 1:
                continue  # the pool was emptied of stale connections: try a fresh one
            # Refused, read-only, a missing table, a lock or statement timeout: whatever the
            # database says, the caller cannot write now (a write goes to the outbox).
            raise StorageUnavailableError(f"database unavailable: {exc.orig}") from exc
        except sa_exc.SQLAlchemyError as exc:  # no free pooled connection, among others
            raise StorageUnavailableError(f"database unavailable: {exc}") from exc
    raise AssertionError("unreachable")
