"""The `llm` reader against a small local server that speaks the chat-completions protocol:
canned answers, malformed answers, a slow server, 429s and errors, and the per-minute budget."""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from drawing import draw_digit, rgba_canvas
from fake_chat import KEY, MODEL, FakeChat, fake_chat_server
from PIL import Image

from digitrec.cli import main
from digitrec.config import Settings, get_settings
from digitrec.llm import (
    ENLARGED_PX,
    LlmBudgetError,
    LlmConfig,
    LlmError,
    LlmReader,
    parse_reply,
)
from digitrec.preprocessing import encode_png, to_mnist


@pytest.fixture
def chat() -> Iterator[tuple[FakeChat, str]]:
    """A local chat-completions server; yields its state and its base URL."""
    with fake_chat_server() as served:
        yield served


@pytest.fixture
def seven() -> np.ndarray:
    return to_mnist(rgba_canvas(draw_digit(7)))


def _reader(url: str, **overrides: Any) -> LlmReader:
    return LlmReader(LlmConfig(url=url, model=MODEL, api_key=KEY, **overrides))


def test_a_digit_answer_is_read_with_unknown_confidence(
    chat: tuple[FakeChat, str], seven: np.ndarray
) -> None:
    state, url = chat
    canvas = encode_png(rgba_canvas(draw_digit(7)))

    answer = _reader(url).read(seven, canvas)

    assert (answer.status, answer.digit, answer.confidence) == ("digit", 7, None)
    (request,) = state.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == f"Bearer {KEY}"
    assert request["json"]["model"] == MODEL
    images = [c for c in request["json"]["messages"][0]["content"] if c["type"] == "image_url"]
    sent = [base64.b64decode(i["image_url"]["url"].split(",", 1)[1]) for i in images]
    assert Image.open(io.BytesIO(sent[0])).size == (ENLARGED_PX, ENLARGED_PX)
    assert sent[1] == canvas


@pytest.mark.parametrize(
    ("reply", "status", "digit"),
    [
        ("3", "digit", 3),
        (" 3.\n", "digit", 3),
        ("none", "none", None),
        ("None.", "none", None),
        ("It looks like a 3", "unsure", None),
        ("3 or 8", "unsure", None),
        ("12", "unsure", None),
        ("", "unsure", None),
        ("three", "unsure", None),
    ],
)
def test_replies_are_parsed_strictly(reply: str, status: str, digit: int | None) -> None:
    assert parse_reply(reply) == (status, digit)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (429, {"error": "rate limited"}, "429"),
        (500, {"error": "boom"}, "HTTP 500"),
        (200, b"not json", "not a chat completion"),
        (200, {"choices": []}, "not a chat completion"),
        (200, {"choices": [{"message": {"content": None}}]}, "no text"),
    ],
)
def test_a_failed_or_malformed_answer_is_an_error_not_a_guess(
    chat: tuple[FakeChat, str], seven: np.ndarray, status: int, body: Any, message: str
) -> None:
    state, url = chat
    state.status, state.body = status, body

    with pytest.raises(LlmError, match=message):
        _reader(url).read(seven)


def test_a_slow_server_times_out(chat: tuple[FakeChat, str], seven: np.ndarray) -> None:
    state, url = chat
    state.delay_s = 1.0

    with pytest.raises(LlmError, match=r"did not answer in 0\.2 s"):
        _reader(url, timeout_s=0.2).read(seven)


def test_an_unreachable_server_is_an_error(seven: np.ndarray) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(LlmError, match="cannot be reached"):
        _reader(f"http://127.0.0.1:{closed_port}/v1").read(seven)


def test_the_budget_refuses_calls_past_the_minute_without_sending_them(
    chat: tuple[FakeChat, str], seven: np.ndarray
) -> None:
    state, url = chat
    now = [1000.0]
    reader = LlmReader(
        LlmConfig(url=url, model="m", api_key=KEY, per_minute=2), clock=lambda: now[0]
    )
    reader.read(seven)
    reader.read(seven)

    with pytest.raises(LlmBudgetError) as refused:
        reader.read(seven)
    assert len(state.requests) == 2
    assert refused.value.retry_after_s == pytest.approx(60.0)

    now[0] += 60.0
    assert reader.read(seven).digit == 7
    assert len(state.requests) == 3


def test_it_is_off_unless_url_model_and_key_are_set() -> None:
    assert LlmConfig.from_settings(Settings(llm_url="http://x/v1", llm_model="m")) is None
    config = LlmConfig.from_settings(
        Settings(llm_url="http://x/v1", llm_model="m", llm_api_key="k", llm_per_minute=5)
    )
    assert config == LlmConfig(url="http://x/v1", model="m", api_key="k", per_minute=5)


def test_the_cli_reads_with_the_llm_and_says_when_it_is_off(
    chat: tuple[FakeChat, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = chat
    state.reply = "none"
    image = tmp_path / "seven.png"
    image.write_bytes(encode_png(rgba_canvas(draw_digit(7))))
    runner = CliRunner()

    off = runner.invoke(main, ["predict", "--model", "llm", str(image)])
    assert off.exit_code != 0 and "the llm model is off" in off.output

    for name, value in {"URL": url, "MODEL": "m", "API_KEY": KEY}.items():
        monkeypatch.setenv(f"DIGITREC_LLM_{name}", value)
    get_settings.cache_clear()
    try:
        result = runner.invoke(main, ["predict", "--model", "llm", str(image)])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert (line["answer"], line["digit"], line["confidence"]) == ("none", None, None)
