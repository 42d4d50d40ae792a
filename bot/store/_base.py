"""Shared plumbing of the store's query mixins: one connection, one lock, one clock."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import aiosqlite

Params: TypeAlias = Sequence[Any]
Row: TypeAlias = Any  # a sqlite3 row tuple; columns are read by position
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
    """Owns the aiosqlite connection and serialises access to it.

    aiosqlite runs every call on the connection's thread in order, but a
    transaction spans several awaits: without the lock another coroutine's
    statement could land inside it (or see its uncommitted rows).
    """

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        clock: Clock = time.time,
        token_factory: Callable[[], str] = new_token,
    ) -> None:
        self._db = db
        self._clock = clock
        self._new_token = token_factory
        self._lock = asyncio.Lock()
        # str(ConversationKey) -> conversations.id; ids never change once committed.
        self._conversation_ids: dict[str, int] = {}

    async def _fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    async def _fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Params = ()) -> tuple[int, int | None]:
        """Run one statement (atomic on its own); returns ``(rowcount, lastrowid)``."""
        async with self._lock, self._db.execute(sql, params) as cursor:
            return cursor.rowcount, cursor.lastrowid

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock and a write transaction; commit on success, roll back on any error.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a busy file makes
        the transaction wait (busy_timeout) at its start instead of failing
        half-way with SQLITE_BUSY on the first write.
        """
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # A rolled-back transaction may have created conversations.
                self._conversation_ids.clear()
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise
