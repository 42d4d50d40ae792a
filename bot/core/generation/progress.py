"""Progress edits of status messages while tasks run, coalesced and paced.

:class:`StatusEditor` shows progress in status messages: the newest view per task replaces
any older one still waiting (coalescing), and a small pool of workers sends them through the
platform's :class:`~bot.core.ports.Outbox` (which waits for the shared pacer). Progress is
best effort; the final view is the deliverer's and always arrives. What a view says is
decided in :mod:`bot.core.generation.views`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Final

from bot.core.generation.records import Task
from bot.core.models import ConversationKey, OutgoingMessage, Platform, StatusView
from bot.core.ports import Outbox

__all__ = ["POST_ATTEMPTS", "StatusEditor", "post_paced"]

log = logging.getLogger(__name__)

POST_ATTEMPTS: Final = 8
"""Posts tried when the platform keeps answering 429."""


async def post_paced(
    outbox: Outbox,
    key: ConversationKey,
    message: OutgoingMessage,
    *,
    reply_to: str | None = None,
    attempts: int = POST_ATTEMPTS,
) -> str:
    """Post in the chat's next slot; after a 429 wait out the penalty and retry
    (:meth:`~bot.core.ports.Outbox.paced`)."""
    return await outbox.paced(
        key, lambda: outbox.post(key, message, reply_to=reply_to), attempts=attempts
    )


class StatusEditor:
    """Progress edits, coalesced per task and sent by at most ``workers`` coroutines."""

    def __init__(self, outboxes: Mapping[Platform, Outbox], *, workers: int = 8) -> None:
        self._outboxes = outboxes
        self._max_workers = workers
        self._workers: set[asyncio.Task[None]] = set()
        self._pending: dict[int, tuple[ConversationKey, str, StatusView]] = {}
        self._inflight: set[int] = set()
        self._settling: dict[int, asyncio.Event] = {}
        self.sent = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def show(self, task: Task, view: StatusView) -> None:
        """Show ``view`` in the task's status message soon (replacing a waiting older view)."""
        if task.status_message_id is None or task.conversation.platform not in self._outboxes:
            return
        self._pending[task.id] = (task.conversation, task.status_message_id, view)
        if len(self._workers) < self._max_workers:
            worker = asyncio.get_running_loop().create_task(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def settle(self, task_id: int) -> None:
        """Drop the task's waiting view and wait for an edit in flight to end."""
        self._pending.pop(task_id, None)
        if task_id in self._inflight:
            event = self._settling.setdefault(task_id, asyncio.Event())
            await event.wait()

    async def close(self) -> None:
        self._pending.clear()
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def _take(self) -> tuple[int, tuple[ConversationKey, str, StatusView]] | None:
        for task_id in self._pending:
            if task_id not in self._inflight:
                return task_id, self._pending.pop(task_id)
        return None

    async def _work(self) -> None:
        while (item := self._take()) is not None:
            task_id, (key, message_id, view) = item
            self._inflight.add(task_id)
            try:
                await self._outboxes[key.platform].edit(key, message_id, view)
                self.sent += 1
            except Exception as exc:  # progress is best effort: the final view still comes
                log.debug("task %d: progress edit failed: %s", task_id, exc)
            finally:
                self._inflight.discard(task_id)
                event = self._settling.pop(task_id, None)
                if event is not None:
                    event.set()
