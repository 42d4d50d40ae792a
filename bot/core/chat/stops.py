"""Stopping an answer while it streams: the ⏹ button under a reply and ``/stop``.

:class:`RunningAnswers` knows the answer being written in each conversation (one at a time:
the conversation lock) and who asked for it. :class:`ChatService
<bot.core.chat.service.ChatService>` wraps its model stream in a :class:`RunningAnswer`;
:meth:`RunningAnswers.stop` cancels what runs inside it, the way :func:`asyncio.timeout`
does: the task is cancelled, so a stream waiting for upstream is interrupted at once and
its connection closed, and the scope turns that cancellation back into a normal exit (a
shutdown's cancellation arriving at the same time still propagates). The answer then ends
as usual: the text so far is shown with :data:`STOPPED_NOTE`, stored, and the lock freed.

A button names its answer by a random id (``stop:<id>``), so a button from before a restart
never stops a newer answer; it is told :data:`ENDED` instead.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from bot.core.models import ConversationKey, ReplyControls

__all__ = [
    "ENDED",
    "NOTHING_TO_STOP",
    "NOT_YOURS",
    "STOPPED",
    "STOPPED_NOTE",
    "RunningAnswer",
    "RunningAnswers",
    "StopResult",
]

STOPPED_NOTE: Final = "⏹ Stopped."
"""Appended to the text so far of an answer someone stopped."""
STOPPED: Final = "Stopped."
NOT_YOURS: Final = "Only the person who asked (or an admin) can stop this answer."
NOTHING_TO_STOP: Final = "Nothing to stop: no answer is being written here."
ENDED: Final = "This answer has already ended."


@dataclass(frozen=True, slots=True)
class StopResult:
    stopped: bool
    text: str
    """One line for whoever asked to stop (privately where the platform can)."""


class RunningAnswer:
    """One answer being streamed; ``async with`` it around the model stream (see the module
    docstring). Entering and leaving never wait."""

    def __init__(
        self, running: dict[str, RunningAnswer], key: ConversationKey, user_id: str
    ) -> None:
        self._running = running  # the registry's answers by conversation: in it while entered
        self.key = key
        self.user_id = user_id
        self.id = secrets.token_urlsafe(6)  # 8 characters: fits any button's data
        self.controls = ReplyControls(stop=self.id)
        self.stopped = False
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    async def __aenter__(self) -> RunningAnswer:
        self._task = asyncio.current_task()
        assert self._task is not None, "a RunningAnswer is entered inside a task"
        self._cancelling = self._task.cancelling()
        self._running[str(self.key)] = self
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._running.get(str(self.key)) is self:
            del self._running[str(self.key)]
        task = self._task
        if not self.stopped or task is None:
            return False
        # Our cancel() is balanced here; a cancellation from anyone else (shutdown) remains
        # counted and keeps propagating.
        ours = task.uncancel() <= self._cancelling
        return ours and exc_type is asyncio.CancelledError

    def stop(self) -> None:
        if self.stopped or self._task is None:
            return
        self.stopped = True
        self._task.cancel()


class RunningAnswers:
    """The answers being streamed, by conversation."""

    def __init__(self) -> None:
        self._by_key: dict[str, RunningAnswer] = {}

    def start(self, key: ConversationKey, user_id: str) -> RunningAnswer:
        """A scope for ``user_id``'s answer in ``key``; registered only while entered."""
        return RunningAnswer(self._by_key, key, user_id)

    def running(self, key: ConversationKey) -> RunningAnswer | None:
        return self._by_key.get(str(key))

    def stop(
        self, key: ConversationKey, user_id: str, *, admin: bool = False, reply: str | None = None
    ) -> StopResult:
        """Stop the answer in ``key`` (``/stop``), or the one the ⏹ button ``reply`` belongs
        to (a button of another chat, or of an answer that ended, finds none), if
        ``user_id`` asked for it or is an admin."""
        run = self._by_key.get(str(key))
        if reply is not None and (run is None or run.id != reply):
            return StopResult(False, ENDED)
        if run is None or run.stopped:
            return StopResult(False, NOTHING_TO_STOP if reply is None else ENDED)
        if run.user_id != user_id and not admin:
            return StopResult(False, NOT_YOURS)
        run.stop()
        return StopResult(True, STOPPED)
