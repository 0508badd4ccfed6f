"""The write guard: a deadline on each call, and a breaker that stops trying for a while."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from event_loops import run_in_new_loop

from digitrec.contract import StorageUnavailableError
from digitrec.storage import DatabaseGuard

SHORT_S = 0.05


@pytest.fixture
def guard() -> Iterator[DatabaseGuard]:
    made = DatabaseGuard(deadline_s=SHORT_S, cooldown_s=SHORT_S, threads=2)
    yield made
    made.close()


def test_guard_returns_what_the_call_returns_and_stays_closed(guard: DatabaseGuard) -> None:
    assert guard.call(lambda: 42) == 42
    assert guard.closed and not guard.stalled


def test_guard_gives_up_at_the_deadline_and_then_fails_fast(guard: DatabaseGuard) -> None:
    release = threading.Event()
    with pytest.raises(StorageUnavailableError, match="did not answer"):
        guard.call(release.wait)  # a database that does not answer
    assert guard.stalled and not guard.closed

    tried: list[int] = []
    with pytest.raises(StorageUnavailableError, match="not trying"):
        guard.call(lambda: tried.append(1))
    assert tried == []  # the breaker answered without calling the database
    release.set()


def test_guard_lets_one_trial_through_after_the_cooldown(guard: DatabaseGuard) -> None:
    with pytest.raises(StorageUnavailableError):
        guard.call(_refuse)
    time.sleep(SHORT_S * 2)  # the cooldown passes

    inside, release = threading.Event(), threading.Event()

    def trial() -> str:
        inside.set()
        release.wait(10)
        return "ok"

    result: list[str] = []
    runner = threading.Thread(target=lambda: result.append(_call_patiently(guard, trial)))
    runner.start()
    assert inside.wait(10)
    with pytest.raises(StorageUnavailableError):  # one trial at a time
        guard.call(lambda: "second")
    release.set()
    runner.join(10)
    assert result == ["ok"]
    assert guard.closed and guard.call(lambda: "next") == "next"


def test_guard_database_errors_open_it_without_calling_it_stalled(guard: DatabaseGuard) -> None:
    with pytest.raises(StorageUnavailableError, match="read-only"):
        guard.call(_refuse)
    assert not guard.closed
    assert not guard.stalled  # the database answers (reads may go on); it refuses writes


def test_guard_other_errors_pass_through_and_leave_it_closed(guard: DatabaseGuard) -> None:
    with pytest.raises(ValueError, match="a bug"):
        guard.call(_bug)
    assert guard.closed


def test_guard_closed_for_good_refuses_calls(guard: DatabaseGuard) -> None:
    guard.close()
    with pytest.raises(StorageUnavailableError, match="closing"):
        guard.call(lambda: 1)


def _call_patiently(guard: DatabaseGuard, work: Callable[[], str]) -> str:
    guard.deadline_s = 10.0  # this trial may take its time
    return guard.call(work)


def _refuse() -> None:
    raise StorageUnavailableError("database unavailable: read-only transaction")


def _bug() -> None:
    raise ValueError("a bug")


def test_guard_async_call_returns_and_serves_the_loop_meanwhile(guard: DatabaseGuard) -> None:
    release = threading.Event()

    async def scenario() -> tuple[str, list[int]]:
        ticks: list[int] = []

        async def ticker() -> None:
            while not release.is_set():
                ticks.append(1)
                await asyncio.sleep(0.001)

        running = asyncio.create_task(ticker())
        # A write that waits until the loop has run other work: it could not finish if the
        # loop were blocked waiting for it.
        result = await guard.call_async(lambda: _after_ticks(ticks, release))
        await running
        return result, ticks

    guard.deadline_s = 10.0
    result, ticks = run_in_new_loop(scenario())
    assert result == "written" and len(ticks) >= 3
    assert guard.closed


def test_guard_async_call_gives_up_at_the_deadline_and_trips(guard: DatabaseGuard) -> None:
    release = threading.Event()
    with pytest.raises(StorageUnavailableError, match="did not answer"):
        run_in_new_loop(guard.call_async(release.wait))  # a database that does not answer
    assert guard.stalled
    with pytest.raises(StorageUnavailableError, match="not trying"):
        run_in_new_loop(guard.call_async(lambda: 1))
    release.set()


def test_guard_async_call_keeps_the_breaker_rules(guard: DatabaseGuard) -> None:
    with pytest.raises(ValueError, match="a bug"):
        run_in_new_loop(guard.call_async(_bug))
    assert guard.closed
    with pytest.raises(StorageUnavailableError, match="read-only"):
        run_in_new_loop(guard.call_async(_refuse))
    assert not guard.closed and not guard.stalled


def _after_ticks(ticks: list[int], release: threading.Event) -> str:
    deadline = time.monotonic() + 10
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    return "written"
