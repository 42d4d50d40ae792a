"""What the store's queries run on: an :class:`Engine` (SQLite or PostgreSQL) and its sessions.

The query mixins write plain SQL once, with ``?`` placeholders (``?1``, ``?2`` where a
value repeats), in the subset both databases read the same way; the PostgreSQL engine
turns the placeholders into ``$n``. Where the two dialects differ (SQLite's ``INDEXED
BY``, PostgreSQL's ``FOR UPDATE SKIP LOCKED``), a query asks :attr:`Engine.dialect`.
Values whose type the SQL alone does not fix are cast (``CAST(? AS BIGINT)``): PostgreSQL
types every parameter at prepare time, SQLite takes whatever it is given.

Each engine converts its driver's errors at this boundary: a broken constraint becomes
:class:`~bot.store.errors.ConstraintError`, anything else the database refuses or cannot
do (disk full, connection lost) :class:`~bot.store.errors.DatabaseError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

__all__ = ["Dialect", "Engine", "Params", "Row", "Session"]

Params: TypeAlias = Sequence[Any]
Row: TypeAlias = Any  # a tuple-like row (sqlite3 tuple, asyncpg Record); read by position


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Session(Protocol):
    """Statements on one connection; inside :meth:`Engine.transaction`, one transaction."""

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; how many rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...


class Engine(Session, Protocol):
    """A database: single statements (each atomic on its own) and transactions."""

    @property
    def dialect(self) -> Dialect: ...

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """Commit when the block ends, roll back if it raises."""
        ...

    async def close(self) -> None: ...
