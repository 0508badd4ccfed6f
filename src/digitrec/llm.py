"""A vision-capable chat model as a reader of digits, over the OpenAI chat-completions protocol.

Any endpoint that speaks that protocol will do (OpenAI, Gemini's compatible endpoint, a local
Ollama or vLLM). Off unless `DIGITREC_LLM_URL`, `DIGITREC_LLM_MODEL` and `DIGITREC_LLM_API_KEY`
are set. It is sent the 28x28 model input (enlarged) and, when there is one, the drawing as
drawn, and asked for one digit or "none". The answer is parsed strictly: a lone digit is a
digit, "none" is none, anything else is "unsure", never a guess. A chat model states no
calibrated probability, so its confidence is unknown (None) rather than invented. Each call
has a timeout, and the reader spends at most `per_minute` calls in any 60 seconds.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import numpy as np
from PIL import Image

from digitrec.config import Settings
from digitrec.preprocessing import encode_png, to_uint8

NAME = "llm"
ENLARGED_PX = 224  # the 28x28 input as sent: chat models read small images poorly
WINDOW_S = 60.0
PROMPT = (
    "The image shows one handwritten mark, white on black. If it is a single digit from 0 to 9, "
    "answer with that digit only. If it is not a single digit, answer with the word none. "
    "Answer with nothing else."
)
_DIGIT = re.compile(r"[0-9]\.?")
_NONE = re.compile(r"none\.?", re.IGNORECASE)

Status = Literal["digit", "none", "unsure"]


class LlmError(RuntimeError):
    """The chat model gave no answer: unreachable, too slow, refused or malformed."""


class LlmBudgetError(LlmError):
    """This reader has spent its calls for the current minute; `retry_after_s` until one frees."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LlmConfig:
    """Where the chat model is and how much of it to use."""

    url: str  # the API base, e.g. https://api.openai.com/v1; /chat/completions is appended
    model: str
    api_key: str
    timeout_s: float = 10.0
    per_minute: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        """The configuration, or None unless the URL, the model and the key are all set."""
        if not (settings.llm_url and settings.llm_model and settings.llm_api_key):
            return None
        return cls(
            url=settings.llm_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            per_minute=settings.llm_per_minute,
        )


@dataclass(frozen=True)
class LlmAnswer:
    """What the chat model said about one drawing."""

    status: Status
    digit: int | None  # only when status is "digit"
    text: str  # the model's reply as it came
    latency_ms: float
    confidence: None = None  # a chat model states no calibrated probability
    model: str = NAME


class LlmReader:
    """Reads drawings with a chat model; thread-safe."""

    def __init__(
        self,
        config: LlmConfig,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=config.timeout_s)
        self._clock = clock
        self._calls: deque[float] = deque()  # when each call of the last minute was made
        self._lock = threading.Lock()

    def read(self, pixels: np.ndarray, canvas_png: bytes | None = None) -> LlmAnswer:
        """One drawing: `pixels` (28, 28) in [0, 1], white on black; the canvas as drawn."""
        self._spend_one()
        images = [encode_png(_enlarged(pixels))] + ([canvas_png] if canvas_png else [])
        content: list[dict[str, object]] = [{"type": "text", "text": PROMPT}]
        content += [
            {"type": "image_url", "image_url": {"url": _data_url(image)}} for image in images
        ]
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 5,
            "temperature": 0,
        }
        started = time.perf_counter()
        try:
            response = self._http.post(
                self.config.url.rstrip("/") + "/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {self.config.api_key}"},
                timeout=self.config.timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise LlmError(f"the chat model did not answer in {self.config.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise LlmError(f"the chat model cannot be reached: {exc}") from exc
        latency_ms = (time.perf_counter() - started) * 1000.0
        if response.status_code == 429:
            raise LlmError("the chat model refused the call: too many requests (429)")
        if response.status_code != 200:
            raise LlmError(f"the chat model answered HTTP {response.status_code}")
        text = _reply_text(response)
        status, digit = parse_reply(text)
        return LlmAnswer(status=status, digit=digit, text=text, latency_ms=latency_ms)

    def close(self) -> None:
        self._http.close()

    def _spend_one(self) -> None:
        """Count a call against the last minute's budget, or refuse it."""
        with self._lock:
            now = self._clock()
            while self._calls and now - self._calls[0] >= WINDOW_S:
                self._calls.popleft()
            if len(self._calls) >= self.config.per_minute:
                wait = WINDOW_S - (now - self._calls[0])
                raise LlmBudgetError(
                    f"the chat model's budget of {self.config.per_minute} calls a minute is "
                    f"spent; try again in {wait:.0f} s",
                    retry_after_s=wait,
                )
            self._calls.append(now)


def parse_reply(text: str) -> tuple[Status, int | None]:
    """A lone digit (a full stop allowed), "none", or unsure: nothing else is read as an answer."""
    reply = text.strip()
    if _DIGIT.fullmatch(reply):
        return "digit", int(reply[0])
    if _NONE.fullmatch(reply):
        return "none", None
    return "unsure", None


def _reply_text(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmError("the chat model's answer is not a chat completion") from exc
    if not isinstance(content, str):
        raise LlmError("the chat model's answer holds no text")
    return content


def _enlarged(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(to_uint8(pixels))
    return image.resize((ENLARGED_PX, ENLARGED_PX), Image.Resampling.NEAREST)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
