"""The service's `predict_async`, as the API's event loop calls it: the same rows as `predict`,
a slate-sized PNG read on the loop, anything larger on a thread, the loop free while the
database writes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
from drawing import draw_digit, encode_image
from event_loops import run_in_new_loop

import digitrec.service
from digitrec import codec
from digitrec.contract import StorageUnavailableError
from digitrec.preprocessing import as_canvas, is_small_png
from digitrec.service import PredictionService


def test_predict_async_logs_what_predict_logs(
    db_service: PredictionService, digit_png: bytes
) -> None:
    on_the_loop = run_in_new_loop(db_service.predict_async(digit_png, session_id="s1"))
    in_a_thread = db_service.predict(digit_png, session_id="s1")

    assert on_the_loop.logged and on_the_loop.session_id == "s1"
    assert on_the_loop.probabilities == in_a_thread.probabilities
    assert (on_the_loop.model, on_the_loop.model_version) == ("default", 1)
    assert {p.id for p in db_service.history().data} == {on_the_loop.id, in_a_thread.id}


def test_predict_async_a_repeated_press_returns_the_first_row(
    db_service: PredictionService, digit_png: bytes
) -> None:
    async def press_twice() -> tuple[Any, Any]:
        first = await db_service.predict_async(digit_png, session_id="s1", idempotency_key="k")
        again = await db_service.predict_async(digit_png, session_id="s1", idempotency_key="k")
        return first, again

    first, again = run_in_new_loop(press_twice())
    assert again == first and db_service.history().count == 1


def test_predict_async_queues_the_row_when_the_database_refuses_it(
    service: PredictionService, digit_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise StorageUnavailableError("database unavailable: read-only transaction")

    monkeypatch.setattr(digitrec.service, "log_prediction", refuse)
    answer = run_in_new_loop(service.predict_async(digit_png, session_id="s1"))
    assert answer.logged is False
    assert service.outbox.find_prediction(answer.id) is not None


def test_predict_async_reads_larger_pictures_and_other_formats_on_a_thread(
    service: PredictionService, digit_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    threaded: list[Callable[..., Any]] = []
    to_thread = asyncio.to_thread

    async def spy(function: Callable[..., Any], *args: Any) -> Any:
        threaded.append(function)
        return await to_thread(function, *args)

    monkeypatch.setattr(digitrec.service.asyncio, "to_thread", spy)
    photo = cv2.resize(draw_digit(7), (1200, 1200))  # more than a megapixel
    for upload in (encode_image(photo), encode_image(draw_digit(7), "JPEG")):
        assert run_in_new_loop(service.predict_async(upload, session_id="s1")).logged
    assert len(threaded) == 2

    run_in_new_loop(service.predict_async(digit_png, session_id="s1"))
    assert len(threaded) == 2  # the slate's PNG was read on the loop


def test_predict_async_leaves_the_loop_free_while_the_database_writes(
    service: PredictionService, digit_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks: list[int] = []
    log_prediction = digitrec.service.log_prediction

    def slow_write(*args: Any) -> Any:
        deadline = time.monotonic() + 10
        while len(ticks) < 3 and time.monotonic() < deadline:  # the loop must tick meanwhile
            time.sleep(0.001)
        return log_prediction(*args)

    monkeypatch.setattr(digitrec.service, "log_prediction", slow_write)
    done = threading.Event()

    async def scenario() -> bool:
        async def ticker() -> None:
            while not done.is_set():
                ticks.append(1)
                await asyncio.sleep(0.001)

        running = asyncio.create_task(ticker())
        answer = await service.predict_async(digit_png, session_id="s1")
        done.set()
        await running
        return answer.logged

    assert run_in_new_loop(scenario()) and len(ticks) >= 3


@pytest.mark.parametrize(
    ("upload", "small"),
    [
        (encode_image(np.zeros((280, 280), np.uint8)), True),
        (encode_image(np.zeros((1024, 1024), np.uint8)), True),
        (encode_image(np.zeros((1024, 1025), np.uint8)), False),
        (encode_image(np.zeros((280, 280), np.uint8), "JPEG"), False),
        (b"\x89PNG\r\n\x1a\n", False),  # the signature, no header
        (b"", False),
        (np.zeros((28, 28), np.uint8), False),  # not bytes
    ],
)
def test_is_small_png_reads_the_declared_size(upload: Any, small: bool) -> None:
    assert is_small_png(upload) is small


def test_a_small_png_does_not_queue_behind_a_large_decode(digit_png: bytes) -> None:
    large = encode_image(np.zeros((1100, 1100), np.uint8))
    decoded: list[str] = []

    def decode(name: str, upload: bytes) -> threading.Thread:
        def work() -> None:
            as_canvas(upload)
            decoded.append(name)

        thread = threading.Thread(target=work)
        thread.start()
        return thread

    with codec._DECODING:  # a large upload being decoded on another thread
        small_thread = decode("small", digit_png)
        small_thread.join(10)
        large_thread = decode("large", large)
        large_thread.join(0.2)
        assert decoded == ["small"]  # the large one waits its turn; the small one did not
    large_thread.join(10)
    assert decoded == ["small", "large"]
