"""Which parts of the bot's work this process holds (design §9).

With several processes on one PostgreSQL database, some work belongs to exactly one of
them at a time: receiving and sending for Telegram (``"telegram"``), a set of Discord
shards (``"discord:0,1"``). Polling generation tasks (``"poller"``) is shared: every
process may hold it. :class:`Roles` is this process's current set, read by ``/healthz``,
the process registry behind ``/stats``, and the deliverer (a finished task is posted by
the process that holds its destination).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DISCORD", "POLLER", "TELEGRAM", "ProcessInfo", "Roles"]

TELEGRAM = "telegram"
DISCORD = "discord"
POLLER = "poller"


class Roles:
    """The roles this process holds now; listeners hear every change."""

    def __init__(self) -> None:
        self._held: dict[str, str] = {}  # role -> detail ("0,1" for Discord shards)
        self._listeners: list[Callable[[], None]] = []

    def gain(self, role: str, detail: str = "") -> None:
        self._held[role] = detail
        self._changed()

    def lose(self, role: str) -> None:
        if self._held.pop(role, None) is not None:
            self._changed()

    def holds(self, role: str) -> bool:
        return role in self._held

    def names(self) -> list[str]:
        """Sorted labels such as ``["discord:0,1", "poller", "telegram"]``."""
        return sorted(f"{role}:{detail}" if detail else role for role, detail in self._held.items())

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process in the registry (:class:`bot.core.ports.ProcessRegistry`): its name
    (``host:pid``), when it started and was last seen (Unix seconds) and its roles."""

    name: str
    started_at: float
    seen_at: float
    roles: tuple[str, ...] = ()
