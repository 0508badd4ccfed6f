"""Talk to the model service over HTTP with the same methods and errors as the in-process service.

client = ApiClient("http://127.0.0.1:8000")
prediction = client.predict(canvas_rgba, session_id="3f2a9c0d")
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from digitrec.contract import (
    API_KEY_HEADER,
    ERROR_CODE_HEADER,
    ERRORS_BY_CODE,
    IDEMPOTENCY_KEY_HEADER,
    SESSION_ID_HEADER,
    VALIDATION_ERROR_CODE,
    InvalidDigitError,
    PredictionNotFoundError,
)
from digitrec.preprocessing import ImageSource, encode_png
from digitrec.schemas import (
    ComparisonPublic,
    InsightsPublic,
    ModelPublic,
    PredictionPublic,
    PredictionsPublic,
    StatsPublic,
)

if TYPE_CHECKING:  # a dict at run time: the page in API mode imports no SQL or model code
    from digitrec.service import Readiness

REQUEST_TIMEOUT_S = 10.0


class ApiError(RuntimeError):
    """The API answered with an error that has no counterpart in the service."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class ApiUnavailableError(ConnectionError):
    """The API could not be reached (refused, timed out, or the connection broke)."""


class ApiClient:
    """The page's client (`digitrec.ui.client.DigitClient`) for the model service at `base_url`;
    same methods and exceptions as the in-process `PredictionService`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
        http: httpx.Client | None = None,
        api_key: str | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # One pooled client: a kept-alive connection saves a TCP handshake per request.
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._headers: dict[str, str] = {}
        if api_key:
            self._headers[API_KEY_HEADER] = api_key
        if admin_token:  # an operator's client: the views across sessions
            self._headers["Authorization"] = f"Bearer {admin_token}"

    def predict(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
    ) -> PredictionPublic:
        """Recognise the digit in `image` (encoded bytes, a PIL image or an array).

        `session_id` None: the service starts a session (the answer names it). `model` None:
        the service's default model. `idempotency_key`: one per Predict press.
        """
        payload, headers = _predict_request(image, session_id, idempotency_key)
        if model is not None:
            payload["model"] = model
        answer = self._call("POST", "/predict", json=payload, headers=headers)
        return PredictionPublic.model_validate(answer)

    def compare(
        self,
        image: ImageSource,
        *,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ComparisonPublic:
        """Every model's answer to `image`, one logged row each under one request id."""
        payload, headers = _predict_request(image, session_id, idempotency_key)
        answer = self._call("POST", "/predict/compare", json=payload, headers=headers)
        return ComparisonPublic.model_validate(answer)

    def submit_feedback(
        self, prediction_id: str, actual: int | None, *, session_id: str | None = None
    ) -> PredictionPublic:
        """Record the true digit of one of `session_id`'s predictions; None: not a digit."""
        path = f"/predictions/{quote(prediction_id, safe='')}/feedback"
        body: dict[str, Any] = {"actual": actual} if actual is not None else {"not_a_digit": True}
        if session_id is not None:
            body["session_id"] = session_id
        try:
            answer = self._call("POST", path, json=body)
        except ApiError as exc:
            if exc.status_code == 422:  # a digit outside 0..9 fails the request's validation
                raise InvalidDigitError(exc.detail) from exc
            if exc.status_code == 404:  # an id no route matches (a '/' in it, say)
                raise PredictionNotFoundError(exc.detail) from exc
            raise
        return PredictionPublic.model_validate(answer)

    def history(
        self, session_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> PredictionsPublic:
        """Logged predictions, newest first, and the total count for the same filter."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if session_id is not None:
            params["session_id"] = session_id
        return PredictionsPublic.model_validate(self._call("GET", "/predictions", params=params))

    def stats(self, session_id: str | None = None) -> StatsPublic:
        """Running totals, per-digit accuracy and the confusion matrix."""
        params = {"session_id": session_id} if session_id is not None else {}
        return StatsPublic.model_validate(self._call("GET", "/stats", params=params))

    def image_png(self, prediction_id: str, *, session_id: str | None = None) -> bytes:
        """The 28x28 image the model saw for one of `session_id`'s predictions, as PNG bytes."""
        headers = dict(self._headers)
        if session_id is not None:
            headers[SESSION_ID_HEADER] = session_id
        try:
            path = f"/predictions/{quote(prediction_id, safe='')}/image"
            response = self._http.get(path, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(f"GET {self.base_url}/predictions failed: {exc}") from exc
        if response.status_code == 404:
            raise PredictionNotFoundError(f"no prediction with id {prediction_id!r}")
        if not response.is_success:
            raise error_from_response(response)
        return response.content

    def models(self) -> list[str]:
        """The names of the models the service can use."""
        return [model.name for model in self.model_catalog()]

    def model_catalog(self) -> list[ModelPublic]:
        """Every model with the version that serves it and all its registry versions."""
        return [ModelPublic.model_validate(m) for m in self._call("GET", "/models")]

    def ready(self) -> Readiness:
        """`{"model", "database", "outbox": {"pending", "capacity"}}` as the service found
        them; nothing ready and an empty outbox if the service cannot be reached."""
        unreachable: Readiness = {
            "model": False,
            "database": False,
            "outbox": {"pending": 0, "capacity": 0},
        }
        try:
            response = self._http.get("/ready")
        except httpx.HTTPError:
            return unreachable
        if response.status_code not in (200, 503):
            return unreachable
        body = response.json()
        outbox = body.get("outbox") or {}
        return {
            "model": bool(body.get("model")),
            "database": bool(body.get("database")),
            "outbox": {
                "pending": int(outbox.get("pending", 0)),
                "capacity": int(outbox.get("capacity", 0)),
            },
        }

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        try:
            response = self._http.request(
                method, path, headers={**self._headers, **(headers or {})}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(f"{method} {self.base_url}{path} failed: {exc}") from exc
        if response.is_success:
            return response.json()
        raise error_from_response(response)

    def insights(self, session_id: str | None = None) -> InsightsPublic:
        """Per-digit accuracy, confusion, accuracy over time, the latest corrections and the
        registry: `session_id`'s rows (every session's, with the admin token, for None)."""
        params = {"session_id": session_id} if session_id is not None else {}
        return InsightsPublic.model_validate(self._call("GET", "/insights", params=params))


def error_from_response(response: httpx.Response) -> Exception:
    """The exception the in-process service would have raised for this error answer."""
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text or response.reason_phrase
    code = response.headers.get(ERROR_CODE_HEADER, "")
    error_type = ERRORS_BY_CODE.get(code)
    if code == VALIDATION_ERROR_CODE and detail.startswith("path.prediction_id"):
        error_type = PredictionNotFoundError  # no prediction can have an id of that form
    return error_type(detail) if error_type else ApiError(response.status_code, detail)


def _predict_request(
    image: ImageSource, session_id: str | None, idempotency_key: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The JSON body (without a model) and headers of /predict and /predict/compare."""
    # Encoded bytes go as they are: the service decodes, checks and re-encodes every upload,
    # so doing it here too would only cost the page a decode per press.
    data = bytes(image) if isinstance(image, bytes | bytearray | memoryview) else None
    payload = {"image": base64.b64encode(data or encode_png(image)).decode("ascii")}
    if session_id is not None:
        payload["session_id"] = session_id
    headers = {IDEMPOTENCY_KEY_HEADER: idempotency_key} if idempotency_key else {}
    return payload, headers
