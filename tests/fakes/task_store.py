"""An in-process task store for the generation core on virtual time: no threads and no
sockets, so a FakeClock's autopilot sees exactly when everything is idle (a real aiosqlite
store answers from another thread). It keeps leases and claimed parts like the real one."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Collection, Iterable, Sequence

from bot.core.generation.records import (
    ACTIVE_STATUSES,
    UNSET,
    ButtonRef,
    ButtonSpec,
    NewTask,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
)
from tests.fakes.clock import FakeClock


class MemoryTaskStore:
    """:class:`bot.core.ports.TaskStore` in memory, on the fake clock's time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tasks: dict[int, Task] = {}
        self.buttons: dict[str, ButtonRef] = {}
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self.writes = 0  # write calls (update_tasks counts once; claims are not counted)
        self.leases: dict[int, tuple[str, float]] = {}  # task id -> (owner, until)
        self.parts: dict[tuple[int, str], str | None] = {}  # (task, part) -> message id

    async def create_task(self, task: NewTask) -> int:
        await asyncio.sleep(0)
        now = self.clock.now()
        task_id = next(self._ids)
        self.tasks[task_id] = Task(
            id=task_id,
            provider=Provider(task.provider),
            kind=task.kind,
            owner_id=task.owner_id,
            conversation=task.conversation,
            status=TaskStatus.PENDING,
            request=dict(task.request),
            created_at=now,
            updated_at=now,
            parent_id=task.parent_id,
            reply_to_id=task.reply_to_id,
            route=task.route,
            lease_owner=task.submitter,
        )
        self.writes += 1
        return task_id

    async def get_task(self, task_id: int) -> Task | None:
        await asyncio.sleep(0)
        return self.tasks.get(task_id)

    def _apply(self, update: TaskUpdate) -> int:
        task = self.tasks.get(update.task_id)
        if task is None:
            return 0
        changes = {
            f.name: getattr(update, f.name)
            for f in dataclasses.fields(update)
            if f.name != "task_id" and getattr(update, f.name) is not UNSET
        }
        if "result" in changes and changes["result"] is not None:
            changes["result"] = dict(changes["result"])
        self.tasks[task.id] = dataclasses.replace(task, updated_at=self.clock.now(), **changes)
        return 1

    async def update_task(self, update: TaskUpdate) -> bool:
        await asyncio.sleep(0)
        self.writes += 1
        return self._apply(update) == 1

    async def update_tasks(self, updates: Iterable[TaskUpdate], *, release: bool = False) -> int:
        await asyncio.sleep(0)
        self.writes += 1
        changed = 0
        for update in updates:
            changed += self._apply(update)
            if release:
                self.leases.pop(update.task_id, None)
        return changed

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
        now = self.clock.now()
        free = [
            t
            for t in await self.due_tasks(due_before, len(self.tasks))
            if self.leases.get(t.id, ("", 0.0))[1] < now
            and (
                routes is None
                or t.route is None
                or t.route in routes
                or (t.next_poll_at or 0.0) <= now - grace
            )
        ][:limit]
        for task in free:
            self.leases[task.id] = (owner, now + lease)
        return free

    async def release_tasks(self, owner: str, task_ids: Sequence[int]) -> int:
        await asyncio.sleep(0)
        mine = [i for i in task_ids if self.leases.get(i, ("", 0.0))[0] == owner]
        for task_id in mine:
            del self.leases[task_id]
        return len(mine)

    async def release_leases(self, owner: str | None) -> int:
        await asyncio.sleep(0)
        mine = [i for i, (name, _) in self.leases.items() if owner is None or name == owner]
        for task_id in mine:
            del self.leases[task_id]
        return len(mine)

    async def claim_part(self, task_id: int, part: str, owner: str) -> bool:
        await asyncio.sleep(0)
        if (task_id, part) in self.parts:
            return False
        self.parts[task_id, part] = None
        return True

    async def part_posted(self, task_id: int, part: str, message_id: str) -> None:
        await asyncio.sleep(0)
        self.parts[task_id, part] = message_id

    async def release_part(self, task_id: int, part: str) -> None:
        await asyncio.sleep(0)
        if self.parts.get((task_id, part), "") is None:
            del self.parts[task_id, part]

    async def due_tasks(self, now: float | None = None, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        at = self.clock.now() if now is None else now
        due = [
            t
            for t in self.tasks.values()
            if t.status in ACTIVE_STATUSES and t.next_poll_at is not None and t.next_poll_at <= at
        ]
        due.sort(key=lambda t: (t.next_poll_at or 0.0, t.id))
        return due[:limit]

    async def next_due_at(
        self, routes: Collection[str] | None = None, grace: float = 0.0
    ) -> float | None:
        await asyncio.sleep(0)
        times = []
        for t in self.tasks.values():
            if t.status not in ACTIVE_STATUSES or t.next_poll_at is None:
                continue
            own = routes is None or t.route is None or t.route in routes
            due = t.next_poll_at if own else t.next_poll_at + grace
            times.append(max(due, self.leases.get(t.id, ("", 0.0))[1]))
        return min(times) if times else None

    async def undelivered_tasks(self, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        found = [t for t in self.tasks.values() if t.status.is_terminal and t.delivered_at is None]
        return found[:limit]

    async def pending_tasks(self, *, created_before: float, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        found = [
            t
            for t in self.tasks.values()
            if t.status is TaskStatus.PENDING and t.created_at < created_before
        ]
        return found[:limit]

    async def waiting_task(self, owner_id: str, status_message_id: str) -> Task | None:
        await asyncio.sleep(0)
        for task in reversed(self.tasks.values()):
            if (
                task.owner_id == owner_id
                and task.status is TaskStatus.WAITING
                and task.status_message_id == status_message_id
            ):
                return task
        return None

    async def mark_delivered(self, task_id: int, *, at: float | None = None) -> bool:
        await asyncio.sleep(0)
        task = self.tasks.get(task_id)
        if task is None or task.delivered_at is not None:
            return False
        when = self.clock.now() if at is None else at
        self.tasks[task_id] = dataclasses.replace(task, delivered_at=when)
        return True

    async def add_buttons(self, task_id: int, buttons: Sequence[ButtonSpec]) -> list[str]:
        await asyncio.sleep(0)
        tokens = []
        for spec in buttons:
            existing = next(
                (
                    b.token
                    for b in self.buttons.values()
                    if b.task_id == task_id and b.custom_id == spec.custom_id
                ),
                None,
            )
            if existing is None:
                existing = f"tok{next(self._tokens)}"
                self.buttons[existing] = ButtonRef(
                    existing,
                    task_id,
                    spec.custom_id,
                    spec.label,
                    spec.emoji,
                    spec.kind,
                    self.clock.now(),
                )
            tokens.append(existing)
        return tokens

    async def get_button(self, token: str) -> ButtonRef | None:
        await asyncio.sleep(0)
        return self.buttons.get(token)

    async def count_active_tasks(self, owner_id: str) -> int:
        return sum(
            1 for t in self.tasks.values() if t.owner_id == owner_id and not t.status.is_terminal
        )
