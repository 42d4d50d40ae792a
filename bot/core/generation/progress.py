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
from dataclasses import dataclass
from typing import Final

from bot.core.generation.records import Task, TaskStatus
from bot.core.generation.views import progress_view
from bot.core.models import ConversationKey, OutgoingMessage, Platform, StatusView, TaskSnapshot
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


@dataclass(slots=True)
class _Shown:
    status: TaskStatus
    progress: int | None
    preview: str | None
    at: float


class ProgressShown:
    """What each polled task's status message shows, so a poll only edits it when the
    progress (or preview) changed, and at most once per ``interval`` seconds."""

    def __init__(self, editor: StatusEditor, interval: float) -> None:
        self._editor = editor
        self._interval = interval
        self._shown: dict[int, _Shown] = {}

    def show(self, task: Task, view: StatusView, now: float) -> None:
        """Show ``view`` now (the use cases' first "submitted" view)."""
        self._editor.show(task, view)
        self._shown[task.id] = _Shown(task.status, task.progress, view.preview_url, now)

    def forget(self, task_id: int) -> None:
        self._shown.pop(task_id, None)

    def update(self, task: Task, status: TaskStatus, snap: TaskSnapshot, now: float) -> bool:
        """Show a polled task's progress if it changed and its time has come; whether it did."""
        if task.status_message_id is None:
            return False
        progress, preview = snap.progress, snap.preview_url
        shown = self._shown.get(task.id)
        if shown is not None:
            same = shown.status is status and shown.progress == progress
            if same and (preview is None or shown.preview == preview):
                return False
            if now - shown.at < self._interval:
                return False
        # Built only when it will be shown: thousands of tasks are polled per cycle.
        view = progress_view(task, status=status, progress=progress, preview_url=preview)
        self._shown[task.id] = _Shown(status, progress, preview, now)
        self._editor.show(task, view)
        return True
