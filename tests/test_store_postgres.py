"""The PostgreSQL engine's own rules: placeholders, the URL without its password, errors
converted at the boundary, and a cancelled transaction that leaves the pool usable."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.models import ConversationKey, Platform, Role, Turn
from bot.store import (
    SCHEMA_VERSION,
    ConstraintError,
    NewTask,
    Provider,
    SchemaTooNewError,
    Store,
    redacted,
)
from bot.store.postgres import to_postgres

KEY = ConversationKey(Platform.TELEGRAM, "1")


def test_placeholders_become_numbered() -> None:
    assert to_postgres("SELECT ? , ?") == "SELECT $1 , $2"
    assert to_postgres("x = ?1 OR y = ?1 || ?2") == "x = $1 OR y = $1 || $2"


def test_the_url_is_shown_without_its_password() -> None:
    url = "postgresql://bot:hunter2@db.example:5433/cometbot"
    assert redacted(url) == "postgresql://bot@db.example:5433/cometbot"


async def test_a_broken_constraint_is_a_store_error(postgres_url: str) -> None:
    async with Store.open(postgres_url) as store:
        with pytest.raises(ConstraintError):
            await store.create_task(NewTask(Provider.MIDJOURNEY, "x", "tg:1", KEY, parent_id=999))


async def test_a_transaction_cancelled_mid_query_is_a_cancellation(postgres_url: str) -> None:
    async with Store.open(postgres_url) as store:

        async def slow() -> None:
            async with store.engine.transaction() as session:
                await session.execute("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.add_turn(KEY, Turn(Role.USER, "still here"))
        assert [t.content for t in await store.recent_turns(KEY, limit=5)] == ["still here"]


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores = await asyncio.gather(*(Store.connect(postgres_url) for _ in range(4)))
    try:
        rows = await stores[0].engine.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [row[0] for row in rows] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        for store in stores:
            await store.close()


async def test_a_database_from_a_newer_bot_is_refused(postgres_url: str) -> None:
    async with Store.open(postgres_url) as store:
        await store.engine.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(SchemaTooNewError):
        await Store.connect(postgres_url)
