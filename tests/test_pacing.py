"""Pacer: sliding windows, priorities, penalties, cancellation, memory — on virtual time."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest

from bot.core.pacing import (
    DISCORD_CHANNEL,
    DISCORD_GLOBAL_WINDOWS,
    TELEGRAM_GROUP,
    TELEGRAM_PRIVATE,
    Pacer,
    PacerRules,
    Priority,
    Window,
    discord_rules,
    telegram_rules,
)
from tests.fakes.clock import FakeClock, settle

EPS = 1e-6


def rules(lane: Sequence[Window] = (Window(1, 1.0),), glob: Sequence[Window] = ()) -> PacerRules:
    return PacerRules(lanes={"k": tuple(lane)}, global_windows=tuple(glob))


def max_in_window(times: Sequence[float], per: float) -> int:
    """The most grants found in any half-open span of ``per`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - per + EPS:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_sequential_grants_follow_the_window_exactly() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    times: list[float] = []
    async with clock.auto():
        for _ in range(5):
            await pacer.acquire("chat", TELEGRAM_PRIVATE)
            times.append(clock.now())
    assert times == pytest.approx([0.0, 1.1, 2.2, 3.3, 4.4], abs=EPS)


async def test_first_grant_is_synchronous_when_idle() -> None:
    pacer = Pacer(telegram_rules(), clock=FakeClock())
    ticket = pacer.request("chat", TELEGRAM_PRIVATE, Priority.URGENT)
    assert ticket.granted and ticket.granted_at == 0.0


async def test_group_window_caps_a_busy_minute() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    times: list[float] = []

    async def worker() -> None:
        for _ in range(20):
            await pacer.acquire("group", TELEGRAM_GROUP)
            times.append(clock.now())

    async with clock.auto():
        await asyncio.gather(worker(), worker(), worker())
    assert len(times) == 60
    assert max_in_window(times, 60.0) <= 18
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1.1 - EPS


async def test_global_window_spans_all_lanes() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(glob=[Window(3, 1.0)]), clock=clock)
    times: list[float] = []

    async def one(lane: str) -> None:
        await pacer.acquire(lane, "k")
        times.append(clock.now())

    async with clock.auto():
        await asyncio.gather(*(one(f"c{i}") for i in range(7)))
    assert times == pytest.approx([0, 0, 0, 1, 1, 1, 2], abs=EPS)


async def test_urgent_goes_first_globally_even_with_many_lanes() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(lane=[Window(10, 1.0)], glob=[Window(5, 1.0)]), clock=clock)
    order: list[tuple[Priority, str]] = []

    async def one(lane: str, priority: Priority) -> None:
        await pacer.acquire(lane, "k", priority)
        order.append((priority, lane))

    # Fill the global window, then queue edits first and first messages after them.
    for i in range(5):
        pacer.request(f"warm{i}", "k")
    edits = [one(f"e{i}", Priority.EDIT) for i in range(20)]
    urgent = [one(f"u{i}", Priority.URGENT) for i in range(20)]
    async with clock.auto():
        await asyncio.gather(*edits, *urgent)
    priorities = [p for p, _ in order]
    assert priorities == [Priority.URGENT] * 20 + [Priority.EDIT] * 20
    # FIFO within a priority.
    assert [lane for _, lane in order[:20]] == [f"u{i}" for i in range(20)]


async def test_urgent_overtakes_edit_within_a_lane_and_upgrade_moves_ahead() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(), clock=clock)
    pacer.request("c", "k")  # takes the slot at t=0
    edit_a = pacer.request("c", "k", Priority.EDIT)
    edit_b = pacer.request("c", "k", Priority.EDIT)
    urgent = pacer.request("c", "k", Priority.URGENT)
    edit_b.upgrade(Priority.URGENT)
    await clock.advance(1.0)
    assert urgent.granted and not edit_a.granted and not edit_b.granted
    await clock.advance(1.0)
    assert edit_b.granted and not edit_a.granted
    await clock.advance(1.0)
    assert edit_a.granted
    assert [t.granted_at for t in (urgent, edit_b, edit_a)] == pytest.approx([1, 2, 3])


async def test_penalty_blocks_only_that_lane_until_it_ends() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(), clock=clock)
    pacer.penalize("c", 30)
    assert pacer.is_blocked("c") and pacer.blocked_until("c") == 30
    assert not pacer.is_blocked("other")
    blocked = pacer.request("c", "k", Priority.URGENT)
    free = pacer.request("other", "k")
    assert free.granted
    await clock.advance(29.9)
    assert not blocked.granted
    await clock.advance(0.1)
    assert blocked.granted and blocked.granted_at == pytest.approx(30)
    assert not pacer.is_blocked("c")


async def test_penalize_all_blocks_every_lane() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(), clock=clock)
    pacer.penalize_all(5)
    ticket = pacer.request("x", "k")
    assert pacer.is_blocked("x")
    await clock.advance(4.9)
    assert not ticket.granted
    await clock.advance(0.1)
    assert ticket.granted


async def test_cancelled_waiter_consumes_nothing_and_leaves_nothing() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(), clock=clock)
    pacer.request("c", "k")
    waiter = asyncio.ensure_future(pacer.acquire("c", "k", Priority.URGENT))
    await settle()
    nxt = pacer.request("c", "k")
    waiter.cancel()
    await settle()
    assert pacer.waiting == 1
    await clock.advance(1.0)
    assert nxt.granted and nxt.granted_at == pytest.approx(1.0)
    assert pacer.waiting == 0 and pacer.granted == 2


async def test_refund_returns_the_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(rules(glob=[Window(1, 1.0)]), clock=clock)
    first = pacer.request("c", "k")
    first.refund()
    again = pacer.request("d", "k")
    assert again.granted and again.granted_at == 0.0


async def test_idle_lanes_are_forgotten() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    for i in range(1500):
        pacer.request(f"chat{i}", TELEGRAM_PRIVATE, Priority.URGENT)
        if i % 20 == 19:
            await clock.advance(1.0)  # stay inside the global budget (28 per 1.3 s)
    # Sweeps run every 30 s: only lanes active since the last one (20 a second) remain.
    assert pacer.lane_count <= 20 * 31
    pacer.penalize("penalized", 500)
    await clock.advance(100)
    pacer.request("late", TELEGRAM_PRIVATE)  # a request triggers the periodic sweep
    assert pacer.lane_count == 2  # "late" plus the still-penalized lane


async def test_unknown_lane_kind_is_an_error() -> None:
    pacer = Pacer(discord_rules(), clock=FakeClock())
    with pytest.raises(ValueError, match="lane kind"):
        pacer.request("c", TELEGRAM_PRIVATE)


async def test_penalty_before_first_request_keeps_windows_of_its_kind() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    pacer.penalize("c", 2)
    times: list[float] = []
    async with clock.auto():
        for _ in range(3):
            await pacer.acquire("c", TELEGRAM_PRIVATE)
            times.append(clock.now())
    assert times == pytest.approx([2.0, 3.1, 4.2])


async def test_a_thousand_lanes_share_the_global_budget_in_order() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    grants: list[float] = []

    async def chat(i: int) -> None:
        await pacer.acquire(f"c{i}", TELEGRAM_PRIVATE, Priority.URGENT)
        grants.append(clock.now())
        for _ in range(3):
            await pacer.acquire(f"c{i}", TELEGRAM_PRIVATE, Priority.EDIT)
            grants.append(clock.now())

    async with clock.auto():
        await asyncio.gather(*(chat(i) for i in range(1000)))
    assert len(grants) == 4000
    assert max_in_window(sorted(grants), 1.0) <= 25
    assert max_in_window(sorted(grants), 1.3) <= 28  # room for an event-loop stall
    # The driver sleeps about once per distinct grant time, never once per waiter and wake-up.
    assert clock.sleeps < len(grants)


def test_discord_share_scales_only_the_global_windows() -> None:
    whole = discord_rules()
    assert whole.global_windows == DISCORD_GLOBAL_WINDOWS
    half = discord_rules(0.5)  # one process of two, each with half the shards
    assert [(w.count, w.per) for w in half.global_windows] == [(20, 1.0), (22, 1.3)]
    assert half.lanes == whole.lanes  # a channel is served by one process: its limit is whole
    tiny = discord_rules(1 / 1000)  # never below one request per window
    assert [w.count for w in tiny.global_windows] == [1, 1]
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="share"):
            discord_rules(bad)


async def test_a_quarter_share_paces_a_crowd_at_a_quarter_of_the_budget() -> None:
    clock = FakeClock()
    pacer = Pacer(discord_rules(0.25), clock=clock)
    grants: list[float] = []

    async def channel(i: int) -> None:
        await pacer.acquire(f"c{i}", DISCORD_CHANNEL, Priority.URGENT)
        grants.append(clock.now())

    async with clock.auto():
        await asyncio.gather(*(channel(i) for i in range(200)))
    assert len(grants) == 200
    assert max_in_window(sorted(grants), 1.0) == 10  # 40 / 4
    assert max_in_window(sorted(grants), 1.3) <= 11  # 45 / 4
