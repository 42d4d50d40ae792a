"""``wait_event``: the same answers on the real clock (loop timer) and on a virtual one."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.clock import SystemClock, wait_event
from bot.core.ports import Clock
from tests.fakes.clock import FakeClock


async def test_system_clock_wait_returns_true_when_the_event_is_set_in_time() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5.0, SystemClock())


async def test_system_clock_wait_times_out_false_and_leaves_no_task_behind() -> None:
    event = asyncio.Event()
    before = len(asyncio.all_tasks())
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert not await wait_event(event, 0.02, SystemClock())
    assert loop.time() - began >= 0.015
    assert len(asyncio.all_tasks()) == before
    assert not event._waiters  # type: ignore[attr-defined]  # the wait was withdrawn


async def test_system_clock_wait_can_be_cancelled_from_outside() -> None:
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_event(event, 10.0, SystemClock()))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@pytest.mark.parametrize("within", [0.0, -1.0])
async def test_a_non_positive_limit_only_checks(within: float) -> None:
    event = asyncio.Event()
    assert not await wait_event(event, within, SystemClock())
    event.set()
    assert await wait_event(event, within, SystemClock())


async def test_virtual_clock_wait_follows_virtual_time() -> None:
    clock = FakeClock()
    event = asyncio.Event()
    fake: Clock = clock
    waiter = asyncio.create_task(wait_event(event, 3.0, fake))
    await clock.advance(2.9)
    assert not waiter.done()
    await clock.advance(0.2)
    assert await waiter is False
    waiter = asyncio.create_task(wait_event(event, 3.0, fake))
    await clock.advance(1.0)
    event.set()
    assert await waiter is True


async def test_the_fake_clock_is_also_a_plain_time_source() -> None:
    clock = FakeClock(start=100.0)
    assert clock() == clock.now() == 100.0
    clock.set(40.0)  # a wall clock may step back
    await clock.advance(5.0)
    assert clock() == 45.0
    sleeper = asyncio.create_task(clock.sleep(1.0))
    await clock.advance(0)
    with pytest.raises(RuntimeError, match="advance"):
        clock.set(50.0)  # would skip a sleeper's wake-up
    await clock.advance(1.0)
    await sleeper
    clock.set(50.0)
    assert clock() == 50.0
