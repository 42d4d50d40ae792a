"""A pacer's bookkeeping: the sliding windows of a lane, the lane's queues, and the ticket a
request waits on. Internal to :mod:`bot.core.pacing`; only :class:`Ticket` is public.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from typing import TYPE_CHECKING

from bot.core.pacing.rules import Priority, Window

if TYPE_CHECKING:
    from bot.core.pacing.pacer import Pacer

__all__ = ["Budget", "Lane", "Ticket"]


class Budget:
    """Sliding windows: the grant times of the last ``count`` grants, per window."""

    __slots__ = ("stamps", "windows")

    def __init__(self, windows: tuple[Window, ...]) -> None:
        self.windows = windows
        self.stamps = [deque[float](maxlen=w.count) for w in windows]

    def free_at(self, priority: Priority = Priority.URGENT) -> float:
        at = -math.inf
        for w, stamps in zip(self.windows, self.stamps, strict=True):
            if len(stamps) == w.count and priority >= w.holds:
                at = max(at, stamps[0] + w.per)
        return at

    def record(self, now: float) -> None:
        # When a full window grants, the stamp pushed out is at least ``per`` old: harmless.
        for stamps in self.stamps:
            stamps.append(now)

    def unrecord(self, when: float) -> None:
        for stamps in self.stamps:
            with contextlib.suppress(ValueError):
                stamps.remove(when)

    def idle_since(self, now: float) -> bool:
        return all(
            not stamps or stamps[-1] + w.per <= now
            for w, stamps in zip(self.windows, self.stamps, strict=True)
        )


class Lane:
    __slots__ = ("blocked_until", "budget", "key", "kind", "queues", "version")

    def __init__(self, key: str, kind: str | None, windows: tuple[Window, ...]) -> None:
        self.key = key
        self.kind = kind  # None: created by a penalty before its first request
        self.budget = Budget(windows)
        self.blocked_until = -math.inf
        self.queues: tuple[deque[Ticket], ...] = tuple(deque() for _ in Priority)
        self.version = 0

    def head(self) -> Ticket | None:
        for q in self.queues:
            if q:
                return q[0]
        return None

    def ready_at(self, priority: Priority) -> float:
        return max(self.blocked_until, self.budget.free_at(priority))


class Ticket:
    """One request for one slot. Await :meth:`wait`; it may be upgraded or withdrawn."""

    __slots__ = ("_future", "_lane", "_withdrawn", "granted_at", "lane", "pacer", "priority", "seq")

    def __init__(self, pacer: Pacer, lane: Lane, priority: Priority, seq: int) -> None:
        self.pacer = pacer
        self.lane = lane.key
        self.priority = priority
        self.seq = seq
        self.granted_at: float | None = None
        self._lane: Lane | None = lane
        self._future: asyncio.Future[None] | None = None
        self._withdrawn = False

    @property
    def granted(self) -> bool:
        return self.granted_at is not None

    @property
    def waiting(self) -> bool:
        return self.granted_at is None and not self._withdrawn

    async def wait(self) -> None:
        """Wait for the grant.

        If cancelled, the request is withdrawn (and a slot granted at that very instant is
        refunded), so a cancelled waiter consumes nothing and leaves nothing behind.
        """
        if self.granted:
            return
        if self._withdrawn:
            raise RuntimeError("this ticket was withdrawn")
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        try:
            await self._future
        except asyncio.CancelledError:
            if self.granted:
                self.refund()
            else:
                self.cancel()
            raise

    def upgrade(self, priority: Priority) -> None:
        """Move a waiting request to a more urgent priority (no-op otherwise)."""
        if self.waiting and priority < self.priority:
            self.pacer._requeue(self, priority)

    def cancel(self) -> None:
        """Withdraw a waiting request (no-op once granted or withdrawn)."""
        if self.waiting:
            self.pacer._requeue(self, None)

    def refund(self) -> None:
        """Give back a granted slot that was not used, as if it had never been granted."""
        if self.granted_at is not None and self._lane is not None:
            self.pacer._refund(self)
            self._lane = None

    def _resolve(self, now: float) -> None:
        self.granted_at = now
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
