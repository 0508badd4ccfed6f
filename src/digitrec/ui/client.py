"""The one place the page gets its client: the in-process service or the HTTP API."""

from __future__ import annotations

from typing import Protocol

from digitrec.config import Settings
from digitrec.contract import StorageUnavailableError
from digitrec.preprocessing import ImageSource
from digitrec.schemas import (
    ComparisonPublic,
    InsightsPublic,
    PredictionPublic,
    PredictionsPublic,
    StatsPublic,
)

# Failures the page reports as "cannot be reached right now" instead of as errors: the
# database is down (either client), or the model service is (ConnectionError, over HTTP).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (StorageUnavailableError, ConnectionError)


class DigitClient(Protocol):
    """What the page needs from the service; the service and the API client both provide it."""

    def predict(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> PredictionPublic: ...

    def compare(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ComparisonPublic: ...

    def submit_feedback(
        self, prediction_id: str, actual: int | None, *, session_id: str | None = None
    ) -> PredictionPublic: ...

    def history(
        self, session_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> PredictionsPublic: ...

    def stats(self, session_id: str | None = None) -> StatsPublic: ...

    def models(self) -> list[str]: ...

    def insights(self, session_id: str | None = None) -> InsightsPublic: ...


def make_client(settings: Settings) -> DigitClient:
    """The HTTP client when an API URL is set, else the service running in this process."""
    if settings.api_url:
        from digitrec.api.client import ApiClient

        key = settings.api_key.get_secret_value() if settings.api_key else None
        client: DigitClient = ApiClient(
            settings.api_url, timeout_s=settings.request_timeout_s, api_key=key
        )
        return client
    from digitrec.service import build_service

    return build_service(settings)
