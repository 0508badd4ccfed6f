"""Predict-and-log, feedback, history and stats: the one place that wires inference to storage."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from numbers import Integral
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import Engine

from digitrec.answers import (
    answer_from_logged,
    answer_from_record,
    answer_from_row,
    prediction_uid,
)
from digitrec.config import Settings, get_settings
from digitrec.contract import (
    InvalidDigitError,
    PredictionNotFoundError,
    StorageUnavailableError,
)
from digitrec.drawings import Drawing
from digitrec.insights import build_insights, summarise_outcomes
from digitrec.llm import NAME as LLM
from digitrec.llm import LlmConfig, LlmError, LlmReader
from digitrec.model_store import ModelStore
from digitrec.preprocessing import ImageSource, is_small_png
from digitrec.schemas import (
    ComparisonPublic,
    InsightsPublic,
    ModelPublic,
    PredictionPublic,
    PredictionsPublic,
    RegistryVersionPublic,
    StatsPublic,
    new_session_id,
)
from digitrec.storage import (
    DatabaseGuard,
    Feedback,
    Outbox,
    PredictionRecord,
    check_writable,
    count_outcomes,
    create_engine_from_url,
    fetch_image_png,
    list_predictions,
    list_versions,
    log_prediction,
    set_feedback,
)
from digitrec.storage.gateway import StorageGateway
from digitrec.storage.replayer import REPLAY_INTERVAL_S

logger = logging.getLogger(__name__)

DIGITS = range(10)


class OutboxState(TypedDict):
    """Writes waiting in the outbox for the database, and how many it may hold."""

    pending: int
    capacity: int


class Readiness(TypedDict):
    """What `ready()` found: the model loads; the database takes a write now; the outbox."""

    model: bool
    database: bool
    outbox: OutboxState


class PredictionService:
    """Predicts digits and keeps the log; thread-safe, holding only its storage and models."""

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox,
        *,
        model_dir: Path | None = None,
        default_model: str = "default",
        schema_ready: bool = True,
        guard: DatabaseGuard | None = None,
        replay_interval_s: float | None = REPLAY_INTERVAL_S,
        model_store: ModelStore | None = None,
        llm: LlmReader | None = None,
    ) -> None:
        # The database through its guard, with the outbox and its replayer behind it.
        self.storage = StorageGateway(
            engine,
            outbox,
            schema_ready=schema_ready,
            guard=guard,
            replay_interval_s=replay_interval_s,
        )
        self.model_dir = model_dir
        self.default_model = default_model
        # The registry's champions (and the model files), as every replica serves them.
        self.model_store = model_store or ModelStore(engine, model_dir, poll_s=None)
        # The chat model, when one is configured: a reader in comparisons, beside the models.
        self.llm = llm

    @property
    def engine(self) -> Engine:
        return self.storage.engine

    @property
    def outbox(self) -> Outbox:
        return self.storage.outbox

    @property
    def guard(self) -> DatabaseGuard:
        return self.storage.guard

    def predict(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> PredictionPublic:
        """Name the digit in an image and log it (or queue it while the database is down).

        `session_id` None starts a new session. With an `idempotency_key` (one per Predict
        press) a repeated request in the same session returns the first answer and logs no
        second row.
        """
        return self._log(self._recognise(image, session_id, model, idempotency_key))

    async def predict_async(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> PredictionPublic:
        """`predict` on an event loop, which serves other requests while the database logs
        the answer. A slate-sized PNG is read on the loop (a millisecond of work, less than
        the hand-off to a thread costs); anything larger, or another format, on a thread."""
        arguments = (image, session_id, model, idempotency_key)
        if is_small_png(image):
            record = self._recognise(*arguments)
        else:
            record = await asyncio.to_thread(self._recognise, *arguments)
        try:
            first = await self.storage.write_async(log_prediction, record)
        except StorageUnavailableError:
            return await asyncio.to_thread(self._queue, record)  # an fsync: not on the loop
        return answer_from_logged(record, first)

    def _recognise(
        self,
        image: ImageSource,
        session_id: str | None,
        model: str | None,
        idempotency_key: str | None,
    ) -> PredictionRecord:
        """The row of one model's answer to a drawing (`predict`'s arguments)."""
        session_id = session_id or new_session_id()
        # `model` None (no model named): this service's default, resolved here and only here.
        predictor = self.model_store.predictor(model or self.default_model)
        uid = prediction_uid(session_id, idempotency_key)
        return Drawing.of(image).record(predictor, session_id, uid, request_id=uid)

    def compare(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ComparisonPublic:
        """Every model on one drawing, and the chat model when one is configured: one logged
        row each, all under one request id.

        The drawing is decoded and preprocessed once; each row's latency is that plus its own
        model's inference. With an `idempotency_key` a repeated request returns the first rows
        (the chat model is asked again, and its first row kept). A chat model that gives no
        answer (down, slow, over its budget) logs no row and is named in `unavailable`.
        """
        session_id = session_id or new_session_id()
        predictors = [self.model_store.predictor(name) for name in self.models()]
        request_id = prediction_uid(session_id, idempotency_key)
        drawing = Drawing.of(image)
        rows, unavailable = [], {}

        def uid_for(name: str) -> str:
            # Each model's row has its own id; with a key, one fixed by the key and the model.
            key = None if idempotency_key is None else f"{idempotency_key}\n{name}"
            return prediction_uid(session_id, key)

        for predictor in predictors:
            uid = uid_for(predictor.name)
            rows.append(
                self._log(drawing.record(predictor, session_id, uid, request_id=request_id))
            )
        if self.llm is not None:
            try:
                record = drawing.read_by(self.llm, session_id, uid_for(LLM), request_id=request_id)
            except LlmError as exc:
                logger.warning("the chat model gave no answer: %s", exc)
                unavailable[LLM] = str(exc)
            else:
                rows.append(self._log(record))
        return ComparisonPublic(
            request_id=request_id, session_id=session_id, predictions=rows, unavailable=unavailable
        )

    def _log(self, record: PredictionRecord) -> PredictionPublic:
        """Write a new row (or queue it); a repeated press gets its first row back."""
        try:
            first = self.storage.write(log_prediction, record)
        except StorageUnavailableError:
            return self._queue(record)
        return answer_from_logged(record, first)

    def _queue(self, record: PredictionRecord) -> PredictionPublic:
        """The answer to a prediction the database did not take: queued in the outbox."""
        self.outbox.append_prediction(record)
        return answer_from_record(record, logged=False)

    def submit_feedback(
        self, prediction_id: str, actual: int | None, *, session_id: str | None = None
    ) -> PredictionPublic:
        """Record (or change) the person's label for a prediction: a digit, or None for "not
        a digit".

        With a `session_id`, only that session's predictions can be labelled; another
        session's is not found. None: any prediction (trusted callers: the CLI, operators).
        """
        feedback = Feedback(
            uid=prediction_id,
            actual=None if actual is None else _validated_digit(actual),
            feedback_at=datetime.now(UTC),
        )
        unavailable: StorageUnavailableError | None = None
        try:
            row = self.storage.write(set_feedback, feedback, session_id)
            if row is not None:
                return answer_from_row(row)
        except StorageUnavailableError as exc:
            unavailable = exc
        queued = self.storage.queued_prediction(prediction_id, session_id)
        if queued is not None:
            # Queued behind its prediction, so the replay applies it after the insert.
            self.outbox.append_feedback(feedback)
            return answer_from_record(queued, logged=False, feedback=feedback)
        if unavailable is not None:
            raise StorageUnavailableError(
                "the database is unavailable; feedback cannot be saved now, try again later"
            ) from unavailable
        raise PredictionNotFoundError(f"no prediction with id {prediction_id!r}")

    def history(
        self, session_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> PredictionsPublic:
        """Logged predictions, newest first; `count` is the total for the same filter."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be zero or more")
        rows, count = list_predictions(self.storage.read_engine(), session_id, limit, offset)
        return PredictionsPublic(data=[answer_from_row(r) for r in rows], count=count)

    def stats(self, session_id: str | None = None) -> StatsPublic:
        """Accuracy and confusion over the log (an uncorrected prediction counts as correct)."""
        outcomes = count_outcomes(self.storage.read_engine(), session_id)
        return summarise_outcomes(outcomes, pending_writes=self.outbox.count())

    def image_png(self, prediction_id: str, *, session_id: str | None = None) -> bytes:
        """The 28x28 model input of a logged or queued prediction, as PNG bytes (of this
        session's predictions only, when `session_id` is given)."""
        unavailable: StorageUnavailableError | None = None
        try:
            found = fetch_image_png(self.storage.read_engine(), prediction_id, session_id)
            if found is not None:
                return found
        except StorageUnavailableError as exc:
            unavailable = exc
        queued = self.storage.queued_prediction(prediction_id, session_id)
        if queued is not None:
            return queued.image_png
        if unavailable is not None:
            raise unavailable
        raise PredictionNotFoundError(f"no prediction with id {prediction_id!r}")

    def models(self) -> list[str]:
        """Names of the models this service can run."""
        return self.model_store.names()

    def model_catalog(self) -> list[ModelPublic]:
        """Every model with its versions, their metrics and standing (none while the database
        is down), and which version serves."""
        try:
            rows = list_versions(self.storage.read_engine())
        except StorageUnavailableError:
            rows = []
        return [
            ModelPublic(
                name=name,
                serving=self.model_store.predictor(name).version,
                versions=[
                    RegistryVersionPublic.model_validate(dict(r)) for r in rows if r.name == name
                ],
            )
            for name in self.models()
        ]

    def ready(self) -> Readiness:
        """Whether the default model loads, whether the database takes a write now (found
        out within the write deadline), and how full the outbox is."""
        try:
            self.model_store.predictor(self.default_model)
            model_ok = True
        except Exception as exc:  # a missing, unreadable or corrupt model file alike
            logger.warning("model %r cannot be loaded: %s", self.default_model, exc)
            model_ok = False
        try:
            self.storage.write(check_writable)
            database_ok = True
        except StorageUnavailableError:
            database_ok = False
        outbox = OutboxState(pending=self.outbox.count(), capacity=self.outbox.capacity)
        return Readiness(model=model_ok, database=database_ok, outbox=outbox)

    def flush_outbox(self) -> int:
        """Write the queued rows and labels now; returns how many (raises if still down)."""
        return self.storage.flush()

    def migrate(self) -> None:
        """Bring the schema to the latest revision (raises StorageUnavailableError if down)."""
        self.storage.migrate()

    def close(self) -> None:
        """Stop replaying; release the models, the guard, pooled connections, the outbox and
        the chat model's connection."""
        self.model_store.close()
        self.storage.close()
        if self.llm is not None:
            self.llm.close()

    def insights(self, session_id: str | None = None) -> InsightsPublic:
        """Per-digit accuracy, confusion, accuracy over time, the latest corrections and the
        registry: this session's rows (every session's for None)."""
        return build_insights(self.storage.read_engine(), session_id)


def _guard(settings: Settings) -> DatabaseGuard | None:
    """The write guard for these settings; None: the guard's defaults."""
    if settings.db_write_deadline_s is None:
        return None
    return DatabaseGuard(deadline_s=settings.db_write_deadline_s)


def build_service(
    settings: Settings | None = None, *, model_dir: Path | None = None
) -> PredictionService:
    """The in-process service for these settings, its database migrated to the latest schema."""
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine_from_url(settings.resolved_database_url)
    model_dir = model_dir or settings.model_dir
    llm_config = LlmConfig.from_settings(settings)
    service = PredictionService(
        engine,
        Outbox(settings.outbox_path, capacity=settings.outbox_capacity),
        model_dir=model_dir,
        default_model=settings.default_model,
        schema_ready=False,
        guard=_guard(settings),
        model_store=ModelStore(engine, model_dir, poll_s=settings.model_poll_s),
        llm=None if llm_config is None else LlmReader(llm_config),
    )
    try:
        service.migrate()
        # Open the first pooled connection now, without the write deadline: a cold connection
        # (connect, session settings, the driver's first queries) must not count against the
        # first request's write on a busy machine.
        check_writable(service.engine)
        service.model_store.refresh()  # the registry's champions from the first request on
    except StorageUnavailableError:
        # Start anyway: predictions queue in the outbox and the schema is made on first contact.
        logger.warning("database unavailable at start; writes will queue in the outbox")
    return service


def _validated_digit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) <= 9:
        raise InvalidDigitError(f"actual must be a whole number from 0 to 9, got {value!r}")
    return int(value)
