"""Graceful shutdown: stop taking new work, then wait (bounded) for the work in flight.

On SIGTERM the composition root calls :meth:`WorkGate.close` (new requests get one line,
:class:`ShuttingDown`), then ``await gate.drain(grace, clock)`` so in-flight replies finish
and flush their final text; only then are the platforms and the store closed. Generation
tasks need nothing here: they are rows in the store and resume at the next start. How the
seconds are spent is :data:`SHUTDOWN`, the one budget every stage reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from bot.core.clock import wait_event
from bot.core.errors import UserFacingError
from bot.core.ports import Clock

__all__ = ["RESTARTING", "SHUTDOWN", "ShutdownBudget", "ShuttingDown", "WorkGate"]

RESTARTING: Final = "The bot is restarting; please try again in a minute."
"""What a request hears once the service is stopping (on every platform)."""


@dataclass(frozen=True, slots=True)
class ShutdownBudget:
    """The seconds between SIGTERM and exit, spent in this order (Docker kills at 10 s):

    1. the gate closes and the replies in flight get ``finish`` seconds to end on their own
       (the README's promise: up to 3 s);
    2. each platform gives its handlers ``handlers`` seconds more, then cancels the rest;
    3. a cancelled reply makes one bounded attempt, ``flush`` seconds, to show its text so far
       with a note, and the platform waits :attr:`flush_wait` for those attempts.

    So replies are cut short after 3.5 s and the platforms are closed by 9.5 s at most. The
    other values derive from these, or serve a platform run without the gate (tests,
    benchmarks: ``alone``) and Discord's gateway connection (``gateway``).
    """

    finish: float = 3.0
    handlers: float = 0.5
    flush: float = 5.0
    alone: float = 5.0
    """A platform run without the gate's drain before it gives its handlers this long."""
    gateway: float = 5.0
    """How long closing Discord waits for its gateway connection to end."""

    @property
    def flush_wait(self) -> float:
        """How long a platform waits for its cancelled replies: their flush, and a second."""
        return self.flush + 1.0


SHUTDOWN: Final = ShutdownBudget()


class ShuttingDown(UserFacingError):
    def __init__(self) -> None:
        super().__init__(RESTARTING)


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
