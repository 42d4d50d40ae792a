"""The store queries the generation engine added: batched updates, left-over pending rows,
modal questions, and the records now owned by the core."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import bot.store as store_package
from bot.core.generation import records as core_records
from bot.core.models import ConversationKey, Platform
from bot.store import NewTask, Provider, Store, TaskStatus, TaskUpdate

KEY = ConversationKey(Platform.TELEGRAM, "42")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[tuple[Store, Clock]]:
    clock = Clock()
    async with Store.open(":memory:", clock=clock) as opened:
        yield opened, clock


async def _task(store: Store, owner: str = "tg:1", **changes: object) -> int:
    """A new task, then ``changes`` as a :class:`TaskUpdate` (as after its submit)."""
    task_id = await store.create_task(NewTask(Provider.MIDJOURNEY, "imagine", owner, KEY))
    if changes:
        await store.update_task(TaskUpdate(task_id, **changes))  # type: ignore[arg-type]
    return task_id


def test_the_records_live_in_the_core_and_the_store_reexports_them() -> None:
    assert store_package.Task is core_records.Task
    assert store_package.TaskUpdate is core_records.TaskUpdate


async def test_batched_updates_group_statements_and_keep_order_per_task(
    store: tuple[Store, Clock],
) -> None:
    db, _ = store
    ids = [await _task(db) for _ in range(5)]
    changed = await db.update_tasks(
        [TaskUpdate(i, attempts=1, next_poll_at=5.0) for i in ids[:3]]
        + [TaskUpdate(ids[3], status=TaskStatus.RUNNING, progress=40)]
    )
    assert changed == 4
    assert [(await db.get_task(i)).attempts for i in ids] == [1, 1, 1, 0, 0]  # type: ignore[union-attr]
    # the same task twice in one batch: applied in order, the later update wins
    await db.update_tasks(
        [TaskUpdate(ids[4], progress=10), TaskUpdate(ids[4], progress=20, attempts=3)]
    )
    last = await db.get_task(ids[4])
    assert last is not None and (last.progress, last.attempts) == (20, 3)
    assert await db.update_tasks([]) == 0


async def test_pending_rows_of_an_earlier_process(store: tuple[Store, Clock]) -> None:
    db, clock = store
    old = await _task(db)
    await _task(db, status=TaskStatus.SUBMITTED, upstream_id="u")
    clock.now += 10
    await _task(db)  # pending, but created by "this" process
    found = await db.pending_tasks(created_before=clock.now - 5)
    assert [t.id for t in found] == [old]


async def test_waiting_task_by_owner_and_question(store: tuple[Store, Clock]) -> None:
    db, _ = store
    waiting = await _task(db, status=TaskStatus.WAITING, status_message_id="77")
    await _task(db, owner="tg:2", status=TaskStatus.WAITING, status_message_id="78")
    await _task(db, status=TaskStatus.SUBMITTED, status_message_id="79")
    found = await db.waiting_task("tg:1", "77")
    assert found is not None and found.id == waiting
    assert await db.waiting_task("tg:2", "77") is None  # someone else's question
    assert await db.waiting_task("tg:1", "79") is None  # not waiting
