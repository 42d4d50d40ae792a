"""/stats: the store's operator queries and the admin view built on them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.access.stats import FINISHED_STATUSES, collect_stats, format_stats
from bot.core.models import ConversationKey, Platform, Role, Turn, Usage
from bot.store import TERMINAL_STATUSES, NewTask, Provider, Store, TaskStatus, TaskUpdate
from tests.fakes.clock import FakeClock
from tests.test_limits import NOON

KEY = ConversationKey(Platform.DISCORD, "10")


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(start=NOON)


@pytest.fixture
async def store(wall: FakeClock, store_location: str) -> AsyncIterator[Store]:
    async with Store.open(store_location, clock=wall) as store:
        yield store


async def test_finished_statuses_match_the_store() -> None:
    assert {s.value for s in TERMINAL_STATUSES} == FINISHED_STATUSES


async def test_empty_store(store: Store, wall: FakeClock) -> None:
    stats = await collect_stats(store, wall=wall)
    assert (stats.users_today, stats.users_total, stats.chat_turns, stats.tokens) == (0, 0, 0, 0)
    assert stats.queue_length == 0
    assert stats.oldest_queued is None
    text = format_stats(stats)
    assert "Queue: 0 unfinished" in text
    assert "Tasks: none yet" in text
    await store.ping()


async def test_stats_count_today_and_the_queue(store: Store, wall: FakeClock) -> None:
    # Yesterday: counted in "ever", not today.
    wall.set(NOON - 86_400)
    await store.record_usage("tg:old", "imagine")
    wall.set(NOON)
    for user, usage in (("dc:1", Usage(100, 20)), ("dc:2", Usage(50, 5)), ("dc:1", Usage(10, 1))):
        await store.add_turn(KEY, Turn(Role.ASSISTANT, "x"), user_id=user, usage=usage)
    await store.record_usage("dc:2", "imagine", 2)
    await store.record_usage("dc:3", "video")
    await store.refund_quota("dc:3", "video")  # refunded: dc:3 used nothing today
    ids = [
        await store.create_task(NewTask(p, "k", "dc:1", KEY))
        for p in (Provider.MIDJOURNEY, Provider.MIDJOURNEY, Provider.SUNO, Provider.KLING)
    ]
    await store.update_task(TaskUpdate(ids[1], status=TaskStatus.SUCCEEDED))
    await store.update_task(TaskUpdate(ids[2], status=TaskStatus.RUNNING))
    await store.update_task(TaskUpdate(ids[3], status=TaskStatus.FAILED))
    wall.set(NOON + 125)

    stats = await collect_stats(store, wall=wall)
    assert stats.day == "2024-05-01"
    assert stats.users_today == 2
    assert stats.users_total == 3
    assert stats.chat_turns == 3
    assert (stats.prompt_tokens, stats.completion_tokens) == (160, 26)
    assert stats.generations == {"imagine": 2, "music": 0, "video": 0, "images": 0}
    assert stats.tasks == {"pending": 1, "succeeded": 1, "running": 1, "failed": 1}
    assert stats.tasks_by_provider[("mj", "pending")] == 1
    assert stats.queue_length == 2
    assert stats.oldest_queued == pytest.approx(125)
    assert format_stats(stats).splitlines() == [
        "Today (2024-05-01 UTC):",
        "Users: 2 (ever: 3)",
        "Chat turns: 3",
        "Tokens: 186 (160 prompt, 26 completion)",
        "Generations: imagine 2, music 0, video 0, images 0",
        "Queue: 2 unfinished, the oldest for 3 min",
        "Tasks: pending 1, running 1, succeeded 1, failed 1",
    ]


async def test_stats_list_the_live_processes_and_their_roles(store: Store, wall: FakeClock) -> None:
    # Two processes on one database, and one that died a minute ago.
    await store.register_process("host:11", started_at=NOON - 600, roles=[])
    await wall.advance(60)
    await store.register_process("host:12", started_at=NOON, roles=["poller", "telegram"])
    await store.register_process("host:13", started_at=NOON, roles=["discord:0,1", "poller"])
    stats = await collect_stats(store, wall=wall)
    assert [p.name for p in stats.processes] == ["host:12", "host:13"]
    assert format_stats(stats).splitlines()[-1] == (
        "Processes: 2 — host:12 (poller, telegram), host:13 (discord:0,1, poller)"
    )
    # Within an hour the dead one counts too; a process holding nothing says so.
    everyone = format_stats(await collect_stats(store, wall=wall, stale_after=3600))
    assert "Processes: 3 — host:11 (no roles), host:12 (poller, telegram)," in everyone


async def test_stats_read_across_processes(wall: FakeClock, durable_location: str) -> None:
    """Two stores on one database stand for two processes: whichever answers /stats, the
    figures are the whole bot's."""
    async with (
        Store.open(durable_location, clock=wall) as one,
        Store.open(durable_location, clock=wall) as two,
    ):
        await one.register_process("host:1", started_at=NOON, roles=["poller", "telegram"])
        await two.register_process("host:2", started_at=NOON, roles=["discord:0", "poller"])
        await one.add_turn(KEY, Turn(Role.ASSISTANT, "x"), user_id="tg:1", usage=Usage(10, 2))
        await two.record_usage("dc:2", "imagine")
        await two.create_task(NewTask(Provider.MIDJOURNEY, "imagine", "dc:2", KEY))
        for store in (one, two):
            stats = await collect_stats(store, wall=wall)
            assert (stats.users_today, stats.chat_turns, stats.tokens) == (2, 1, 12)
            assert stats.generations["imagine"] == 1
            assert stats.queue_length == 1
            assert [p.name for p in stats.processes] == ["host:1", "host:2"]
