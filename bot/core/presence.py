"""This process's row in the process registry (design §9): who serves the database, and how.

:class:`Presence` registers the process with its :class:`~bot.core.roles.Roles` at start,
renews the row every :data:`HEARTBEAT_INTERVAL` seconds and at once when the roles change,
and removes it on a clean stop. A process that dies without stopping leaves a row that
stops being renewed: readers count a process live only if it was seen within
:data:`STALE_AFTER` seconds (/stats lists those). A heartbeat that fails (the database is
briefly away) is logged and tried again at the next one; it never stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final

from bot.core.clock import wait_event
from bot.core.ports import Clock, ProcessRegistry
from bot.core.roles import Roles

__all__ = ["HEARTBEAT_INTERVAL", "STALE_AFTER", "Presence"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL: Final = 5.0
#: Three missed heartbeats: a process is gone, not just slow.
STALE_AFTER: Final = 3 * HEARTBEAT_INTERVAL


class Presence:
    """``async with Presence(...):`` keeps ``name``'s row in ``registry`` while the block runs.

    ``clock`` paces the heartbeats; ``wall`` (Unix seconds) dates ``started_at``.
    """

    def __init__(
        self,
        registry: ProcessRegistry,
        roles: Roles,
        *,
        name: str,
        clock: Clock,
        wall: Callable[[], float] = time.time,
        interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self._registry = registry
        self._roles = roles
        self.name = name
        self._clock = clock
        self._interval = interval
        self.started_at = wall()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.beats = 0
        """Heartbeats written (for tests and logs)."""

    async def start(self) -> None:
        """Register now (a failure here is logged like any heartbeat's), then keep beating."""
        await self._beat()
        self._roles.on_change(self._changed.set)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="presence")

    async def stop(self) -> None:
        """Stop beating and remove the row, so /stats drops this process at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self._registry.forget_process(self.name)
        except Exception as exc:  # its row goes stale instead
            log.warning("presence: could not remove %s: %s", self.name, type(exc).__name__)

    async def _run(self) -> None:
        while True:
            await wait_event(self._changed, self._interval, self._clock)
            self._changed.clear()
            await self._beat()

    async def _beat(self) -> None:
        roles = self._roles.names()
        try:
            await self._registry.register_process(
                self.name, started_at=self.started_at, roles=roles
            )
        except Exception as exc:  # the next heartbeat tries again
            log.warning("presence: heartbeat failed: %s", type(exc).__name__)
            return
        self.beats += 1

    async def __aenter__(self) -> Presence:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
