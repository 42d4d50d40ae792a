"""Time for the core: the real :class:`SystemClock` and clock-aware waiting helpers.

Everything in the core that waits (pacing, streaming, typing indicators) goes through a
:class:`bot.core.ports.Clock`, never through ``asyncio.sleep`` or ``loop.time`` directly, so
tests can swap in virtual time. Waits with a timeout go through :func:`wait_event` and the
clock's ``wait``: :class:`SystemClock`, whose time is the loop's, uses the loop's own timer;
a virtual clock must race its own ``sleep`` against the event instead, since
``asyncio.wait_for``'s timer would run on the event loop's real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from bot.core.ports import Clock

__all__ = ["SystemClock", "wait_event"]


class SystemClock:
    """The production clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Seconds on a monotonic clock (only differences are meaningful)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (a non-positive value just yields to the loop)."""
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait for ``event`` at most ``seconds``; whether it is set. One timer handle on the
        loop (whose clock this is), where racing a sleep costs two tasks and a waiter."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        return event.is_set()


async def wait_event(event: asyncio.Event, within: float | None, clock: Clock) -> bool:
    """Wait until ``event`` is set or ``within`` seconds of ``clock`` time pass.

    Returns whether the event is set. ``within=None`` waits without limit; a value of
    zero or less only checks; otherwise the clock's ``wait`` does it.
    """
    if event.is_set():
        return True
    if within is None:
        await event.wait()
        return True
    if within <= 0:
        return False
    return await clock.wait(event, within)
