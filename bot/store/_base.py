"""Shared plumbing of the store's query mixins: one engine, one clock, one id cache."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeAlias

from bot.store.engine import Dialect, Engine, Params, Row, Session

__all__ = ["TOKEN_BYTES", "Clock", "Params", "Row", "StoreBase", "new_token", "utc_day"]

Clock: TypeAlias = Callable[[], float]

#: Random bytes per button token: 8 bytes -> 11 url-safe characters, 64 bits.
TOKEN_BYTES = 8


def new_token() -> str:
    """A short, random, url-safe button token (``mj:<token>`` fits Telegram's 64 bytes)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def utc_day(ts: float) -> str:
    """The UTC calendar day of a Unix time, as ``YYYY-MM-DD`` (the usage counters' key)."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class StoreBase:
    """Runs the mixins' SQL on an :class:`~bot.store.engine.Engine` (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._new_token = token_factory
        # str(ConversationKey) -> conversations.id; ids never change once committed.
        self._conversation_ids: dict[str, int] = {}

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    async def _fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._engine.fetch(sql, params)

    async def _fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._engine.fetch(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Params = ()) -> int:
        """Run one statement (atomic on its own); how many rows it changed."""
        return await self._engine.execute(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        try:
            async with self._engine.transaction() as session:
                yield session
        except BaseException:
            # A rolled-back transaction may have created conversations.
            self._conversation_ids.clear()
            raise
