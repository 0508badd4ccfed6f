"""Where predictions are kept: engine, table, repository functions, outbox and migrations."""

from digitrec.contract import StorageUnavailableError
from digitrec.storage.engine import create_engine_from_url, is_sqlite
from digitrec.storage.guard import DatabaseGuard
from digitrec.storage.migrate import current_revision, head_revision, upgrade
from digitrec.storage.outbox import Outbox
from digitrec.storage.records import Feedback, PredictionRecord
from digitrec.storage.registry import list_versions
from digitrec.storage.repository import (
    apply_pending,
    check_writable,
    count_outcomes,
    fetch_image_png,
    fetch_prediction,
    insert_prediction,
    list_predictions,
    log_prediction,
    ping,
    set_feedback,
)
from digitrec.storage.tables import PredictionLog, prediction_logs

__all__ = [
    "DatabaseGuard",
    "Feedback",
    "Outbox",
    "PredictionLog",
    "PredictionRecord",
    "StorageUnavailableError",
    "apply_pending",
    "check_writable",
    "count_outcomes",
    "create_engine_from_url",
    "current_revision",
    "fetch_image_png",
    "fetch_prediction",
    "head_revision",
    "insert_prediction",
    "is_sqlite",
    "list_predictions",
    "list_versions",
    "log_prediction",
    "ping",
    "prediction_logs",
    "set_feedback",
    "upgrade",
]
