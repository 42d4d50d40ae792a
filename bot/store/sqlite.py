"""The SQLite engine: one aiosqlite connection in WAL mode, serialised by a lock.

aiosqlite runs every call on the connection's thread in order, but a transaction spans
several awaits: without the lock another coroutine's statement could land inside it (or
see its uncommitted rows).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiosqlite

from bot.store.engine import Dialect, Params, Row, Session
from bot.store.errors import ConstraintError, DatabaseError
from bot.store.migrations import migrate

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SqliteEngine"]

log = logging.getLogger(__name__)

#: How long a statement waits for another process's write lock before SQLITE_BUSY.
DEFAULT_BUSY_TIMEOUT_MS = 5_000


@contextmanager
def _converted() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConstraintError(str(exc)) from exc
    except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection is closed
        raise DatabaseError(str(exc)) from exc


class _Connection:
    """Statements on the one connection; the caller holds the engine's lock."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with _converted():
            return list(await self._db.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _converted():
            async with self._db.execute(sql, params) as cursor:
                return max(cursor.rowcount, 0)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with _converted():
            await self._db.executemany(sql, rows)


class SqliteEngine:
    """Implements :class:`bot.store.engine.Engine` over one file (or ``":memory:"``)."""

    dialect = Dialect.SQLITE

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._session = _Connection(db)
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    ) -> SqliteEngine:
        """Open (creating parent directories), configure and migrate the file."""
        location = os.fspath(path)
        if location != ":memory:":
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit BEGINs; the engine issues its own.
        db = await aiosqlite.connect(location, isolation_level=None)
        try:
            with _converted():
                await _configure(db, busy_timeout_ms)
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await self._session.fetch(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._lock:
            return await self._session.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._lock:
            await self._session.executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """Hold the lock and a write transaction.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a busy file makes the
        transaction wait (busy_timeout) at its start instead of failing half-way with
        SQLITE_BUSY on the first write.
        """
        async with self._lock:
            await self._session.execute("BEGIN IMMEDIATE")
            try:
                yield self._session
                await self._session.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise

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
