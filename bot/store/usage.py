"""Per-user daily usage counters, quota reservations and cooldowns.

One row per (user, UTC day, kind) holds a running total, so "used today" is a
primary-key prefix read and a reservation is one conditional upsert: no
read-then-write race even with several coroutines (or processes) reserving.
Cooldowns are one row per (user, kind) holding when the wait ends, started by
one conditional upsert in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot.store._base import StoreBase, utc_day
from bot.store.engine import Session

__all__ = ["UsageQueries", "add_usage"]

_COOLDOWN_TRIES: Final = 3
_MIN_WAIT: Final = 0.001

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

    # -- cooldowns --------------------------------------------------------------------------

    async def start_cooldown(self, user_id: str, kind: str, seconds: float) -> float:
        """Start the user's ``kind`` cooldown for ``seconds`` unless one is running: 0.0 when
        it started, else the seconds left of the running one.

        The check and the start are one statement (an upsert whose WHERE refuses a row
        still running), so of any number of concurrent starts, from any process, exactly
        one passes. Times are the store's wall clock: a cooldown survives a restart.
        """
        if seconds <= 0:
            return 0.0
        left = 0.0
        for _ in range(_COOLDOWN_TRIES):
            now = self._clock()
            started = await self._write(
                "INSERT INTO cooldowns (user_id, kind, until) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (user_id, kind) DO UPDATE SET until = excluded.until"
                " WHERE cooldowns.until <= ?4",
                (user_id, str(kind), now + seconds, now),
            )
            if started:
                return 0.0
            row = await self._fetchone(
                "SELECT until FROM cooldowns WHERE user_id = ? AND kind = ?", (user_id, str(kind))
            )
            left = 0.0 if row is None else float(row[0]) - self._clock()
            if left > 0:
                return left
            # It ran out (or was cleared) between the two statements: try again.
        return max(left, _MIN_WAIT)  # a clock going back and forth: refuse, do not spin

    async def clear_cooldown(self, user_id: str, kind: str) -> None:
        """End the user's ``kind`` cooldown now: the request that started it was refused
        by a later check, and a refused request must not make the user wait."""
        await self._write(
            "DELETE FROM cooldowns WHERE user_id = ? AND kind = ?", (user_id, str(kind))
        )
