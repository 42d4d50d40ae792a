"""Conversations, turns, settings and usage against a real SQLite database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.models import ChannelSettings, ConversationKey, Platform, Role, Turn, Usage
from bot.store import Store, UsageKind
from bot.store.conversations import RECENT_TURNS_SQL
from bot.store.engine import Dialect
from tests.fakes.clock import FakeClock

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY = 86_400.0
KEY = ConversationKey(Platform.TELEGRAM, "-100123")
OTHER = ConversationKey(Platform.DISCORD, "555")
TOPIC = ConversationKey(Platform.TELEGRAM, "-100123", "7")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
async def store(clock: FakeClock, store_location: str) -> AsyncIterator[Store]:
    async with Store.open(store_location, clock=clock) as opened:
        yield opened


async def _add(store: Store, key: ConversationKey, *contents: str) -> list[int]:
    return [await store.add_turn(key, Turn(Role.USER, text)) for text in contents]


async def test_turn_round_trip(store: Store, clock: FakeClock) -> None:
    user_id = await store.add_turn(
        KEY, Turn(Role.USER, "hello ⚡", speaker="Ann", tokens=7), user_id="tg:1"
    )
    await clock.advance(2)
    bot_id = await store.add_turn(
        KEY, Turn(Role.ASSISTANT, "hi Ann", tokens=3, created_at=T0 + 1.5), model="gpt-4o"
    )
    turns = await store.recent_turns(KEY, limit=10)
    assert turns == [
        Turn(Role.USER, "hello ⚡", speaker="Ann", tokens=7, created_at=T0, id=user_id),
        Turn(Role.ASSISTANT, "hi Ann", tokens=3, created_at=T0 + 1.5, id=bot_id),
    ]
    assert bot_id > user_id


async def test_recent_turns_are_the_newest_oldest_first(store: Store) -> None:
    await _add(store, KEY, *(f"m{i}" for i in range(10)))
    assert [t.content for t in await store.recent_turns(KEY, limit=3)] == ["m7", "m8", "m9"]
    assert len(await store.recent_turns(KEY, limit=100)) == 10
    assert await store.recent_turns(KEY, limit=0) == []


async def test_conversations_are_separate(store: Store) -> None:
    await _add(store, KEY, "group")
    await _add(store, TOPIC, "topic")
    await _add(store, OTHER, "discord")
    assert [t.content for t in await store.recent_turns(KEY, limit=5)] == ["group"]
    assert [t.content for t in await store.recent_turns(TOPIC, limit=5)] == ["topic"]
    assert [t.content for t in await store.recent_turns(OTHER, limit=5)] == ["discord"]
    unknown = ConversationKey(Platform.DISCORD, "nobody")
    assert await store.recent_turns(unknown, limit=5) == []


async def test_reset_hides_old_turns_but_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "reset.sqlite3"
    async with Store.open(path) as store:
        await _add(store, KEY, "old1", "old2")
        await _add(store, OTHER, "elsewhere")
        await store.reset(KEY)
        assert await store.recent_turns(KEY, limit=10) == []
        await _add(store, KEY, "new1", "new2")

        assert [t.content for t in await store.recent_turns(KEY, limit=10)] == ["new1", "new2"]
        assert [t.content for t in await store.recent_turns(KEY, limit=1)] == ["new2"]
        assert [t.content for t in await store.recent_turns(OTHER, limit=10)] == ["elsewhere"]
    with sqlite3.connect(path) as conn:
        kept = [row[0] for row in conn.execute("SELECT content FROM turns ORDER BY id")]
    assert kept == ["old1", "old2", "elsewhere", "new1", "new2"]


async def test_reset_twice_and_reset_of_a_new_conversation(store: Store) -> None:
    await store.reset(KEY)  # nothing stored yet: creates the row, hides nothing
    await _add(store, KEY, "a")
    await store.reset(KEY)
    await store.reset(KEY)
    await _add(store, KEY, "b")
    assert [t.content for t in await store.recent_turns(KEY, limit=10)] == ["b"]


async def test_settings_default_set_and_clear(store: Store) -> None:
    assert await store.get_settings(KEY) == ChannelSettings()
    await store.set_model(KEY, "claude-sonnet-4")
    await store.set_persona(KEY, "You are a pirate.")
    await _add(store, KEY, "turns do not touch settings")
    await store.reset(KEY)
    assert await store.get_settings(KEY) == ChannelSettings("claude-sonnet-4", "You are a pirate.")
    assert await store.get_settings(OTHER) == ChannelSettings()
    await store.set_model(KEY, None)
    assert await store.get_settings(KEY) == ChannelSettings(None, "You are a pirate.")


async def test_add_turn_with_usage_counts_for_the_user(store: Store) -> None:
    await store.add_turn(KEY, Turn(Role.USER, "q"), user_id="tg:1")
    await store.add_turn(
        KEY, Turn(Role.ASSISTANT, "a"), user_id="tg:1", usage=Usage(120, 30), model="m"
    )
    await store.add_turn(KEY, Turn(Role.ASSISTANT, "b"), user_id="tg:1", usage=Usage(100, 5))
    assert await store.usage_today("tg:1") == {
        UsageKind.PROMPT_TOKENS: 220,
        UsageKind.COMPLETION_TOKENS: 35,
        UsageKind.CHAT: 2,
    }
    # An assistant turn without its own count takes the real completion tokens.
    assert [t.tokens for t in await store.recent_turns(KEY, limit=3)] == [0, 30, 5]


async def test_usage_is_per_user_and_per_day(store: Store, clock: FakeClock) -> None:
    await store.record_usage("tg:1", UsageKind.IMAGINE)
    await store.record_usage("tg:1", UsageKind.IMAGINE, 2)
    await store.record_usage("dc:1", UsageKind.MUSIC)
    assert await store.usage_today("tg:1") == {"imagine": 3}
    assert await store.usage_today("dc:1") == {"music": 1}
    assert await store.usage_today("nobody") == {}

    await clock.advance(DAY)
    assert await store.usage_today("tg:1") == {}
    assert await store.usage_today("tg:1", day="2023-11-14") == {"imagine": 3}
    with pytest.raises(ValueError, match="negative"):
        await store.record_usage("tg:1", UsageKind.IMAGINE, -1)


async def test_quota_reserve_and_refund(store: Store, clock: FakeClock) -> None:
    assert await store.reserve_quota("tg:1", "imagine", limit=2)
    assert await store.reserve_quota("tg:1", "imagine", limit=2)
    assert not await store.reserve_quota("tg:1", "imagine", limit=2)
    assert not await store.reserve_quota("tg:2", "imagine", limit=2, amount=3)
    assert await store.usage_today("tg:2") == {}

    reserved_at = clock()
    await clock.advance(DAY)  # the submit failed after midnight: the refund goes to the old day
    await store.refund_quota("tg:1", "imagine", at=reserved_at)
    assert await store.usage_today("tg:1", day="2023-11-14") == {"imagine": 1}
    await store.refund_quota("tg:1", "imagine", amount=5, at=reserved_at)
    assert await store.usage_today("tg:1", day="2023-11-14") == {"imagine": 0}


async def test_concurrent_reservations_never_overshoot(store: Store) -> None:
    results = await asyncio.gather(
        *(store.reserve_quota("tg:1", "video", limit=3) for _ in range(10))
    )
    assert sum(results) == 3
    assert await store.usage_today("tg:1") == {"video": 3}


async def test_concurrent_writers_share_the_connection(store: Store) -> None:
    keys = [ConversationKey(Platform.DISCORD, str(i)) for i in range(20)]
    await asyncio.gather(
        *(
            store.add_turn(key, Turn(Role.USER, f"{key.chat_id}-{n}"), user_id="u", usage=Usage(1))
            for n in range(5)
            for key in keys
        )
    )
    for key in keys:
        assert len(await store.recent_turns(key, limit=10)) == 5
    assert (await store.usage_today("u"))["prompt_tokens"] == 100


async def test_recent_turns_query_is_an_index_range_scan(tmp_path: Path) -> None:
    path = tmp_path / "plan.sqlite3"
    async with Store.open(path) as store:
        for key in (KEY, OTHER):
            await _add(store, key, *(f"m{i}" for i in range(50)))
        await store.reset(KEY)
        await _add(store, KEY, "after")
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")  # the plan must hold with statistics, too
        plan = [
            row[3]
            for row in conn.execute(
                f"EXPLAIN QUERY PLAN {RECENT_TURNS_SQL[Dialect.SQLITE]}", (str(KEY), 5)
            )
        ]
    text = "\n".join(plan)
    assert "turns_by_conversation (conversation_id=? AND id>?)" in text, text
    assert "USING INDEX" in text or "USING COVERING INDEX" in text, text
    assert not any(step.startswith("SCAN") for step in plan), text
    assert "TEMP B-TREE" not in text, text


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
async def test_recent_turns_query_is_an_index_range_scan_on_postgresql(
    postgres_url: str, plan_cache_mode: str
) -> None:
    """A conversation holding 1 % of the turns: the plan must be a range of
    turns_by_conversation, not the primary key walked backwards and filtered (asyncpg
    prepares statements, and PostgreSQL switches to a generic plan after five runs)."""
    import asyncpg

    from bot.store.postgres import to_postgres

    async with Store.open(postgres_url) as store:
        for key in (KEY, OTHER):
            await store.add_turn(key, Turn(Role.USER, "first"))
    conn = await asyncpg.connect(postgres_url)
    try:
        ids = dict(await conn.fetch("SELECT key, id FROM conversations"))
        rows = [
            (ids[str(KEY if n % 100 == 0 else OTHER)], "user", f"m{n}", 0, 0.0)
            for n in range(20_000)
        ]
        await conn.copy_records_to_table(
            "turns",
            records=rows,
            columns=("conversation_id", "role", "content", "tokens", "created_at"),
        )
        await conn.execute("ANALYZE")
        await conn.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        explain = await conn.prepare("EXPLAIN " + to_postgres(RECENT_TURNS_SQL[Dialect.POSTGRESQL]))
        plan = "\n".join(row[0] for row in await explain.fetch(str(KEY), 5))
    finally:
        await conn.close()
    assert "Index Scan Backward using turns_by_conversation" in plan, plan
    assert "Index Cond: ((conversation_id = ANY (ARRAY[$0])) AND (id > $1))" in plan, plan
    assert "turns_pkey" not in plan and "Filter: (conversation_id" not in plan, plan
    assert "Sort" not in plan, plan
