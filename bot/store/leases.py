"""Work shared between processes on one database (design §9): task leases and result parts.

* **Leases.** Any process may poll. :meth:`LeaseQueries.claim_due_tasks` takes due tasks
  in one statement, writing the claimer's name and a lease expiry; PostgreSQL's ``FOR
  UPDATE SKIP LOCKED`` lets two processes claim at the same moment without waiting for,
  or taking, each other's rows. The poller's write after the round clears its leases; a
  process that dies holding some loses them when they expire, and another claims them.
* **Parts.** Before a part of a result is posted, its ``(task, part)`` row is inserted;
  the primary key lets only one insert win, so a part goes out at most once whichever
  process delivers, and after any restart.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from typing import Final

from bot.core.generation.records import Task
from bot.store._base import StoreBase
from bot.store.engine import Dialect
from bot.store.tasks import ACTIVE_SQL, TASK_COLUMNS, task_from_row

__all__ = ["LeaseQueries"]

_RELEASE_CHUNK: Final = 1000


def _own_route(dialect: Dialect, param: int) -> str:
    """SQL true for a task whose route is one of ``?param`` (or has none)."""
    if dialect is Dialect.SQLITE:
        return f"(route IS NULL OR route IN (SELECT value FROM json_each(?{param})))"
    return f"(route IS NULL OR route = ANY(CAST(?{param} AS TEXT[])))"


@functools.lru_cache(maxsize=8)
def _claim_sql(dialect: Dialect, routed: bool) -> str:
    """Due, unleased tasks, soonest first, claimed in one statement. With ``routed``, a
    task whose route another process owns is left to that process for ``grace`` seconds
    (it shows progress in its own chats), then anyone takes it."""
    skip_locked = " FOR UPDATE SKIP LOCKED" if dialect is Dialect.POSTGRESQL else ""
    routes = f" AND ({_own_route(dialect, 6)} OR next_poll_at <= ?7)"
    return (
        "UPDATE tasks SET lease_owner = ?1, lease_until = ?2"
        f" WHERE id IN (SELECT id FROM tasks WHERE {ACTIVE_SQL} AND next_poll_at <= ?3"
        " AND (lease_until IS NULL OR lease_until < ?4)"
        f"{routes if routed else ''}"
        f" ORDER BY next_poll_at, id LIMIT ?5{skip_locked})"
        f" RETURNING {TASK_COLUMNS}"
    )


@functools.lru_cache(maxsize=8)
def _next_due_sql(dialect: Dialect, routed: bool) -> str:
    # Another process's chat's task is due here only ``grace`` later (?2); a leased one not
    # before its lease ends: waking for either would find nothing to claim, again and again.
    due = (
        f"CASE WHEN {_own_route(dialect, 1)} THEN next_poll_at ELSE next_poll_at + ?2 END"
        if routed
        else "next_poll_at"
    )
    return (
        "SELECT min(CASE WHEN lease_until > due THEN lease_until ELSE due END)"
        f" FROM (SELECT {due} AS due, lease_until FROM tasks WHERE {ACTIVE_SQL}) AS pollable"
    )


class LeaseQueries(StoreBase):
    """Claims on tasks and on result parts."""

    async def next_due_at(
        self, routes: Collection[str] | None = None, grace: float = 0.0
    ) -> float | None:
        """When this process should next look for due tasks (the poller sleeps until
        then); ``routes`` and ``grace`` as for :meth:`claim_due_tasks`."""
        params: tuple[object, ...] = ()
        if routes is not None:
            params = (self._routes_param(routes), grace)
        row = await self._fetchone(_next_due_sql(self.dialect, routes is not None), params)
        return None if row is None or row[0] is None else float(row[0])

    def _routes_param(self, routes: Collection[str]) -> object:
        if self.dialect is Dialect.SQLITE:
            return json.dumps(sorted(routes))
        return sorted(routes)

    async def claim_due_tasks(
        self,
        owner: str,
        *,
        due_before: float,
        lease: float,
        limit: int,
        routes: Collection[str] | None = None,
        grace: float = 0.0,
    ) -> list[Task]:
        """Claim up to ``limit`` pollable tasks due by ``due_before`` that no live lease
        holds, for ``lease`` seconds; soonest first. ``routes``: the destinations this
        process owns (``None``: all); others' tasks are claimed only once ``grace`` seconds
        overdue."""
        now = self._clock()
        params: list[object] = [owner, now + lease, due_before, now, limit]
        if routes is not None:
            params += [self._routes_param(routes), now - grace]
        rows = await self._fetchall(_claim_sql(self.dialect, routes is not None), params)
        tasks = [task_from_row(row) for row in rows]
        # RETURNING gives rows in no particular order.
        tasks.sort(key=lambda t: (t.next_poll_at or 0.0, t.id))
        return tasks

    async def release_tasks(self, owner: str, task_ids: Sequence[int]) -> int:
        """Give back claims not used (the round ran out of requests); how many."""
        released = 0
        for start in range(0, len(task_ids), _RELEASE_CHUNK):
            chunk = list(task_ids[start : start + _RELEASE_CHUNK])
            marks = ", ".join("?" for _ in chunk)
            released += await self._write(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL"
                f" WHERE lease_owner = ? AND id IN ({marks})",
                (owner, *chunk),
            )
        return released

    async def release_leases(self, owner: str | None) -> int:
        """End every lease of ``owner`` (a poller that stops), or every lease at all
        (``None``: a single process starting, so whatever it holds is a previous run's)."""
        if owner is None:
            return await self._write(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL"
                " WHERE lease_until IS NOT NULL"
            )
        return await self._write(
            "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (owner,),
        )

    async def claim_part(self, task_id: int, part: str, owner: str) -> bool:
        """Take the right to post ``part`` of the task's result; False if it was taken
        (posted, or being posted, by this or another process)."""
        inserted = await self._write(
            "INSERT INTO task_parts (task_id, part, owner, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (task_id, part) DO NOTHING",
            (task_id, part, owner, self._clock()),
        )
        return inserted == 1

    async def part_posted(self, task_id: int, part: str, message_id: str) -> None:
        """The platform confirmed the part: its message id."""
        await self._write(
            "UPDATE task_parts SET message_id = ? WHERE task_id = ? AND part = ?",
            (message_id, task_id, part),
        )

    async def release_part(self, task_id: int, part: str) -> None:
        """The platform refused the part (nothing went out): it may be posted again."""
        await self._write(
            "DELETE FROM task_parts WHERE task_id = ? AND part = ? AND message_id IS NULL",
            (task_id, part),
        )
