"""Pacer.call, the one paced platform call: slot, call, penalty and retry, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import pytest

from bot.core.errors import MessageGone, PlatformUnavailable, RetryLater
from bot.core.pacing import Pacer, PacerRules, Priority, Window
from tests.fakes.clock import FakeClock, settle

EPS = 1e-6


class Platform:
    """A platform call that records when it was made and fails as scripted, then answers."""

    def __init__(self, clock: FakeClock, failures: Iterable[Exception] = ()) -> None:
        self.clock = clock
        self.failures = list(failures)
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(self.clock.now())
        await asyncio.sleep(0)
        if self.failures:
            raise self.failures.pop(0)
        return f"sent #{len(self.calls)}"


def one_per_second(clock: FakeClock, penalties: list[tuple[str, float]] | None = None) -> Pacer:
    rules = PacerRules(lanes={"k": (Window(1, 1.0),)})
    on_penalty = None if penalties is None else lambda lane, s: penalties.append((lane, s))
    return Pacer(rules, clock=clock, on_penalty=on_penalty)


async def test_each_call_takes_a_slot_then_returns_the_result() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock)
    async with clock.auto():
        results = [await pacer.call("c", "k", platform) for _ in range(3)]
    assert results == ["sent #1", "sent #2", "sent #3"]
    assert platform.calls == pytest.approx([0.0, 1.0, 2.0], abs=EPS)
    assert pacer.granted == 3


async def test_a_429_penalizes_the_lane_and_the_retry_waits_it_out() -> None:
    clock = FakeClock()
    penalties: list[tuple[str, float]] = []
    pacer = one_per_second(clock, penalties)
    platform = Platform(clock, [RetryLater(5.0)])
    async with clock.auto():
        call = asyncio.ensure_future(pacer.call("c", "k", platform))
        await clock.sleep(1.0)
        assert pacer.is_blocked("c") and not pacer.is_blocked("other")
        assert (await pacer.acquire("other", "k")).granted_at == pytest.approx(1.0)
        assert await call == "sent #2"
    assert platform.calls == pytest.approx([0.0, 5.0], abs=EPS)
    assert penalties == [("c", 5.0)]


async def test_a_global_429_penalizes_every_lane() -> None:
    clock = FakeClock()
    penalties: list[tuple[str, float]] = []
    pacer = one_per_second(clock, penalties)
    platform = Platform(clock, [RetryLater(3.0, everywhere=True)])
    call = asyncio.ensure_future(pacer.call("c", "k", platform))
    await settle()
    assert pacer.is_blocked("c") and pacer.is_blocked("other")
    async with clock.auto():
        other = await pacer.acquire("other", "k")
        assert await call == "sent #2"
    assert other.granted_at == pytest.approx(3.0)
    assert platform.calls == pytest.approx([0.0, 3.0], abs=EPS)
    assert penalties == [("*", 3.0)]


async def test_attempts_exhausted_raise_platform_unavailable() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock, [RetryLater(2.0)] * 3)
    async with clock.auto():
        with pytest.raises(PlatformUnavailable, match="still rate limited after 3 attempts"):
            await pacer.call("c", "k", platform, attempts=3)
    assert platform.calls == pytest.approx([0.0, 2.0, 4.0], abs=EPS)


async def test_other_errors_propagate_unchanged_without_a_retry_or_penalty() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    gone = MessageGone("deleted")
    platform = Platform(clock, [gone])
    with pytest.raises(MessageGone) as raised:
        await pacer.call("c", "k", platform)
    assert raised.value is gone
    assert len(platform.calls) == 1 and not pacer.is_blocked("c")


async def test_a_droppable_call_is_dropped_while_the_lane_is_blocked() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock)
    pacer.penalize("c", 10.0)
    assert await pacer.call("c", "k", platform, droppable=True) is None
    pacer.penalize_all(10.0)
    assert await pacer.call("d", "k", platform, droppable=True) is None
    assert platform.calls == [] and pacer.granted == 0 and pacer.waiting == 0
    await clock.advance(10.0)
    assert await pacer.call("c", "k", platform, droppable=True) == "sent #1"


async def test_a_droppable_call_rate_limited_to_the_end_is_dropped_not_raised() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock, [RetryLater(4.0)])
    assert await pacer.call("c", "k", platform, droppable=True, attempts=3) is None
    assert len(platform.calls) == 1  # the penalty blocks the lane: no second attempt
    assert pacer.is_blocked("c")


async def test_an_unpaced_call_takes_no_slot_unless_the_lane_is_blocked() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock, [RetryLater(2.0)])
    pacer.request("c", "k")  # the lane's window is full until t=1
    async with clock.auto():
        # Not blocked: straight through, window or not. The 429 blocks the lane, so the
        # retry waits out the penalty and takes a slot like everything else going there.
        assert await pacer.call("c", "k", platform, paced=False) == "sent #2"
    assert platform.calls == pytest.approx([0.0, 2.0], abs=EPS)
    assert pacer.granted == 2


async def test_priority_orders_waiting_calls() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    order: list[str] = []

    def named(name: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            order.append(name)

        return call

    pacer.request("c", "k")
    async with clock.auto():
        await asyncio.gather(
            pacer.call("c", "k", named("edit"), priority=Priority.EDIT),
            pacer.call("c", "k", named("urgent")),
        )
    assert order == ["urgent", "edit"]


async def test_a_call_cancelled_while_waiting_consumes_nothing() -> None:
    clock = FakeClock()
    pacer = one_per_second(clock)
    platform = Platform(clock)
    pacer.request("c", "k")
    waiter = asyncio.ensure_future(pacer.call("c", "k", platform))
    await clock.advance(0.5)
    waiter.cancel()
    await settle()
    assert waiter.cancelled() and platform.calls == []
    assert pacer.waiting == 0 and pacer.granted == 1
    await clock.advance(0.5)
    nxt = pacer.request("c", "k")
    assert nxt.granted and nxt.granted_at == pytest.approx(1.0)


async def test_attempts_must_be_positive() -> None:
    pacer = one_per_second(FakeClock())
    with pytest.raises(ValueError, match="attempts"):
        await pacer.call("c", "k", Platform(FakeClock()), attempts=0)
