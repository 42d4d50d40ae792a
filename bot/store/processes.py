"""The process registry (design §9): which processes serve this database, with their roles.

Each process renews its row every few seconds (:mod:`bot.core.presence`); a process that
died without a clean stop leaves a row that simply goes stale, so readers ask for the
processes seen recently rather than trusting that every row is alive. Roles are stored
space-separated (a role label never holds a space; ``discord:0,1`` holds a comma).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.core.roles import ProcessInfo
from bot.store._base import StoreBase

__all__ = ["FORGOTTEN_AFTER", "ProcessQueries"]

#: Seconds after which a silent process's row is deleted (it went stale long before).
FORGOTTEN_AFTER: Final = 86_400.0


class ProcessQueries(StoreBase):
    """Register, renew, list and forget processes."""

    async def register_process(self, name: str, *, started_at: float, roles: Sequence[str]) -> None:
        """Insert or renew ``name``'s row: seen now (the store's clock), with ``roles``."""
        if any(" " in role for role in roles):
            raise ValueError(f"a role label holds no space: {list(roles)!r}")
        await self._write(
            "INSERT INTO processes (name, started_at, seen_at, roles) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at,"
            " seen_at = excluded.seen_at, roles = excluded.roles",
            (name, started_at, self._clock(), " ".join(roles)),
        )
        # Rows of processes that died long ago (each restart on bare metal is a new pid):
        # nobody reads them any more, so the table stays the size of the live set.
        await self._write(
            "DELETE FROM processes WHERE seen_at < ?", (self._clock() - FORGOTTEN_AFTER,)
        )

    async def live_processes(self, stale_after: float) -> list[ProcessInfo]:
        """Processes seen within the last ``stale_after`` seconds, by name."""
        rows = await self._fetchall(
            "SELECT name, started_at, seen_at, roles FROM processes WHERE seen_at >= ?"
            " ORDER BY name",
            (self._clock() - stale_after,),
        )
        return [
            ProcessInfo(
                name=row[0],
                started_at=float(row[1]),
                seen_at=float(row[2]),
                roles=tuple(row[3].split()),
            )
            for row in rows
        ]

    async def forget_process(self, name: str) -> None:
        """Remove ``name``'s row (a clean stop: it is gone from /stats at once)."""
        await self._write("DELETE FROM processes WHERE name = ?", (name,))
