"""TaskTransitions without I/O: what one poll answer does to a task row."""

from __future__ import annotations

import random

from bot.core.generation.records import UNSET, Provider, Task, TaskStatus
from bot.core.generation.transitions import MODAL_DURING_POLL, PollerConfig, TaskTransitions
from bot.core.models import ConversationKey, Platform, TaskSnapshot, UpstreamState

NOW = 1_000_000.0
CONFIG = PollerConfig(first_interval=2.0, max_interval=10.0, growth=2.0, jitter=0.0)


def task(**fields: object) -> Task:
    row: dict[str, object] = {
        "id": 1,
        "provider": Provider.MIDJOURNEY,
        "kind": "imagine",
        "owner_id": "tg:1",
        "conversation": ConversationKey(Platform.TELEGRAM, "1"),
        "status": TaskStatus.SUBMITTED,
        "request": {},
        "created_at": NOW - 60,
        "updated_at": NOW - 60,
        "upstream_id": "u1",
        "deadline": NOW + 600,
        "attempts": 2,
    }
    row.update(fields)
    return Task(**row)  # type: ignore[arg-type]


def snap(state: UpstreamState, **fields: object) -> TaskSnapshot:
    return TaskSnapshot("u1", state, **fields)  # type: ignore[arg-type]


TRANSITIONS = TaskTransitions(CONFIG, random.Random(0))


def test_an_unchanged_task_only_moves_its_schedule_on_a_growing_interval() -> None:
    update = TRANSITIONS.apply(task(), snap(UpstreamState.QUEUED), NOW)
    assert (update.status, update.progress) == (UNSET, UNSET)
    assert (update.attempts, update.next_poll_at) == (3, NOW + 10.0)  # 2 * 2**3, capped at 10
    first = TRANSITIONS.apply(task(attempts=0), snap(UpstreamState.QUEUED), NOW)
    assert first.next_poll_at == NOW + 4.0


def test_progress_and_running_are_written() -> None:
    update = TRANSITIONS.apply(task(), snap(UpstreamState.RUNNING, progress=40), NOW)
    assert (update.status, update.progress) == (TaskStatus.RUNNING, 40)


def test_finished_snapshots_end_the_task() -> None:
    done = TRANSITIONS.apply(task(), snap(UpstreamState.SUCCEEDED, result={"url": "x"}), NOW)
    assert (done.status, done.progress, done.result, done.next_poll_at) == (
        TaskStatus.SUCCEEDED,
        100,
        {"url": "x"},
        None,
    )
    failed = TRANSITIONS.apply(task(), snap(UpstreamState.FAILED, error="banned word"), NOW)
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "banned word")
    modal = TRANSITIONS.apply(task(), snap(UpstreamState.WAITING), NOW)
    assert (modal.status, modal.error) == (TaskStatus.FAILED, MODAL_DURING_POLL)


def test_past_the_deadline_a_task_expires_whatever_the_answer() -> None:
    late = task(deadline=NOW - 1)
    for update in (
        TRANSITIONS.apply(late, snap(UpstreamState.RUNNING), NOW),
        TRANSITIONS.retry(late, NOW),
    ):
        assert update.status is TaskStatus.EXPIRED and update.next_poll_at is None
        assert isinstance(update.error, str) and "30 min" in update.error


def test_a_retry_honours_retry_after_and_jitter_stays_within_bounds() -> None:
    assert TRANSITIONS.retry(task(), NOW, retry_after=60).next_poll_at == NOW + 60
    jittered = TaskTransitions(PollerConfig(jitter=0.1), random.Random(1))
    for attempts in range(10):
        at = jittered.retry(task(attempts=attempts), NOW).next_poll_at
        base = PollerConfig().interval(attempts + 1)
        assert isinstance(at, float) and 0.9 * base <= at - NOW <= 1.1 * base
