"""The SQLite store: opening, pragmas, migrations and closing.

The queries live beside their feature (``conversations``, ``usage``,
``tasks``); :class:`Store` puts them together over one aiosqlite connection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from bot.store._base import Clock, new_token
from bot.store.conversations import ConversationQueries
from bot.store.migrations import migrate
from bot.store.stats import StatsQueries
from bot.store.tasks import TaskQueries
from bot.store.usage import UsageQueries

if TYPE_CHECKING:
    from bot.core.ports import ChatStore, LimitsStore, StatsStore, TaskStore

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "Store"]

log = logging.getLogger(__name__)

#: How long a statement waits for another process's write lock before SQLITE_BUSY.
DEFAULT_BUSY_TIMEOUT_MS = 5_000


class Store(ConversationQueries, UsageQueries, TaskQueries, StatsQueries):
    """Everything the bot keeps: conversations, settings, usage, tasks and buttons.

    Implements :class:`bot.core.ports.ChatStore`. Open it with
    ``async with Store.open(path) as store:``; it owns one connection, in WAL
    mode, and applies pending migrations at open. All methods are safe to call
    from concurrent coroutines. ``clock`` (Unix seconds) stamps every write.
    """

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> AsyncIterator[Store]:
        """Open (creating parent directories), migrate, yield the store, then close it.

        ``":memory:"`` gives a private in-memory database (tests). Raises
        :class:`bot.store.errors.SchemaTooNewError` for a file from a newer bot.
        """
        store = await cls.connect(
            path, clock=clock, token_factory=token_factory, busy_timeout_ms=busy_timeout_ms
        )
        try:
            yield store
        finally:
            await store.close()

    @classmethod
    async def connect(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Store:
        """Like :meth:`open` without the context manager: the caller must :meth:`close`."""
        location = os.fspath(path)
        if location != ":memory:":
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit BEGINs; the store issues its own.
        db = await aiosqlite.connect(location, isolation_level=None)
        try:
            await _configure(db, busy_timeout_ms)
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, clock=clock, token_factory=token_factory)

    async def close(self) -> None:
        """Close the connection (idempotent). Every write has already committed."""
        async with self._lock:
            await self._db.close()


async def _configure(db: aiosqlite.Connection, busy_timeout_ms: int) -> None:
    # PRAGMAs take no parameters; every value here is our own int or keyword.
    await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms):d}")
    rows = list(await db.execute_fetchall("PRAGMA journal_mode = WAL"))
    mode = str(rows[0][0]).lower()
    if mode not in ("wal", "memory"):
        log.warning("SQLite refused WAL mode (journal_mode=%s); writers will block readers", mode)
    await db.execute("PRAGMA synchronous = NORMAL")
    await db.execute("PRAGMA foreign_keys = ON")


if TYPE_CHECKING:
    # mypy proves here that Store satisfies the core's port.
    def _is_chat_store(store: Store) -> ChatStore:
        return store

    def _is_limits_store(store: Store) -> LimitsStore:
        return store

    def _is_stats_store(store: Store) -> StatsStore:
        return store

    def _is_task_store(store: Store) -> TaskStore:
        return store
