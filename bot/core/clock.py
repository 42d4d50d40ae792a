"""Time for the core: the real :class:`SystemClock` and clock-aware waiting helpers.

Everything in the core that waits (pacing, streaming, typing indicators) goes through a
:class:`bot.core.ports.Clock`, never through ``asyncio.sleep`` or ``loop.time`` directly, so
tests can swap in virtual time. Waits with a timeout are built by racing ``clock.sleep``
against an event (:func:`wait_event`) instead of ``asyncio.wait_for``, whose timer would run
on the event loop's real clock.
"""

from __future__ import annotations

import asyncio
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


async def wait_event(event: asyncio.Event, within: float | None, clock: Clock) -> bool:
    """Wait until ``event`` is set or ``within`` seconds of ``clock`` time pass.

    Returns whether the event is set. ``within=None`` waits without limit; a value of
    zero or less only checks. Cancellation-safe: both helper tasks are cancelled on exit.
    """
    if event.is_set():
        return True
    if within is None:
        await event.wait()
        return True
    if within <= 0:
        return False
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(within))
    try:
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return event.is_set()
