"""The PostgreSQL engine: an asyncpg pool, for several bot processes on one database (§9).

Queries are written once with SQLite's ``?`` placeholders; :func:`to_postgres` turns
them into asyncpg's ``$n`` (cached: the same few dozen statements run all day, and
asyncpg keeps each prepared per connection).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import asyncpg

from bot.store.engine import Dialect, Params, Row, Session
from bot.store.errors import ConstraintError, DatabaseError
from bot.store.location import DEFAULT_POOL_SIZE
from bot.store.pg_migrations import migrate

__all__ = ["PostgresEngine", "to_postgres"]
_PLACEHOLDER: Final = re.compile(r"\?(\d*)")
_ROWCOUNT: Final = re.compile(r"(\d+)$")


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """``?`` -> ``$1, $2, ...`` in order; ``?N`` -> ``$N``. (No query of ours has a
    question mark inside a string literal.)"""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(1):
            return f"${match.group(1)}"
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(number, sql)


@contextmanager
def _converted() -> Iterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise ConstraintError(str(exc)) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise DatabaseError(f"{type(exc).__name__}: {exc}") from exc


def _rowcount(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    match = _ROWCOUNT.search(status or "")
    return int(match.group(1)) if match else 0


class _Connection:
    """Statements on one pooled connection (the caller holds it)."""

    def __init__(self, connection: Any) -> None:
        self._con = connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with _converted():
            return list(await self._con.fetch(to_postgres(sql), *params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _converted():
            return _rowcount(await self._con.execute(to_postgres(sql), *params))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with _converted():
            await self._con.executemany(to_postgres(sql), rows)


class PostgresEngine:
    """Implements :class:`bot.store.engine.Engine` over an asyncpg pool."""

    dialect = Dialect.POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> PostgresEngine:
        """Open a pool and migrate the database (one process at a time migrates)."""
        with _converted():
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                server_settings={"application_name": "cometbot"},
            )
        try:
            async with pool.acquire() as connection:
                with _converted():
                    await migrate(connection)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with _converted():
            return list(await self._pool.fetch(to_postgres(sql), *params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _converted():
            return _rowcount(await self._pool.execute(to_postgres(sql), *params))

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with _converted():
            await self._pool.executemany(to_postgres(sql), rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        with _converted():
            connection = await self._pool.acquire()
        try:
            with _converted():
                transaction = connection.transaction()
                await transaction.start()
            try:
                yield _Connection(connection)
            except BaseException:
                # The body's own error (or a cancellation) is what the caller must see: a
                # rollback that fails too (the connection busy with a cancelled query) is
                # left to the pool, which resets the connection when it is released.
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            with _converted():
                await transaction.commit()
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        await self._pool.close()
