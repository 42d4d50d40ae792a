"""Which parts of the bot's work this process holds (design §9).

With several processes on one PostgreSQL database, some work belongs to exactly one of
them at a time: receiving and sending for Telegram (``"telegram"``), a set of Discord
shards (``"discord:0,1"``). Polling generation tasks (``"poller"``) is shared: every
process may hold it. :class:`Roles` is this process's current set, read by ``/healthz``,
the process registry behind ``/stats``, and the deliverer (a finished task is posted by
the process that holds its destination).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.core.clock import wait_event

if TYPE_CHECKING:  # ports imports ProcessInfo from here
    from bot.core.ports import Clock

__all__ = ["DISCORD", "POLLER", "TELEGRAM", "ProcessInfo", "RoleKeeper", "RoleLock", "Roles"]

log = logging.getLogger(__name__)

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


class RoleLock(Protocol):
    """An exclusive lock across processes (a PostgreSQL advisory lock), held by a session
    that ends with the process: a dead holder loses it by itself."""

    async def acquire(self) -> bool:
        """Try once; whether this process holds the lock now."""
        ...

    async def wait_lost(self) -> None:
        """Return once the lock is no longer certainly held (its session ended)."""
        ...

    async def release(self) -> None: ...


class RoleKeeper:
    """Holds one exclusive role for as long as this process runs.

    A standby tries the lock every ``retry`` seconds; once it holds it, ``start`` brings the
    work up and the role is announced in :class:`Roles`. If the lock is lost (the database
    session ended: this process was cut off, so another may already hold it) the work is
    stopped at once and the process stands by again. A start that fails lets the lock go
    for a while, so a healthy standby can take the role.
    """

    def __init__(
        self,
        role: str,
        lock: RoleLock,
        *,
        start: Callable[[], Awaitable[None]],
        stop: Callable[[], Awaitable[None]],
        roles: Roles,
        clock: Clock,
        retry: float = 2.0,
        failed_start_pause: float = 30.0,
    ) -> None:
        self._role = role
        self._lock = lock
        self._start = start
        self._stop = stop
        self._roles = roles
        self._clock = clock
        self._retry = retry
        self._pause = failed_start_pause

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` is set (then the work is stopped and the lock released)."""
        try:
            while not stopping.is_set():
                if not await self._try_lock():
                    await wait_event(stopping, self._retry, self._clock)
                    continue
                try:
                    await self._start()
                except Exception:
                    log.exception("%s: could not start; letting the role go for now", self._role)
                    await self._lock.release()
                    await wait_event(stopping, self._pause, self._clock)
                    continue
                self._roles.gain(self._role)
                log.info("%s: this process holds the role now", self._role)
                try:
                    await _first(stopping.wait(), self._lock.wait_lost())
                finally:
                    self._roles.lose(self._role)
                    await self._stop()
                if not stopping.is_set():
                    log.warning("%s: the role was lost; standing by", self._role)
                    await self._lock.release()
                    # Not at once: a lock lost as soon as it is taken must not spin.
                    await wait_event(stopping, self._retry, self._clock)
        finally:
            await self._lock.release()

    async def _try_lock(self) -> bool:
        try:
            return await self._lock.acquire()
        except Exception as exc:  # the database is away: stay a standby, try again
            log.warning("%s: cannot reach the lock: %s", self._role, exc)
            return False


async def _first(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
