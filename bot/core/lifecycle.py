"""Graceful shutdown: stop taking new work, then wait (bounded) for the work in flight.

On SIGTERM the composition root calls :meth:`WorkGate.close` (new requests get one line,
:class:`ShuttingDown`), then ``await gate.drain(grace, clock)`` so in-flight replies finish
and flush their final text; only then are the platforms and the store closed. Generation
tasks need nothing here: they are rows in the store and resume at the next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from bot.core.clock import wait_event
from bot.core.errors import UserFacingError
from bot.core.ports import Clock

__all__ = ["DEFAULT_GRACE_SECONDS", "ShuttingDown", "WorkGate"]

#: How long shutdown waits for in-flight work: inside Docker's default 10 s stop timeout.
DEFAULT_GRACE_SECONDS: Final = 8.0


class ShuttingDown(UserFacingError):
    def __init__(self) -> None:
        super().__init__("The bot is restarting; please try again in a minute.")


class WorkGate:
    """Counts the requests in flight and refuses new ones once closed."""

    def __init__(self) -> None:
        self._closed = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def active(self) -> int:
        """Requests admitted and not finished yet."""
        return self._active

    @contextmanager
    def work(self) -> Iterator[None]:
        """Wrap one request: ``with gate.work(): ...``; raises :class:`ShuttingDown` if closed."""
        if self._closed:
            raise ShuttingDown
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    def close(self) -> None:
        """Refuse new work from now on (idempotent)."""
        self._closed = True

    async def drain(self, within: float, clock: Clock) -> bool:
        """Close, then wait up to ``within`` seconds for the work in flight; whether it all
        finished (if not, the caller cancels it: replies then flush their text best-effort)."""
        self.close()
        return await wait_event(self._idle, within, clock)
