"""The store: opening either engine, migrating and closing.

The queries live beside their feature (``conversations``, ``usage``, ``tasks``);
:class:`Store` puts them together over one :class:`~bot.store.engine.Engine`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from bot.store._base import Clock, new_token
from bot.store.conversations import ConversationQueries
from bot.store.coordination import Coordination, LocalCoordination, PostgresCoordination
from bot.store.engine import Engine
from bot.store.leases import LeaseQueries
from bot.store.location import DEFAULT_POOL_SIZE, is_postgres_url
from bot.store.processes import ProcessQueries
from bot.store.sqlite import DEFAULT_BUSY_TIMEOUT_MS, SqliteEngine
from bot.store.stats import StatsQueries
from bot.store.tasks import TaskQueries
from bot.store.usage import UsageQueries

if TYPE_CHECKING:
    from bot.core.ports import ChatStore, LimitsStore, ProcessRegistry, StatsStore, TaskStore

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "Store"]


class Store(
    ConversationQueries, UsageQueries, TaskQueries, LeaseQueries, StatsQueries, ProcessQueries
):
    """Everything the bot keeps: conversations, settings, usage, cooldowns, tasks, buttons
    and the registry of the processes serving the database.

    Implements the core's store ports. Open it with ``async with Store.open(location) as
    store:`` where ``location`` is a SQLite file (one connection, WAL mode) or a
    ``postgresql://`` URL (an asyncpg pool, for several processes on one database);
    pending migrations are applied at open. All methods are safe to call from concurrent
    coroutines. ``clock`` (Unix seconds) stamps every write.
    """

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        location: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> AsyncIterator[Store]:
        """Open, migrate, yield the store, then close it.

        ``":memory:"`` gives a private in-memory SQLite database (tests). Raises
        :class:`bot.store.errors.SchemaTooNewError` for a database from a newer bot and
        :class:`bot.store.errors.DatabaseError` when the database cannot be opened.
        """
        store = await cls.connect(
            location,
            clock=clock,
            token_factory=token_factory,
            busy_timeout_ms=busy_timeout_ms,
            pool_size=pool_size,
        )
        try:
            yield store
        finally:
            await store.close()

    @classmethod
    async def connect(
        cls,
        location: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> Store:
        """Like :meth:`open` without the context manager: the caller must :meth:`close`."""
        engine: Engine
        if is_postgres_url(location):
            from bot.store.postgres import PostgresEngine  # asyncpg only when it is used

            engine = await PostgresEngine.connect(str(location), pool_size=pool_size)
        else:
            engine = await SqliteEngine.connect(location, busy_timeout_ms=busy_timeout_ms)
        return cls(engine, clock=clock, token_factory=token_factory)

    @property
    def engine(self) -> Engine:
        return self._engine

    def coordination(self) -> Coordination:
        """How processes sharing this database reach each other (none for SQLite)."""
        from bot.store.postgres import PostgresEngine

        if isinstance(self._engine, PostgresEngine):
            engine = self._engine

            async def notify(channel: str, payload: str) -> None:
                await engine.execute("SELECT pg_notify(?, ?)", (channel, payload))

            return PostgresCoordination(engine.url, notify)
        return LocalCoordination()

    async def close(self) -> None:
        """Close the connection or pool (idempotent). Every write has already committed."""
        await self._engine.close()


if TYPE_CHECKING:
    # mypy proves here that Store satisfies the core's port.
    def _is_chat_store(store: Store) -> ChatStore:
        return store

    def _is_limits_store(store: Store) -> LimitsStore:
        return store

    def _is_stats_store(store: Store) -> StatsStore:
        return store

    def _is_process_registry(store: Store) -> ProcessRegistry:
        return store

    def _is_task_store(store: Store) -> TaskStore:
        return store
