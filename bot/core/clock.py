"""Time for the core: the real :class:`SystemClock` and clock-aware waiting helpers.

Everything in the core that waits (pacing, streaming, typing indicators) goes through a
:class:`bot.core.ports.Clock`, never through ``asyncio.sleep`` or ``loop.time`` directly, so
tests can swap in virtual time. Waits with a timeout go through :func:`wait_event`: on
another clock it races ``clock.sleep`` against the event (``asyncio.wait_for``'s timer would
run on the event loop's real clock); on :class:`SystemClock`, whose time is the loop's, it
uses the loop's own timer, which is cheaper.
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
    if type(clock) is SystemClock:
        # The loop's timer runs on the same monotonic clock: a timeout around the wait costs one
        # timer handle, where racing two helper tasks costs two tasks and a waiter.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
        return event.is_set()
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(within))
    try:
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return event.is_set()
