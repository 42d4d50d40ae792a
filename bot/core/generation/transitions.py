"""What a poll does to a task row: the poller's settings and its per-task decisions.

:class:`TaskTransitions` turns what a provider said about one task into the row's next
:class:`~bot.core.generation.records.TaskUpdate`, and does nothing else (no I/O, no
bookkeeping; :class:`~bot.core.generation.poller.TaskPoller` writes the updates and acts on
the ended tasks):

* a finished snapshot ends the task: ``succeeded`` with its result, or ``failed`` with the
  provider's error (a Midjourney modal during a poll fails too: the bot cannot answer it);
* a task past its provider's deadline ends ``expired``;
* otherwise the task is polled again after :meth:`PollerConfig.interval` for its attempt
  count (growing by ``growth`` up to ``max_interval``, with a little jitter so thousands of
  tasks do not move in lockstep), and no sooner than a server's Retry-After.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from bot.core.generation.records import DEFAULT_DEADLINES, Provider, Task, TaskStatus, TaskUpdate
from bot.core.generation.views import expired_message
from bot.core.models import TaskSnapshot, UpstreamState

__all__ = ["MODAL_DURING_POLL", "PollerConfig", "TaskTransitions"]

MODAL_DURING_POLL: Final = (
    "Midjourney is waiting for input the bot cannot give for this task (is remix mode on?)."
)


@dataclass(frozen=True, slots=True)
class PollerConfig:
    first_interval: float = 3.0
    max_interval: float = 15.0
    growth: float = 1.5
    jitter: float = 0.1
    batch_window: float = 1.0
    max_requests: int = 100
    deadlines: Mapping[Provider, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    progress_edit_interval: float = 3.0
    #: Seconds a claimed task is this process's to poll; a dead process's tasks wait this
    #: long before another process claims them.
    lease: float = 30.0
    #: Seconds overdue before a process polls a task whose chat another process posts to
    #: (the owner polls its own tasks, so it can show their progress).
    takeover_grace: float = 10.0

    def interval(self, attempts: int) -> float:
        """Seconds until the next poll of a task polled ``attempts`` times (no jitter)."""
        return min(self.max_interval, self.first_interval * self.growth ** max(0, attempts))


class TaskTransitions:
    """The next row of a polled task (see the module docstring); ``now`` is Unix time."""

    def __init__(self, config: PollerConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng

    def _next_poll(self, attempts: int, now: float) -> float:
        """When to poll a task polled ``attempts`` times (jittered)."""
        interval = self._config.interval(attempts)
        jitter = self._config.jitter
        if jitter:
            interval *= 1.0 + self._rng.uniform(-jitter, jitter)
        return now + interval

    def end(
        self,
        task: Task,
        status: TaskStatus,
        *,
        result: dict[str, object] | None = None,
        error: str | None = None,
    ) -> TaskUpdate:
        """The task is over with ``status`` (a terminal one): never polled again."""
        return TaskUpdate(
            task.id,
            status=status,
            progress=100 if status is TaskStatus.SUCCEEDED else task.progress,
            next_poll_at=None,
            attempts=task.attempts + 1,
            result=result if result is not None else task.result,
            error=error,
        )

    def retry(self, task: Task, now: float, retry_after: float | None = None) -> TaskUpdate:
        """No news of the task (a failed request, or not known upstream yet): poll it again
        later, no sooner than ``retry_after`` seconds; unless its deadline has passed."""
        if self._expired(task, now):
            return self._expire(task)
        next_at = self._next_poll(task.attempts + 1, now)
        if retry_after is not None:
            next_at = max(next_at, now + retry_after)
        return TaskUpdate(task.id, attempts=task.attempts + 1, next_poll_at=next_at)

    def apply(self, task: Task, snap: TaskSnapshot, now: float) -> TaskUpdate:
        """What the provider's ``snap`` of the task means for its row."""
        state = snap.state
        if state is UpstreamState.SUCCEEDED:
            return self.end(task, TaskStatus.SUCCEEDED, result=snap.result)
        if state is UpstreamState.FAILED:
            return self.end(task, TaskStatus.FAILED, error=snap.error)
        if state is UpstreamState.WAITING:
            return self.end(task, TaskStatus.FAILED, error=MODAL_DURING_POLL)
        if self._expired(task, now):
            return self._expire(task)
        status = TaskStatus.RUNNING if state is UpstreamState.RUNNING else TaskStatus.SUBMITTED
        next_poll_at = self._next_poll(task.attempts + 1, now)
        progress = task.progress if snap.progress is None else snap.progress
        if status is task.status and progress == task.progress:
            # The common case: only the schedule moves (fewer columns, no index to touch).
            return TaskUpdate(task.id, attempts=task.attempts + 1, next_poll_at=next_poll_at)
        return TaskUpdate(
            task.id,
            status=status,
            progress=progress,
            attempts=task.attempts + 1,
            next_poll_at=next_poll_at,
        )

    def _expired(self, task: Task, now: float) -> bool:
        return task.deadline is not None and now >= task.deadline

    def _expire(self, task: Task) -> TaskUpdate:
        deadline = self._config.deadlines.get(task.provider)
        message = expired_message(task.provider, deadline)
        return self.end(task, TaskStatus.EXPIRED, error=message)
