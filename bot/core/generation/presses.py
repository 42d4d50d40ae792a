"""Who may press a result button, where, and how often: no forged or double presses.

A platform button carries only ``mj:<token>``, and a Telegram client can send any callback
data on any of the bot's messages in its own chat; a Discord member can click anyone's
buttons. So every press is checked against the stored row: the button knows its task, the
task knows its conversation and owner.

* **Place:** a token works only in the chat where its button was posted (the task's
  conversation; Telegram forum topics of one chat count as that chat).
* **Person:** with ``owner_only`` (the default, as on Midjourney's own Discord) only the
  task's owner may press; admins always may.
* **Repeats:** a button pressed again while its press is being submitted, or within
  ``window`` seconds after, is answered without a second paid submit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Final

from bot.core.errors import UserFacingError
from bot.core.generation.records import Task
from bot.core.generation.requests import Origin

__all__ = ["ALREADY", "NOT_HERE", "NOT_YOURS", "ButtonPresses"]

NOT_HERE: Final = "This button does not work here."
NOT_YOURS: Final = "Only the person who started this task can use its buttons."
ALREADY: Final = "Already on it."
_PRUNE_AT: Final = 1024


class ButtonPresses:
    """The checks above, in memory (a restart forgets recent presses: at worst one repeat)."""

    def __init__(
        self,
        owner_only: bool,
        window: float,
        is_admin: Callable[[str], bool],
        now: Callable[[], float],
    ) -> None:
        self._owner_only = owner_only
        self._window = window
        self._is_admin = is_admin
        self._now = now
        self._until: dict[str, float] = {}  # token -> when it may be pressed again

    def check(self, task: Task, origin: Origin) -> None:
        """Raise :class:`UserFacingError` unless ``origin`` may press ``task``'s buttons."""
        place, here = task.conversation, origin.key
        if (place.platform, place.chat_id) != (here.platform, here.chat_id):
            raise UserFacingError(NOT_HERE)
        if (
            self._owner_only
            and origin.user_id != task.owner_id
            and not self._is_admin(origin.user_id)
        ):
            raise UserFacingError(NOT_YOURS)

    def claim(self, token: str) -> None:
        """Take the button for one press, or raise :data:`ALREADY`. No await between the
        look and the write, so two concurrent presses cannot both pass."""
        now = self._now()
        if self._until.get(token, 0.0) > now:
            raise UserFacingError(ALREADY)
        if len(self._until) >= _PRUNE_AT:
            self._until = {t: until for t, until in self._until.items() if until > now}
        self._until[token] = now + self._window

    @contextlib.contextmanager
    def pressing(self, token: str) -> Iterator[None]:
        """Hold the button while its press is submitted; the window starts when it ends."""
        self._until[token] = float("inf")
        try:
            yield
        finally:
            self._until[token] = self._now() + self._window
