"""Generation tasks and button tokens against a real SQLite database: rows and their updates
(one by one and batched), the poller's and the restart's queries, modal questions, buttons."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import bot.store as store_package
from bot.core.generation import records as core_records
from bot.core.models import ConversationKey, Platform, Role, Turn
from bot.store import (
    ACTIVE_STATUSES,
    UNSET,
    ButtonSpec,
    NewTask,
    Provider,
    Store,
    StoreError,
    TaskStatus,
    TaskUpdate,
)
from bot.store.tasks import DUE_TASKS_SQL
from tests.fakes.clock import FakeClock

T0 = 1_700_000_000.0
KEY = ConversationKey(Platform.DISCORD, "42")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,16}$")
MJ_BUTTONS = [
    ButtonSpec(
        f"MJ::JOB::upsample::{i}::85a4b4c1-8835-46c5-a15c-aea34fad1862", f"U{i}", "", "upscale"
    )
    for i in range(1, 5)
] + [
    ButtonSpec("MJ::JOB::reroll::0::85a4b4c1-8835-46c5-a15c-aea34fad1862::SOLO", "", "🔄", "reroll")
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
async def store(clock: FakeClock, store_location: str) -> AsyncIterator[Store]:
    async with Store.open(store_location, clock=clock) as opened:
        yield opened


_NEW_TASK_FIELDS = {f.name for f in dataclasses.fields(NewTask)}


async def _task(store: Store, **fields: object) -> int:
    """A new task with ``fields``; those a new row cannot have go in a :class:`TaskUpdate`
    right after, as the use cases do after the submit."""
    args: dict[str, object] = {
        "provider": Provider.MIDJOURNEY,
        "kind": "imagine",
        "owner_id": "dc:7",
        "conversation": KEY,
    }
    args.update((k, v) for k, v in fields.items() if k in _NEW_TASK_FIELDS)
    task_id = await store.create_task(NewTask(**args))  # type: ignore[arg-type]
    changes = {k: v for k, v in fields.items() if k not in _NEW_TASK_FIELDS}
    if changes:
        await store.update_task(TaskUpdate(task_id, **changes))  # type: ignore[arg-type]
    return task_id


def test_the_records_live_in_the_core_and_the_store_reexports_them() -> None:
    assert store_package.Task is core_records.Task
    assert store_package.TaskUpdate is core_records.TaskUpdate


async def test_task_round_trip(store: Store) -> None:
    parent = await _task(store, status=TaskStatus.SUCCEEDED)
    task_id = await _task(
        store,
        provider="suno",
        kind="music",
        request={"prompt": "a song about a cat 🐈", "mv": "chirp-v4"},
        upstream_id="up-1",
        parent_id=parent,
        status_message_id="m-10",
        reply_to_id="m-9",
        deadline=T0 + 600,
        next_poll_at=T0 + 5,
        status=TaskStatus.SUBMITTED,
    )
    task = await store.get_task(task_id)
    assert task is not None
    assert (task.provider, task.kind, task.owner_id, task.conversation) == (
        Provider.SUNO,
        "music",
        "dc:7",
        KEY,
    )
    assert task.request == {"prompt": "a song about a cat 🐈", "mv": "chirp-v4"}
    assert (task.upstream_id, task.parent_id, task.status_message_id, task.reply_to_id) == (
        "up-1",
        parent,
        "m-10",
        "m-9",
    )
    assert (task.status, task.progress, task.attempts) == (TaskStatus.SUBMITTED, 0, 0)
    assert (task.deadline, task.next_poll_at, task.created_at, task.updated_at) == (
        T0 + 600,
        T0 + 5,
        T0,
        T0,
    )
    assert (task.result, task.error, task.delivered_at) == (None, None, None)
    assert await store.get_task(9999) is None


async def test_update_task_changes_only_given_fields(store: Store, clock: FakeClock) -> None:
    task_id = await _task(store, upstream_id="u", next_poll_at=T0 + 1, status=TaskStatus.RUNNING)
    await clock.advance(10)
    update = TaskUpdate(task_id, progress=45, attempts=3, result={"imageUrl": "https://x/1.png"})
    assert await store.update_task(update)
    task = await store.get_task(task_id)
    assert task is not None
    assert (task.progress, task.attempts, task.result) == (45, 3, {"imageUrl": "https://x/1.png"})
    assert (task.upstream_id, task.next_poll_at, task.status) == ("u", T0 + 1, TaskStatus.RUNNING)
    assert task.updated_at == T0 + 10

    await store.update_task(
        TaskUpdate(task_id, status=TaskStatus.FAILED, next_poll_at=None, error="moderated")
    )
    task = await store.get_task(task_id)
    assert task is not None
    assert (task.status, task.next_poll_at, task.error) == (TaskStatus.FAILED, None, "moderated")
    assert TaskUpdate(task_id).status is UNSET
    assert not await store.update_task(TaskUpdate(9999, progress=1))


async def test_due_tasks_ordering_and_filtering(store: Store) -> None:
    late = await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0 + 3)
    first = await _task(store, status=TaskStatus.SUBMITTED, next_poll_at=T0 + 1)
    tie = await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0 + 3)
    await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0 + 60)  # not yet
    await _task(store, status=TaskStatus.RUNNING)  # never scheduled
    await _task(store, status=TaskStatus.SUCCEEDED, next_poll_at=T0)  # finished
    await _task(store, status=TaskStatus.WAITING, next_poll_at=T0)  # waits for the user

    due = await store.due_tasks(T0 + 5)
    assert [t.id for t in due] == [first, late, tie]
    assert [t.id for t in await store.due_tasks(T0 + 5, limit=2)] == [first, late]
    assert await store.due_tasks(T0) == []
    assert await store.next_due_at() == T0 + 1


async def test_only_active_statuses_are_due(store: Store) -> None:
    ids = {status: await _task(store, status=status, next_poll_at=T0) for status in TaskStatus}
    due = {t.id for t in await store.due_tasks(T0)}
    assert due == {ids[status] for status in ACTIVE_STATUSES}
    assert all(not status.is_terminal for status in ACTIVE_STATUSES)


async def test_next_due_at_is_none_when_idle(store: Store) -> None:
    assert await store.next_due_at() is None
    await _task(store, status=TaskStatus.SUCCEEDED, next_poll_at=T0)
    assert await store.next_due_at() is None


async def test_update_tasks_applies_a_batch(store: Store) -> None:
    a = await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0)
    b = await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0)
    changed = await store.update_tasks(
        [
            TaskUpdate(a, progress=50, next_poll_at=T0 + 5, attempts=1),
            TaskUpdate(b, status=TaskStatus.SUCCEEDED, progress=100, next_poll_at=None),
            TaskUpdate(9999, progress=1),
        ]
    )
    assert changed == 2
    task_a, task_b = await store.get_task(a), await store.get_task(b)
    assert task_a is not None and task_b is not None
    assert (task_a.progress, task_a.next_poll_at, task_a.attempts) == (50, T0 + 5, 1)
    assert (task_b.status, task_b.progress) == (TaskStatus.SUCCEEDED, 100)
    assert await store.update_tasks([]) == 0


async def test_update_tasks_groups_alike_updates_and_keeps_order_per_task(store: Store) -> None:
    ids = [await _task(store) for _ in range(5)]
    changed = await store.update_tasks(
        [TaskUpdate(i, attempts=1, next_poll_at=5.0) for i in ids[:3]]
        + [TaskUpdate(ids[3], status=TaskStatus.RUNNING, progress=40)]
    )
    assert changed == 4
    assert [(await store.get_task(i)).attempts for i in ids] == [1, 1, 1, 0, 0]  # type: ignore[union-attr]
    # the same task twice in one batch: applied in order, the later update wins
    await store.update_tasks(
        [TaskUpdate(ids[4], progress=10), TaskUpdate(ids[4], progress=20, attempts=3)]
    )
    last = await store.get_task(ids[4])
    assert last is not None and (last.progress, last.attempts) == (20, 3)


async def test_update_tasks_is_all_or_nothing(store: Store) -> None:
    a = await _task(store, status=TaskStatus.RUNNING)
    bad = TaskUpdate(a, upstream_id=object())  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await store.update_tasks([TaskUpdate(a, progress=80), bad])
    task = await store.get_task(a)
    assert task is not None and task.progress == 0
    assert await store.update_task(TaskUpdate(a, progress=90))  # the store is still usable


async def test_pending_rows_of_an_earlier_process(store: Store, clock: FakeClock) -> None:
    old = await _task(store)
    await _task(store, status=TaskStatus.SUBMITTED, upstream_id="u")
    await clock.advance(10)
    await _task(store)  # pending, but created by "this" process
    found = await store.pending_tasks(created_before=clock() - 5)
    assert [t.id for t in found] == [old]


async def test_waiting_task_by_owner_and_question(store: Store) -> None:
    waiting = await _task(store, status=TaskStatus.WAITING, status_message_id="77")
    await _task(store, owner_id="dc:8", status=TaskStatus.WAITING, status_message_id="78")
    await _task(store, status=TaskStatus.SUBMITTED, status_message_id="79")
    found = await store.waiting_task("dc:7", "77")
    assert found is not None and found.id == waiting
    assert await store.waiting_task("dc:8", "77") is None  # someone else's question
    assert await store.waiting_task("dc:7", "79") is None  # not waiting


async def test_mark_delivered_is_idempotent(store: Store) -> None:
    task_id = await _task(store, status=TaskStatus.SUCCEEDED)
    assert [t.id for t in await store.undelivered_tasks()] == [task_id]
    assert await store.mark_delivered(task_id, at=T0 + 9)
    assert not await store.mark_delivered(task_id)
    task = await store.get_task(task_id)
    assert task is not None and task.delivered_at == T0 + 9
    assert await store.undelivered_tasks() == []
    assert not await store.mark_delivered(9999)


async def test_concurrent_mark_delivered_has_one_winner(store: Store) -> None:
    task_id = await _task(store, status=TaskStatus.SUCCEEDED)
    results = await asyncio.gather(*(store.mark_delivered(task_id) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_count_active_tasks_counts_the_unfinished_per_owner(store: Store) -> None:
    await _task(store, status=TaskStatus.RUNNING)
    await _task(store, status=TaskStatus.WAITING)
    await _task(store, status=TaskStatus.FAILED)
    await _task(store, owner_id="tg:1", status=TaskStatus.PENDING)
    assert await store.count_active_tasks("dc:7") == 2
    assert await store.count_active_tasks("tg:1") == 1
    assert await store.count_active_tasks("nobody") == 0


async def test_button_tokens_are_short_unique_and_resolvable(store: Store) -> None:
    task_id = await _task(store, status=TaskStatus.SUCCEEDED)
    tokens = await store.add_buttons(task_id, MJ_BUTTONS)
    assert len(tokens) == len(MJ_BUTTONS) == len(set(tokens))
    for token, spec in zip(tokens, MJ_BUTTONS, strict=True):
        assert TOKEN_RE.match(token), token
        assert len(f"mj:{token}".encode()) <= 64  # Telegram callback_data
        assert len(f"mj:{token}") <= 100  # Discord custom_id
        ref = await store.get_button(token)
        assert ref is not None
        assert (ref.task_id, ref.custom_id, ref.label, ref.emoji, ref.kind) == (
            task_id,
            spec.custom_id,
            spec.label,
            spec.emoji,
            spec.kind,
        )
        assert ref.created_at == T0
    assert await store.get_button("nope") is None


async def test_many_tokens_are_unique(store: Store) -> None:
    tokens: list[str] = []
    for _ in range(20):
        task_id = await _task(store, status=TaskStatus.SUCCEEDED)
        tokens += await store.add_buttons(task_id, MJ_BUTTONS)
    assert len(set(tokens)) == len(tokens) == 100


async def test_add_buttons_is_idempotent_per_task(store: Store) -> None:
    task_id = await _task(store, status=TaskStatus.SUCCEEDED)
    first = await store.add_buttons(task_id, MJ_BUTTONS[:3])
    again = await store.add_buttons(task_id, MJ_BUTTONS)
    assert again[:3] == first
    assert len(set(again)) == len(MJ_BUTTONS)
    refs = [await store.get_button(token) for token in again]
    assert [(r.task_id, r.custom_id) for r in refs if r] == [
        (task_id, b.custom_id) for b in MJ_BUTTONS
    ]


def _tokens(*values: str) -> Iterator[str]:
    yield from values


async def test_token_collisions_are_retried(clock: FakeClock) -> None:
    factory = _tokens("AAAAAAAAAAA", "AAAAAAAAAAA", "BBBBBBBBBBB")
    async with Store.open(":memory:", clock=clock, token_factory=lambda: next(factory)) as store:
        task_id = await _task(store, status=TaskStatus.SUCCEEDED)
        assert await store.add_buttons(task_id, MJ_BUTTONS[:2]) == ["AAAAAAAAAAA", "BBBBBBBBBBB"]


async def test_token_exhaustion_raises_and_rolls_back(clock: FakeClock) -> None:
    async with Store.open(":memory:", clock=clock, token_factory=lambda: "SAME") as store:
        task_id = await _task(store, status=TaskStatus.SUCCEEDED)
        with pytest.raises(StoreError):
            await store.add_buttons(task_id, MJ_BUTTONS[:2])
        assert await store.get_button("SAME") is None  # the first button's insert rolled back


async def test_tasks_and_buttons_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Store.open(path) as store:
        task_id = await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0)
        [token] = await store.add_buttons(task_id, MJ_BUTTONS[:1])
    async with Store.open(path) as store:
        assert [t.id for t in await store.due_tasks(T0)] == [task_id]
        ref = await store.get_button(token)
        assert ref is not None and ref.task_id == task_id


async def test_due_query_uses_the_partial_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.sqlite3"
    async with Store.open(path) as store:
        for n in range(20):
            await _task(store, status=TaskStatus.RUNNING, next_poll_at=T0 + n)
    with sqlite3.connect(path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {DUE_TASKS_SQL}", (T0, 10))]
    text = "\n".join(plan)
    assert "USING INDEX tasks_due" in text, text
    assert "TEMP B-TREE" not in text, text


async def test_move_chat_takes_conversations_threads_and_tasks_in_one_go(store: Store) -> None:
    old, new, other = (ConversationKey(Platform.TELEGRAM, c) for c in ("-5", "-1005", "-55"))
    topic = ConversationKey(Platform.TELEGRAM, "-5", "7")
    await store.add_turn(old, Turn(Role.USER, "before"))
    await store.set_model(old, "gpt-4o")
    await store.set_persona(old, "A pirate.")
    await store.set_voice(old, True)
    await store.add_turn(topic, Turn(Role.USER, "in a topic"))
    await store.add_turn(other, Turn(Role.USER, "elsewhere"))  # "-55" starts like "-5"
    await store.add_turn(new, Turn(Role.USER, "said in the supergroup first"))
    await store.set_persona(new, "Its own persona.")
    task_id = await _task(store, conversation=old)
    topic_task = await _task(store, conversation=topic)
    other_task = await _task(store, conversation=other)

    moved = await store.move_chat(Platform.TELEGRAM, "-5", "-1005")

    assert moved == 4  # two conversations, two tasks
    turns = [t.content for t in await store.recent_turns(new, limit=10)]
    assert turns == ["before", "said in the supergroup first"]
    settings = await store.get_settings(new)
    assert (settings.model, settings.persona) == ("gpt-4o", "Its own persona.")
    assert settings.voice  # /voice on follows the chat
    new_topic = ConversationKey(Platform.TELEGRAM, "-1005", "7")
    assert [t.content for t in await store.recent_turns(new_topic, limit=10)] == ["in a topic"]
    assert await store.recent_turns(old, limit=10) == []
    assert (await store.get_settings(old)).model is None
    tasks = [await store.get_task(i) for i in (task_id, topic_task, other_task)]
    assert [t.conversation if t else None for t in tasks] == [new, new_topic, other]
    await store.add_turn(new, Turn(Role.USER, "after"))  # the id cache was not left stale
    assert [t.content for t in await store.recent_turns(new, limit=10)][-1] == "after"
    assert await store.move_chat(Platform.TELEGRAM, "-5", "-1005") == 0  # again: nothing
