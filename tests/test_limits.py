"""Per-user limits over a real in-memory Store, on virtual time: cooldowns, quotas, the task cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from bot.core.access.limits import (
    CooldownActive,
    LimitExceeded,
    Limits,
    LimitsConfig,
    QuotaExceeded,
    Reservation,
    TooManyTasks,
    quota_kind,
)
from bot.core.access.usage import format_duration
from bot.core.models import ConversationKey, Platform, Role, Turn, Usage
from bot.store import NewTask, Provider, Store, TaskStatus, TaskUpdate
from tests.fakes.clock import FakeClock

# 2024-05-01 12:00:00 UTC
NOON = 1_714_564_800.0
USER = "tg:1"
ADMIN = "tg:99"
KEY = ConversationKey(Platform.TELEGRAM, "1")


@pytest.fixture
def wall() -> FakeClock:
    """The store's and the limits' Unix clock (quotas and cooldowns)."""
    return FakeClock(start=NOON)


@pytest.fixture
async def store(wall: FakeClock, store_location: str) -> AsyncIterator[Store]:
    async with Store.open(store_location, clock=wall) as store:
        yield store


def make(store: Store, wall: FakeClock, **config: Any) -> Limits:
    return Limits(LimitsConfig(**config), store, wall=wall)


async def outcomes(calls: list[Awaitable[Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run ``calls`` concurrently; the results that succeeded and the exceptions raised."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    return ok, failed


async def add_task(store: Store, owner: str = USER) -> int:
    return await store.create_task(NewTask(Provider.MIDJOURNEY, "imagine", owner, KEY))


# -- chat ----------------------------------------------------------------------------------------


async def test_chat_cooldown(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, chat_cooldown=12.0)
    await limits.admit_chat(USER)
    await wall.advance(0.5)
    with pytest.raises(CooldownActive) as info:
        await limits.admit_chat(USER)
    assert info.value.message == "Please wait 12 s before your next request."
    assert info.value.retry_after == pytest.approx(11.5)
    await limits.admit_chat("tg:2")  # other users have their own cooldown
    await wall.advance(11.5)
    await limits.admit_chat(USER)


async def test_a_refused_request_does_not_extend_the_cooldown(
    store: Store, wall: FakeClock
) -> None:
    limits = make(store, wall, chat_cooldown=10.0)
    await limits.admit_chat(USER)
    await wall.advance(9)
    with pytest.raises(CooldownActive, match="wait 1 s"):
        await limits.admit_chat(USER)
    await wall.advance(1)
    await limits.admit_chat(USER)


async def test_chat_cooldown_holds_under_a_burst(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, chat_cooldown=5.0, daily_chat_tokens=1000)
    ok, failed = await outcomes([limits.admit_chat(USER) for _ in range(20)])
    assert len(ok) == 1
    assert len(failed) == 19
    assert all(isinstance(exc, CooldownActive) for exc in failed)


async def test_chat_token_quota(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, daily_chat_tokens=1000, exempt=frozenset({ADMIN}))
    await limits.admit_chat(USER)
    for user in (USER, ADMIN):
        await store.add_turn(
            KEY,
            Turn(Role.ASSISTANT, "answer"),
            user_id=user,
            usage=Usage(prompt_tokens=700, completion_tokens=300),
        )
    with pytest.raises(QuotaExceeded) as info:
        await limits.admit_chat(USER)
    assert info.value.message == (
        "You have used your 1,000 chat tokens for today; the quota resets at 00:00 UTC (in 12 h)."
    )
    await limits.admit_chat(ADMIN)  # exempt
    await wall.advance(12 * 3600)  # a new UTC day
    await limits.admit_chat(USER)


# -- generations ---------------------------------------------------------------------------------


async def test_daily_quota_refuses_the_next_and_a_refund_restores_one(
    store: Store, wall: FakeClock
) -> None:
    limits = make(store, wall, daily_imagine=10)
    reservations = [await limits.admit_generation(USER, "imagine") for _ in range(10)]
    with pytest.raises(QuotaExceeded) as info:
        await limits.admit_generation(USER, "imagine")
    assert info.value.message == (
        "You have used your 10 images for today; the quota resets at 00:00 UTC (in 12 h)."
    )
    assert (await store.usage_today(USER))["imagine"] == 10
    assert await reservations[3].refund() is True
    assert await reservations[3].refund() is False  # refunded once only
    assert (await store.usage_today(USER))["imagine"] == 9
    await limits.admit_generation(USER, "imagine")
    with pytest.raises(QuotaExceeded):
        await limits.admit_generation(USER, "imagine")
    # Other kinds have their own (here unlimited) quota, and still count.
    await limits.admit_generation(USER, "music")
    assert (await store.usage_today(USER))["music"] == 1


async def test_daily_quota_holds_under_a_burst(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, daily_video=5)
    ok, failed = await outcomes([limits.admit_generation(USER, "video") for _ in range(20)])
    assert len(ok) == 5
    assert all(isinstance(exc, QuotaExceeded) for exc in failed)
    assert (await store.usage_today(USER))["video"] == 5


async def test_generation_cooldown_holds_under_a_burst(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, generation_cooldown=30.0)
    ok, failed = await outcomes([limits.admit_generation(USER, "imagine") for _ in range(20)])
    assert len(ok) == 1
    assert len(failed) == 19
    assert all(isinstance(exc, CooldownActive) for exc in failed)
    assert (await store.usage_today(USER))["imagine"] == 1  # refused ones counted nothing
    await wall.advance(30)
    await limits.admit_generation(USER, "imagine")


async def test_concurrent_task_cap_holds_under_a_burst(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, max_concurrent_tasks=2)
    ok, failed = await outcomes([limits.admit_generation(USER, "imagine") for _ in range(20)])
    assert len(ok) == 2
    assert all(isinstance(exc, TooManyTasks) for exc in failed)
    assert failed[0].args[0] == (
        "You already have 2 generations in progress; please wait for one to finish."
    )
    # The admitted ones write their rows: they now count through the store.
    task_ids = []
    for reservation in ok:
        task_ids.append(await add_task(store))
        reservation.recorded()
    with pytest.raises(TooManyTasks):
        await limits.admit_generation(USER, "imagine")
    await store.update_task(TaskUpdate(task_ids[0], status=TaskStatus.SUCCEEDED))
    await limits.admit_generation(USER, "imagine")
    with pytest.raises(TooManyTasks):
        await limits.admit_generation(USER, "imagine")


async def test_burst_while_rows_are_being_written(store: Store, wall: FakeClock) -> None:
    """Admission, row and submit interleave across 20 concurrent requests: never over the cap."""
    limits = make(store, wall, max_concurrent_tasks=3, daily_imagine=100)
    running = 0
    peak = 0

    async def generate() -> None:
        nonlocal running, peak
        async with await limits.admit_generation(USER, "imagine") as reservation:
            await add_task(store)
            reservation.recorded()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)

    ok, failed = await outcomes([generate() for _ in range(20)])
    assert len(ok) == 3
    assert peak == 3
    assert all(isinstance(exc, TooManyTasks) for exc in failed)
    assert await store.count_active_tasks(USER) == 3


async def test_a_failed_submit_refunds_and_frees_its_slot(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, daily_music=1, max_concurrent_tasks=1)
    with pytest.raises(RuntimeError):
        async with await limits.admit_generation(USER, "music"):
            raise RuntimeError("submit refused")
    assert (await store.usage_today(USER)).get("music", 0) == 0
    reservation = await limits.admit_generation(USER, "music")
    assert isinstance(reservation, Reservation)
    assert (await store.usage_today(USER))["music"] == 1


async def test_a_refused_generation_starts_no_cooldown(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, daily_imagine=1, generation_cooldown=10.0)
    first = await limits.admit_generation(USER, "imagine")
    await wall.advance(10)
    with pytest.raises(QuotaExceeded):
        await limits.admit_generation(USER, "imagine")
    await first.refund()
    await limits.admit_generation(USER, "imagine")  # no cooldown from the refused attempt


async def test_a_generation_refused_by_the_task_cap_starts_no_cooldown(
    store: Store, wall: FakeClock
) -> None:
    limits = make(store, wall, max_concurrent_tasks=1, generation_cooldown=10.0)
    task_id = await add_task(store)
    with pytest.raises(TooManyTasks):
        await limits.admit_generation(USER, "imagine")
    await store.update_task(TaskUpdate(task_id, status=TaskStatus.SUCCEEDED))
    await limits.admit_generation(USER, "imagine")  # no cooldown from the refused attempt
    with pytest.raises(CooldownActive):
        await limits.admit_generation(USER, "imagine")


async def test_a_late_refund_goes_to_the_day_of_the_reservation(
    store: Store, wall: FakeClock
) -> None:
    limits = make(store, wall, daily_imagine=2)
    wall.set(NOON + 12 * 3600 - 1)  # 23:59:59 UTC
    reservation = await limits.admit_generation(USER, "imagine")
    await wall.advance(2)  # the task fails after midnight
    await limits.refund(USER, "imagine", at=reservation.at)
    assert await store.usage_today(USER, day="2024-05-01") == {"imagine": 0}
    assert await store.usage_today(USER) == {}


async def test_admins_are_exempt_but_counted(store: Store, wall: FakeClock) -> None:
    config: dict[str, Any] = {
        "daily_imagine": 1,
        "generation_cooldown": 60.0,
        "max_concurrent_tasks": 1,
        "chat_cooldown": 60.0,
    }
    limits = make(store, wall, exempt=frozenset({ADMIN}), **config)
    for _ in range(5):
        await limits.admit_generation(ADMIN, "imagine")
        await limits.admit_chat(ADMIN)
    assert (await store.usage_today(ADMIN))["imagine"] == 5
    # Not exempt when configured so (the composition root passes an empty set).
    strict = make(store, wall, **config)
    with pytest.raises(LimitExceeded):
        await strict.admit_generation(ADMIN, "imagine")


async def test_unknown_kind_is_a_programming_error(store: Store, wall: FakeClock) -> None:
    with pytest.raises(ValueError, match="not a quota kind"):
        await make(store, wall).admit_generation(USER, "upscale")


# -- /usage --------------------------------------------------------------------------------------


async def test_usage_summary(store: Store, wall: FakeClock) -> None:
    limits = make(
        store,
        wall,
        daily_chat_tokens=50_000,
        daily_imagine=10,
        daily_video=1,
        max_concurrent_tasks=2,
        chat_cooldown=3.0,
        exempt=frozenset({ADMIN}),
    )
    await store.add_turn(KEY, Turn(Role.ASSISTANT, "a"), user_id=USER, usage=Usage(3000, 456))
    for kind in ("imagine", "imagine", "imagine", "video"):
        (await limits.admit_generation(USER, kind)).recorded()  # (finished tasks)
    await add_task(store)  # one still running
    await wall.advance(6 * 3600 + 57 * 60)  # 18:57 UTC
    text = await limits.usage_summary(USER)
    assert text.splitlines() == [
        "Your use today (UTC):",
        "Chat: 1 reply, 3,456 tokens — 46,544 of 50,000 left",
        "Images: 3 — 7 of 10 left",
        "Songs: 0 (no daily limit)",
        "Videos: 1 — 0 of 1 left",
        "Pictures: 0 (no daily limit)",
        "Generations in progress: 1 (at most 2 at a time)",
        "Wait between requests: chat 3 s.",
        "Quotas reset at 00:00 UTC (in 5 h 3 min).",
    ]
    admin = await limits.usage_summary(ADMIN)
    assert "no limits apply to you" in admin
    assert "left" not in admin


def test_format_duration() -> None:
    assert format_duration(0.2) == "1 s"
    assert format_duration(40) == "40 s"
    assert format_duration(61) == "2 min"
    assert format_duration(3600) == "1 h"
    assert format_duration(5 * 3600 + 2 * 60 + 1) == "5 h 3 min"


async def test_refund_task_gives_back_the_providers_quota(store: Store, wall: FakeClock) -> None:
    limits = make(store, wall, daily_music=1)
    (await limits.admit_generation(USER, quota_kind("suno"))).recorded()
    task_id = await store.create_task(NewTask(Provider.SUNO, "music", USER, KEY))
    with pytest.raises(QuotaExceeded):
        await limits.admit_generation(USER, "music")
    await wall.advance(13 * 3600)  # the poller sees it fail tomorrow
    task = await store.get_task(task_id)
    assert task is not None
    await limits.refund_task(task)
    assert await store.usage_today(USER, day="2024-05-01") == {"music": 0}
    assert [quota_kind(p) for p in ("mj", "suno", "kling")] == ["imagine", "music", "video"]
