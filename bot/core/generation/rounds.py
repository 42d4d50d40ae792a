"""One polling round's requests: due tasks grouped into batches per provider, and the
batches polled a few at a time, each answering with snapshots or the error it failed with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Final

from bot.core.errors import UpstreamError
from bot.core.generation.records import Provider, Task
from bot.core.models import TaskRef, TaskSnapshot
from bot.core.ports import TaskBackend

__all__ = ["PARALLEL_REQUESTS", "Batch", "batch_by_provider", "poll_batches"]

log = logging.getLogger(__name__)

PARALLEL_REQUESTS: Final = 8
Batch = tuple[Provider, list[Task]]


def batch_by_provider(due: Sequence[Task], limit: Callable[[Provider], int]) -> list[Batch]:
    """Consecutive batches per provider of at most ``limit(provider)`` tasks, in due order of
    their first task; tasks without an upstream id are left out (the round ends them)."""
    open_batches: dict[Provider, list[Task]] = {}
    batches: list[Batch] = []
    for task in due:
        if task.upstream_id is None:
            continue
        current = open_batches.get(task.provider)
        if current is None or len(current) >= limit(task.provider):
            current = open_batches[task.provider] = []
            batches.append((task.provider, current))
        current.append(task)
    return batches


async def poll_batches(
    backend: TaskBackend, batches: Sequence[Batch]
) -> list[list[TaskSnapshot] | UpstreamError]:
    """Each batch's snapshots, or the error its request failed with (a few at a time)."""
    gate = asyncio.Semaphore(PARALLEL_REQUESTS)

    async def poll(batch: Batch) -> list[TaskSnapshot] | UpstreamError:
        provider, tasks = batch
        refs = [TaskRef(t.upstream_id or "", t.kind) for t in tasks]
        async with gate:
            try:
                return await backend.poll(provider, refs)
            except UpstreamError as exc:
                return exc
            except Exception as exc:  # a bug with one batch must not stop the others
                log.exception("poll %s: unexpected failure", provider.value)
                return UpstreamError(f"{type(exc).__name__}: {exc}")

    return await asyncio.gather(*(poll(b) for b in batches))
