"""Virtual time for tests: the one fake clock, whose sleeps end only when the test moves time.

It serves two roles, so every test moves time the same way:

- the core's :class:`bot.core.ports.Clock` (``now``/``sleep``/``wait``), for pacing, cooldowns,
  streaming and the poller;
- a plain ``() -> float`` time source (``clock()``): the store's and the limits' Unix clock,
  the fake platforms' monotonic clock for flood budgets. Start it where the test needs
  (``FakeClock(start=NOON)``) and move it with ``await clock.advance(...)``, or ``clock.set(t)``
  from code that cannot await (a wall clock may also be set back).

Two ways to drive the sleepers:

- ``await clock.advance(2.5)``: wakes every sleeper due within the next 2.5 virtual seconds, in
  deadline order, letting the woken tasks run to their next wait after each wake-up; then time
  stands at ``start + 2.5``.
- ``async with clock.auto():``: an autopilot that, whenever every task is idle (nothing ready to
  run on the loop), jumps straight to the earliest sleeper's deadline. Test code can then simply
  ``await clock.sleep(0.2)`` between steps and read exact virtual timestamps.

"Idle" is read from the default event loop's ready queue (``loop._ready``), which is exact for
code that only waits on futures and this clock, as the core does (it never uses loop timers).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

_SETTLE_LIMIT = 200_000


class FakeClock:
    """A :class:`bot.core.ports.Clock` with virtual, test-controlled time."""

    def __init__(self, start: float = 0.0, *, max_virtual: float = 10_000_000.0) -> None:
        self._now = start
        self._start = start
        self._max_virtual = max_virtual
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._new_sleeper: asyncio.Future[None] | None = None
        self.sleeps = 0  # how many parked sleeps were requested (for cost checks)

    # -- Clock protocol -------------------------------------------------------------------------

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        """The time, as a plain ``() -> float`` clock (``Store(clock=...)``, ``wall=...``)."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        self.sleeps += 1
        if self._new_sleeper is not None and not self._new_sleeper.done():
            self._new_sleeper.set_result(None)
        await fut  # a cancelled sleep leaves a cancelled future, skipped when popped

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Race a virtual sleep against ``event`` (a loop timer would run on real time);
        both helper tasks are cancelled on the way out, whatever happens."""
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return event.is_set()

    # -- driving time ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Sleepers still parked."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    def next_deadline(self) -> float | None:
        self._drop_dead()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running everything that becomes due on the way."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        await settle()
        while True:
            self._drop_dead()
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            self._wake_next()
            await settle()
        self._now = target
        await settle()

    async def advance_to(self, when: float) -> None:
        await self.advance(max(0.0, when - self._now))

    def set(self, when: float) -> None:
        """Put the time at ``when``, forward or back (a wall clock may step), waking no one.

        Only for a clock nothing sleeps on: with a sleeper parked, moving time without waking
        it would break the order of wake-ups, so use :meth:`advance` then.
        """
        if self.pending:
            raise RuntimeError("FakeClock.set: tasks sleep on this clock; use advance()")
        self._now = when

    @asynccontextmanager
    async def auto(self) -> AsyncIterator[FakeClock]:
        """Run an autopilot that jumps to the next deadline whenever all tasks are idle."""
        pilot = asyncio.ensure_future(self._autopilot())
        try:
            yield self
        finally:
            pilot.cancel()
            with suppress(asyncio.CancelledError):
                await pilot

    async def _autopilot(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await settle()
            self._drop_dead()
            if self._sleepers:
                if self._sleepers[0][0] - self._start > self._max_virtual:
                    raise RuntimeError("FakeClock: virtual time ran away (a task never ends?)")
                self._wake_next()
                continue
            self._new_sleeper = loop.create_future()
            await self._new_sleeper
            self._new_sleeper = None

    def _wake_next(self) -> None:
        deadline, _, fut = heapq.heappop(self._sleepers)
        self._now = max(self._now, deadline)
        fut.set_result(None)

    def _drop_dead(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


async def settle() -> None:
    """Yield until no callback is ready to run: every task is parked on something."""
    loop: Any = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if ready is None:  # an unknown loop: fall back to a generous fixed number of yields
        for _ in range(200):
            await asyncio.sleep(0)
        return
    for _ in range(_SETTLE_LIMIT):
        await asyncio.sleep(0)
        if not ready:
            return
    raise RuntimeError("FakeClock.settle: the loop never became idle")
