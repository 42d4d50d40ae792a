"""Stopping an answer while it streams: the ⏹ button under a reply and ``/stop``.

:class:`RunningAnswers` knows the answer being written in each conversation (one at a time:
the conversation lock) and who asked for it. :class:`ChatService
<bot.core.chat.service.ChatService>` registers each answer while its model stream is read,
with the way to stop it: :meth:`StreamWatch.stop <bot.core.chat.watch.StreamWatch.stop>`
with :attr:`EarlyStop.USER <bot.core.chat.watch.EarlyStop.USER>`, the same path as the idle,
deadline and length limits. The upstream request is cancelled at once and the answer ends as
usual: the text so far is shown with :data:`STOPPED_NOTE`, stored, and the lock freed.

A button names its answer by a random id (``stop:<id>``), so a button from before a restart
never stops a newer answer; it is told :data:`ENDED` instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bot.core.chat.watch import EarlyStop
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

STOPPED_NOTE: Final = EarlyStop.USER.note
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
    """One answer being streamed; ``with`` it around the reading of the model stream: it is
    registered (and can be stopped) only while inside."""

    def __init__(
        self,
        running: dict[str, RunningAnswer],
        key: ConversationKey,
        user_id: str,
        stop: Callable[[], None],
    ) -> None:
        self._running = running  # the registry's answers by conversation: in it while entered
        self._stop = stop
        self.key = key
        self.user_id = user_id
        self.id = secrets.token_urlsafe(6)  # 8 characters: fits any button's data
        self.controls = ReplyControls(stop=self.id)
        self.stopped = False

    def __enter__(self) -> RunningAnswer:
        self._running[str(self.key)] = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._running.get(str(self.key)) is self:
            del self._running[str(self.key)]

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._stop()


class RunningAnswers:
    """The answers being streamed, by conversation."""

    def __init__(self) -> None:
        self._by_key: dict[str, RunningAnswer] = {}

    def start(self, key: ConversationKey, user_id: str, stop: Callable[[], None]) -> RunningAnswer:
        """A scope for ``user_id``'s answer in ``key``, registered only while entered;
        ``stop`` ends the answer (see the module docstring)."""
        return RunningAnswer(self._by_key, key, user_id, stop)

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
