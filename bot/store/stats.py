"""Operator queries: daily totals, users, the task queue by state, and a liveness ping.

They back ``/stats`` and ``/healthz``. Daily figures come from ``usage_daily`` (read
through its ``usage_by_day`` index), never from scanning ``turns``; the task figures
group the ``tasks`` table (covered by ``tasks_by_owner``'s status column).
"""

from __future__ import annotations

from typing import Final

from bot.core.generation.records import TERMINAL_STATUSES
from bot.store._base import StoreBase, utc_day

__all__ = ["StatsQueries"]

_TERMINAL: Final = "({})".format(", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES)))


class StatsQueries(StoreBase):
    """Aggregates for operators; none of these is on a user's hot path."""

    async def usage_totals(self, day: str | None = None) -> dict[str, int]:
        """Every user's counters of a day (default today, UTC) summed: kind -> amount."""
        rows = await self._fetchall(
            "SELECT kind, sum(amount) FROM usage_daily WHERE day = ? GROUP BY kind ORDER BY kind",
            (day or utc_day(self._clock()),),
        )
        return {row[0]: int(row[1]) for row in rows}

    async def count_users(self, day: str | None = None) -> int:
        """Users with any (non-refunded) usage on a day (default today, UTC)."""
        row = await self._fetchone(
            "SELECT count(DISTINCT user_id) FROM usage_daily WHERE day = ? AND amount > 0",
            (day or utc_day(self._clock()),),
        )
        return 0 if row is None else int(row[0])

    async def count_all_users(self) -> int:
        """Users who ever used the bot (chat with usage, or a generation)."""
        row = await self._fetchone(
            "SELECT count(DISTINCT user_id) FROM usage_daily WHERE amount > 0"
        )
        return 0 if row is None else int(row[0])

    async def task_counts(self) -> dict[tuple[str, str], int]:
        """How many tasks there are by ``(provider, status)``, finished ones included."""
        rows = await self._fetchall(
            "SELECT provider, status, count(*) FROM tasks GROUP BY provider, status"
            " ORDER BY provider, status"
        )
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def oldest_active_task_at(self) -> float | None:
        """When the oldest unfinished task was created (Unix seconds), if there is one."""
        row = await self._fetchone(
            f"SELECT min(created_at) FROM tasks WHERE status NOT IN {_TERMINAL}"
        )
        return None if row is None or row[0] is None else float(row[0])

    async def ping(self) -> None:
        """Run a trivial query; raises (``sqlite3``/``ValueError``) if the store cannot answer."""
        await self._fetchone("SELECT 1")
