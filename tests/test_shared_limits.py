"""Cooldowns in the store (design §9, shared limits), on both backends: one statement checks
and starts a cooldown, so a burst from any number of processes admits one request, and a
cooldown outlives the process that started it."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.access.limits import CooldownActive, Limits, LimitsConfig
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.test_limits import NOON

USER = "tg:1"


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(start=NOON)


async def test_start_cooldown_starts_refuses_and_runs_out(
    wall: FakeClock, store_location: str
) -> None:
    async with Store.open(store_location, clock=wall) as store:
        assert await store.start_cooldown(USER, "chat", 10.0) == 0.0
        await wall.advance(4)
        assert await store.start_cooldown(USER, "chat", 10.0) == pytest.approx(6.0)
        # Kinds and users are separate.
        assert await store.start_cooldown(USER, "generation", 10.0) == 0.0
        assert await store.start_cooldown("tg:2", "chat", 10.0) == 0.0
        await wall.advance(6)
        assert await store.start_cooldown(USER, "chat", 10.0) == 0.0
        await store.clear_cooldown(USER, "chat")
        assert await store.start_cooldown(USER, "chat", 10.0) == 0.0
        assert await store.start_cooldown(USER, "chat", 0.0) == 0.0  # no cooldown: no row


async def test_many_concurrent_starts_from_two_processes_pass_once(
    wall: FakeClock, durable_location: str
) -> None:
    # Two stores on one database stand for two processes; the PostgreSQL pools run the
    # statements on separate connections, really at the same time.
    async with (
        Store.open(durable_location, clock=wall, pool_size=10) as one,
        Store.open(durable_location, clock=wall, pool_size=10) as two,
    ):
        starts = [store.start_cooldown(USER, "generation", 30.0) for store in (one, two) * 25]
        results = await asyncio.gather(*starts)
    assert results.count(0.0) == 1
    assert all(left == pytest.approx(30.0) for left in results if left)


async def test_a_cooldown_holds_across_processes(wall: FakeClock, durable_location: str) -> None:
    config = LimitsConfig(chat_cooldown=20.0, generation_cooldown=60.0)
    async with (
        Store.open(durable_location, clock=wall) as one,
        Store.open(durable_location, clock=wall) as two,
    ):
        here, there = Limits(config, one, wall=wall), Limits(config, two, wall=wall)
        await here.admit_chat(USER)
        (await here.admit_generation(USER, "imagine")).recorded()
        await wall.advance(5)
        with pytest.raises(CooldownActive) as chat:
            await there.admit_chat(USER)
        assert chat.value.message == "Please wait 15 s before your next request."
        with pytest.raises(CooldownActive) as generation:
            await there.admit_generation(USER, "imagine")
        assert generation.value.retry_after == pytest.approx(55.0)
        await wall.advance(15)
        await there.admit_chat(USER)


async def test_a_cooldown_survives_a_restart(wall: FakeClock, durable_location: str) -> None:
    config = LimitsConfig(chat_cooldown=30.0)
    async with Store.open(durable_location, clock=wall) as store:
        await Limits(config, store, wall=wall).admit_chat(USER)
    await wall.advance(10)
    # A new process on the same database (a restart): the wait goes on.
    async with Store.open(durable_location, clock=wall) as store:
        limits = Limits(config, store, wall=wall)
        with pytest.raises(CooldownActive) as info:
            await limits.admit_chat(USER)
        assert info.value.retry_after == pytest.approx(20.0)
        await wall.advance(20)
        await limits.admit_chat(USER)


async def test_exempt_users_start_no_cooldown_in_the_store(
    wall: FakeClock, store_location: str
) -> None:
    config = LimitsConfig(chat_cooldown=30.0, generation_cooldown=30.0, exempt=frozenset({USER}))
    async with Store.open(store_location, clock=wall) as store:
        limits = Limits(config, store, wall=wall)
        for _ in range(3):
            await limits.admit_chat(USER)
            await limits.admit_generation(USER, "imagine")
        # Nothing was started for them: a non-exempt admission of the same id passes at once.
        strict = Limits(LimitsConfig(chat_cooldown=30.0), store, wall=wall)
        await strict.admit_chat(USER)
