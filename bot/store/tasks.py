"""Generation tasks and their button tokens (design §6): the poller's durable queue."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Final

from bot.core.generation.records import (
    TERMINAL_STATUSES,
    UNSET,
    ButtonRef,
    ButtonSpec,
    NewTask,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
)
from bot.core.models import ConversationKey
from bot.store._base import Row, StoreBase
from bot.store.engine import Dialect, Session
from bot.store.errors import StoreError

__all__ = ["ACTIVE_SQL", "DUE_TASKS_SQL", "TASK_COLUMNS", "TaskQueries", "task_from_row"]

TASK_COLUMNS: Final = (
    "id, provider, kind, owner_id, conversation, status, request, created_at, updated_at,"
    " upstream_id, parent_id, status_message_id, reply_to_id, progress, deadline,"
    " next_poll_at, attempts, result, error, delivered_at, route, lease_owner"
)
# Spelled out, not bound: SQLite only uses the partial index tasks_due when the
# query repeats the index's WHERE term literally (tests check it matches ACTIVE_STATUSES).
ACTIVE_SQL: Final = "status IN ('pending', 'submitted', 'running')"
_TERMINAL: Final = "status IN ({})".format(
    ", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES))
)

#: The poller's query: pollable tasks whose time has come, soonest first.
DUE_TASKS_SQL: Final = (
    f"SELECT {TASK_COLUMNS} FROM tasks WHERE {ACTIVE_SQL} AND next_poll_at <= ?"
    " ORDER BY next_poll_at, id LIMIT ?"
)
_UPDATABLE: Final = (
    "status",
    "upstream_id",
    "status_message_id",
    "progress",
    "deadline",
    "next_poll_at",
    "attempts",
    "result",
    "error",
)
# PostgreSQL types of the updatable columns, for a batch sent as one array per column.
_PG_TYPES: Final = {
    "status": "text",
    "upstream_id": "text",
    "status_message_id": "text",
    "progress": "integer",
    "deadline": "double precision",
    "next_poll_at": "double precision",
    "attempts": "integer",
    "result": "text",
    "error": "text",
}
_BUTTON_COLUMNS: Final = "token, task_id, custom_id, label, emoji, kind, created_at"
_TOKEN_TRIES: Final = 5


def _dump(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _load(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else {"value": value}


# The poller reads thousands of rows per cycle: plain dict lookups instead of Enum calls,
# and one parse per distinct conversation.
_PROVIDERS: Final = {p.value: p for p in Provider}
_STATUSES: Final = {s.value: s for s in TaskStatus}


@functools.lru_cache(maxsize=4096)
def _conversation(raw: str) -> ConversationKey:
    return ConversationKey.parse(raw)


def task_from_row(row: Row) -> Task:
    return Task(
        id=row[0],
        provider=_PROVIDERS[row[1]],
        kind=row[2],
        owner_id=row[3],
        conversation=_conversation(row[4]),
        status=_STATUSES[row[5]],
        request=_load(row[6]) or {},
        created_at=row[7],
        updated_at=row[8],
        upstream_id=row[9],
        parent_id=row[10],
        status_message_id=row[11],
        reply_to_id=row[12],
        progress=row[13],
        deadline=row[14],
        next_poll_at=row[15],
        attempts=row[16],
        result=_load(row[17]),
        error=row[18],
        delivered_at=row[19],
        route=row[20],
        lease_owner=row[21],
    )


def _button(row: Row) -> ButtonRef:
    return ButtonRef(*row)


def _update_statement(update: TaskUpdate, now: float) -> tuple[tuple[str, ...], list[Any]]:
    """The columns ``update`` sets and its parameters: ``[now, *values, task_id]``."""
    names: list[str] = []
    params: list[Any] = [now]
    for name in _UPDATABLE:  # column names come from this fixed list, never from input
        value = getattr(update, name)
        if value is UNSET:
            continue
        if name == "result":
            value = _dump(value)
        elif isinstance(value, Enum):
            value = value.value  # bind the plain string, not the enum
        names.append(name)
        params.append(value)
    params.append(update.task_id)
    return tuple(names), params


_RELEASE: Final = ("lease_owner = NULL", "lease_until = NULL")


@functools.lru_cache(maxsize=256)
def _update_sql(names: tuple[str, ...], release: bool = False) -> str:
    columns = ", ".join(
        ["updated_at = ?", *(f"{name} = ?" for name in names), *(_RELEASE if release else ())]
    )
    return f"UPDATE tasks SET {columns} WHERE id = ?"


@functools.lru_cache(maxsize=256)
def _pg_batch_sql(names: tuple[str, ...], release: bool) -> str:
    """One PostgreSQL statement for a batch of alike updates: each column's values as one
    array, unnested into rows (``$1`` is the time, ``$2`` the ids)."""
    arrays = ", ".join(f"${i}::{_PG_TYPES[name]}[]" for i, name in enumerate(names, start=3))
    columns = ", ".join(
        [
            "updated_at = $1",
            *(f"{name} = v.{name}" for name in names),
            *(_RELEASE if release else ()),
        ]
    )
    return (
        f"UPDATE tasks SET {columns} FROM unnest($2::bigint[]{', ' if names else ''}{arrays})"
        f" AS v(id{''.join(', ' + name for name in names)}) WHERE tasks.id = v.id"
    )


class TaskQueries(StoreBase):
    """Task rows, written before the submit and updated by the poller in batches."""

    async def create_task(self, task: NewTask) -> int:
        """Insert ``task`` as a ``pending`` row, not polled yet, and return its id."""
        now = self._clock()
        rows = await self._fetchall(
            "INSERT INTO tasks (provider, kind, owner_id, conversation, request, status,"
            " parent_id, reply_to_id, created_at, updated_at, route, lease_owner)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                Provider(task.provider).value,
                task.kind,
                task.owner_id,
                str(task.conversation),
                _dump(task.request),
                TaskStatus.PENDING.value,
                task.parent_id,
                task.reply_to_id,
                now,
                now,
                task.route,
                task.submitter,
            ),
        )
        return int(rows[0][0])

    async def get_task(self, task_id: int) -> Task | None:
        """The task with this id, if any."""
        row = await self._fetchone(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return None if row is None else task_from_row(row)

    async def update_task(self, update: TaskUpdate) -> bool:
        """Apply one change; whether the task exists."""
        names, params = _update_statement(update, self._clock())
        return await self._write(_update_sql(names), params) == 1

    async def update_tasks(self, updates: Iterable[TaskUpdate], *, release: bool = False) -> int:
        """Apply many changes in one transaction (one write per poller cycle); rows changed.
        ``release``: the poller's write after a round, which also ends its leases.

        Updates that set the same columns share one statement (SQLite: one
        ``executemany``; PostgreSQL: one ``UPDATE ... FROM unnest(...)``), so a cycle of
        thousands of progress updates costs a few statements, not a round trip each.
        When a task id repeats, the updates run one by one in order (later wins).
        """
        now = self._clock()
        statements = [_update_statement(update, now) for update in updates]
        if not statements:
            return 0
        batches: list[tuple[tuple[str, ...], list[list[Any]]]]
        if len({params[-1] for _, params in statements}) == len(statements):
            groups: dict[tuple[str, ...], list[list[Any]]] = {}
            for names, params in statements:
                groups.setdefault(names, []).append(params)
            batches = list(groups.items())
        else:
            batches = [(names, [params]) for names, params in statements]
        async with self._transaction() as db:
            if self.dialect is Dialect.POSTGRESQL:
                return await _pg_batches(db, batches, release)
            # executemany tells no row count: SQLite's running total of the connection's
            # changes does (the transaction holds the only connection).
            before = (await db.fetch("SELECT total_changes()"))[0][0]
            for names, rows in batches:
                await db.executemany(_update_sql(names, release), rows)
            return int((await db.fetch("SELECT total_changes()"))[0][0] - before)

    async def due_tasks(self, now: float | None = None, limit: int = 100) -> list[Task]:
        """Pollable tasks with ``next_poll_at <= now``, soonest first (ties by id)."""
        at = self._clock() if now is None else now
        return [task_from_row(row) for row in await self._fetchall(DUE_TASKS_SQL, (at, limit))]

    async def undelivered_tasks(self, limit: int = 100) -> list[Task]:
        """Finished tasks whose result (or failure notice) was not delivered: resume these."""
        rows = await self._fetchall(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE delivered_at IS NULL AND {_TERMINAL}"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [task_from_row(row) for row in rows]

    async def pending_tasks(self, *, created_before: float, limit: int = 100) -> list[Task]:
        """Rows still ``pending`` (submit outcome unknown) created before a time: a process
        died during their submit. Oldest first."""
        rows = await self._fetchall(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'pending' AND created_at < ?"
            " ORDER BY id LIMIT ?",
            (created_before, limit),
        )
        return [task_from_row(row) for row in rows]

    async def waiting_task(self, owner_id: str, status_message_id: str) -> Task | None:
        """The owner's task waiting for input (a Midjourney modal) whose question is
        ``status_message_id``, if any (the ``tasks_by_owner`` index narrows the search)."""
        row = await self._fetchone(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE owner_id = ? AND status = 'waiting'"
            " AND status_message_id = ? ORDER BY id DESC LIMIT 1",
            (owner_id, status_message_id),
        )
        return None if row is None else task_from_row(row)

    async def count_active_tasks(self, owner_id: str) -> int:
        """How many unfinished tasks the user has (for a per-user concurrency limit)."""
        row = await self._fetchone(
            f"SELECT count(*) FROM tasks WHERE owner_id = ? AND NOT {_TERMINAL}", (owner_id,)
        )
        return 0 if row is None else int(row[0])

    async def mark_delivered(self, task_id: int, *, at: float | None = None) -> bool:
        """Record delivery once; True only for the call that did it (the one that may post)."""
        rowcount = await self._write(
            "UPDATE tasks SET delivered_at = ?, updated_at = ?"
            " WHERE id = ? AND delivered_at IS NULL",
            (self._clock() if at is None else at, self._clock(), task_id),
        )
        return rowcount == 1

    async def add_buttons(self, task_id: int, buttons: Sequence[ButtonSpec]) -> list[str]:
        """Store the task's buttons and return their tokens, in order.

        Idempotent per (task, custom_id): a repeat (a delivery retried after a
        restart) returns the tokens minted the first time.
        """
        now = self._clock()
        async with self._transaction() as db:
            return [await self._button_token(db, task_id, spec, now) for spec in buttons]

    async def get_button(self, token: str) -> ButtonRef | None:
        """The button behind ``mj:<token>``, if the token is known."""
        row = await self._fetchone(
            f"SELECT {_BUTTON_COLUMNS} FROM buttons WHERE token = ?", (token,)
        )
        return None if row is None else _button(row)

    async def _button_token(self, db: Session, task_id: int, spec: ButtonSpec, now: float) -> str:
        rows = await db.fetch(
            "SELECT token FROM buttons WHERE task_id = ? AND custom_id = ?",
            (task_id, spec.custom_id),
        )
        if rows:
            return str(rows[0][0])
        for _ in range(_TOKEN_TRIES):
            token = self._new_token()
            # A token collision (2^-64 odds, or a test's fixed factory) inserts nothing: retry.
            inserted = await db.execute(
                "INSERT INTO buttons (token, task_id, custom_id, label, emoji, kind, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING",
                (token, task_id, spec.custom_id, spec.label, spec.emoji, spec.kind, now),
            )
            if inserted == 1:
                return token
        raise StoreError("could not mint a unique button token")


async def _pg_batches(
    db: Session, batches: list[tuple[tuple[str, ...], list[list[Any]]]], release: bool
) -> int:
    """PostgreSQL: each batch of alike updates as one statement over column arrays."""
    changed = 0
    for names, rows in batches:
        if len(rows) == 1:
            changed += await db.execute(_update_sql(names, release), rows[0])
            continue
        # A row is [now, *values, id]; columns become arrays.
        columns = [[row[i] for row in rows] for i in range(1, len(names) + 1)]
        ids = [row[-1] for row in rows]
        changed += await db.execute(_pg_batch_sql(names, release), (rows[0][0], ids, *columns))
    return changed
