"""Per-user daily usage counters and quota reservations.

One row per (user, UTC day, kind) holds a running total, so "used today" is a
primary-key prefix read and a reservation is one conditional upsert: no
read-then-write race even with several coroutines (or processes) reserving.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot.store._base import StoreBase, utc_day
from bot.store.engine import Session

__all__ = ["UsageQueries", "add_usage"]

_ADD_SQL: Final = (
    "INSERT INTO usage_daily (user_id, day, kind, amount) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (user_id, day, kind) DO UPDATE SET amount = usage_daily.amount + excluded.amount"
)


async def add_usage(db: Session, user_id: str, day: str, amounts: Mapping[str, int]) -> None:
    """Add ``amounts`` (kind -> amount) to the user's counters of ``day``; no locking."""
    await db.executemany(
        _ADD_SQL, [(user_id, day, str(kind), amount) for kind, amount in amounts.items() if amount]
    )


class UsageQueries(StoreBase):
    """Usage accounting; ``user_id`` is platform-qualified by convention (``"dc:42"``)."""

    async def record_usage(
        self, user_id: str, kind: str, amount: int = 1, *, at: float | None = None
    ) -> None:
        """Count ``amount`` of ``kind`` (a :class:`UsageKind` or any label) for the user."""
        if amount < 0:
            raise ValueError("usage amounts are never negative; use refund_quota")
        if amount:
            day = utc_day(self._clock() if at is None else at)
            await self._write(_ADD_SQL, (user_id, day, str(kind), amount))

    async def usage_today(self, user_id: str, *, day: str | None = None) -> dict[str, int]:
        """The user's counters for today (UTC) or ``day`` (``YYYY-MM-DD``); kind -> amount."""
        rows = await self._fetchall(
            "SELECT kind, amount FROM usage_daily WHERE user_id = ? AND day = ?",
            (user_id, day or utc_day(self._clock())),
        )
        return {row[0]: int(row[1]) for row in rows}

    async def reserve_quota(self, user_id: str, kind: str, *, limit: int, amount: int = 1) -> bool:
        """Count ``amount`` now if today's total stays within ``limit``; whether it did.

        Reserve before a paid submit and :meth:`refund_quota` if it fails, so
        concurrent requests can never overshoot the daily quota together.
        """
        if amount <= 0:
            raise ValueError("reserve a positive amount")
        day = utc_day(self._clock())
        # The SELECT's WHERE refuses a first row that alone exceeds the limit; the
        # upsert's WHERE refuses growing an existing row past it. Either way: 0 rows.
        # (The casts type the parameters for PostgreSQL; the table name qualifies the
        # existing row's column, which PostgreSQL requires beside ``excluded``.)
        rowcount = await self._write(
            "INSERT INTO usage_daily (user_id, day, kind, amount)"
            " SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS BIGINT)"
            " WHERE CAST(?4 AS BIGINT) <= CAST(?5 AS BIGINT)"
            " ON CONFLICT (user_id, day, kind)"
            " DO UPDATE SET amount = usage_daily.amount + excluded.amount"
            " WHERE usage_daily.amount + excluded.amount <= CAST(?5 AS BIGINT)",
            (user_id, day, str(kind), amount, limit),
        )
        return rowcount == 1

    async def refund_quota(
        self, user_id: str, kind: str, *, amount: int = 1, at: float | None = None
    ) -> None:
        """Give back a reservation; ``at`` is when it was made (refunds go to that day)."""
        day = utc_day(self._clock() if at is None else at)
        await self._write(
            "UPDATE usage_daily SET amount = CASE WHEN amount > ?1 THEN amount - ?1 ELSE 0 END"
            " WHERE user_id = ?2 AND day = ?3 AND kind = ?4",
            (amount, user_id, day, str(kind)),
        )
