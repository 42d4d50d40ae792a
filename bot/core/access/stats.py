"""The admins' /stats view: today's users, turns and tokens, generations, the task queue and
the processes serving the bot.

:func:`collect_stats` gathers a :class:`Stats` from the store; :func:`format_stats` renders
it as plain text for Telegram, Discord and the console alike. Every figure is read from the
database, never from this process's memory, so with several processes on one PostgreSQL
database /stats shows the whole bot whichever process answers: usage counters and tasks are
shared rows, and the processes are those whose heartbeat (:mod:`bot.core.presence`) is
recent, each with the roles it holds. (A user's own figures are
/usage, in :mod:`bot.core.access.usage`; a task's status message is
:mod:`bot.core.generation.views`.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from bot.core.access.usage import QUOTA_KINDS, format_duration
from bot.core.generation.records import TERMINAL_STATUSES
from bot.core.ports import StatsStore
from bot.core.presence import STALE_AFTER
from bot.core.roles import ProcessInfo

__all__ = ["FINISHED_STATUSES", "Stats", "collect_stats", "format_stats"]

#: Task statuses that are over (as plain strings); every other status is in the queue.
FINISHED_STATUSES: Final = frozenset(status.value for status in TERMINAL_STATUSES)
_STATUS_ORDER: Final = (
    "pending",
    "submitted",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "expired",
    "cancelled",
)


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot for operators. Daily figures are for ``day`` (UTC)."""

    day: str
    users_today: int
    users_total: int
    chat_turns: int
    prompt_tokens: int
    completion_tokens: int
    generations: Mapping[str, int] = field(default_factory=dict)
    """Generations admitted today (failed ones refunded), by kind."""
    tasks: Mapping[str, int] = field(default_factory=dict)
    """Every stored task, by status."""
    tasks_by_provider: Mapping[tuple[str, str], int] = field(default_factory=dict)
    queue_length: int = 0
    """Unfinished tasks (pending, submitted, running, waiting)."""
    oldest_queued: float | None = None
    """Age in seconds of the oldest unfinished task."""
    processes: tuple[ProcessInfo, ...] = ()
    """The live processes on this database, by name."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


async def collect_stats(
    store: StatsStore, *, wall: Callable[[], float] = time.time, stale_after: float = STALE_AFTER
) -> Stats:
    """Read the figures for today (UTC, by ``wall``), the whole queue and the processes seen
    within ``stale_after`` seconds."""
    now = wall()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    totals = await store.usage_totals(day)
    by_provider = await store.task_counts()
    tasks: dict[str, int] = {}
    for (_, status), count in by_provider.items():
        tasks[status] = tasks.get(status, 0) + count
    oldest = await store.oldest_active_task_at()
    return Stats(
        day=day,
        users_today=await store.count_users(day),
        users_total=await store.count_all_users(),
        chat_turns=totals.get("chat", 0),
        prompt_tokens=totals.get("prompt_tokens", 0),
        completion_tokens=totals.get("completion_tokens", 0),
        generations={kind: totals.get(kind, 0) for kind in QUOTA_KINDS},
        tasks=tasks,
        tasks_by_provider=by_provider,
        queue_length=sum(n for s, n in tasks.items() if s not in FINISHED_STATUSES),
        oldest_queued=None if oldest is None else max(0.0, now - oldest),
        processes=tuple(await store.live_processes(stale_after)),
    )


def format_stats(stats: Stats) -> str:
    """Plain text for /stats."""
    generations = ", ".join(f"{kind} {n:,}" for kind, n in stats.generations.items())
    lines = [
        f"Today ({stats.day} UTC):",
        f"Users: {stats.users_today:,} (ever: {stats.users_total:,})",
        f"Chat turns: {stats.chat_turns:,}",
        f"Tokens: {stats.tokens:,} ({stats.prompt_tokens:,} prompt, "
        f"{stats.completion_tokens:,} completion)",
        f"Generations: {generations or 'none'}",
    ]
    queue = f"Queue: {stats.queue_length:,} unfinished"
    if stats.oldest_queued is not None:
        queue += f", the oldest for {format_duration(stats.oldest_queued)}"
    lines.append(queue)
    if stats.tasks:
        order = {s: i for i, s in enumerate(_STATUS_ORDER)}
        states = sorted(stats.tasks.items(), key=lambda item: (order.get(item[0], 99), item[0]))
        lines.append("Tasks: " + ", ".join(f"{status} {n:,}" for status, n in states))
    else:
        lines.append("Tasks: none yet")
    if stats.processes:
        lines.append(
            f"Processes: {len(stats.processes)} — "
            + ", ".join(f"{p.name} ({', '.join(p.roles) or 'no roles'})" for p in stats.processes)
        )
    return "\n".join(lines)
