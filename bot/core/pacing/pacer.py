"""The send/edit budget of one platform, shared by every concurrent reply.

A :class:`Pacer` grants *slots*: one slot is one outgoing send or edit. Every request names a
*lane* (a chat or channel, any string) and a lane *kind* whose rules apply to it; the rules are
data (:class:`PacerRules`): sliding windows ("at most ``count`` grants in any ``per`` seconds")
per lane kind, plus windows across all lanes together.

Scheduling, in one paragraph: each lane keeps FIFO queues per :class:`Priority`; its head is its
oldest most-urgent ticket. A lane whose own windows (and penalty) allow a grant is *eligible*;
eligible lanes compete for the global windows in order of (head priority, head arrival), so
with 200 chats waiting every chat's first message is granted before anybody's intermediate
edit. Lanes not yet eligible wait in a heap keyed by the time they become so. One driver task,
started on demand and gone when nobody waits, sleeps on the injected clock until the next
moment something can be granted, or until a new request, penalty or refund wakes it. Every
grant costs O(log n) heap work; stale heap entries are skipped by a per-lane version number.

``penalize(lane, retry_after)`` is the platform's 429: nothing is granted for that lane until
then. Idle lanes whose windows have emptied are forgotten, so memory follows the number of
recently active chats.

:meth:`Pacer.call` is how platform code uses all this: slot, call, and on a 429 penalty and
retry, in one place, so every send, edit and upload of both platforms follows the same rule.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar, overload

from bot.core.clock import wait_event
from bot.core.errors import PlatformUnavailable, RetryLater
from bot.core.pacing.lanes import Budget, Lane, Ticket
from bot.core.pacing.rules import PacerRules, Priority
from bot.core.ports import Clock

__all__ = ["Pacer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Float slack when comparing a wake-up time with a window's free time: a clock that sleeps
# ``free_at - now`` may land a rounding error short of ``free_at``.
_EPS = 1e-9
_SWEEP_EVERY = 30.0


class Pacer:
    """A shared send/edit budget; see the module docstring for how grants are ordered."""

    def __init__(
        self,
        rules: PacerRules,
        *,
        clock: Clock,
        on_penalty: Callable[[str, float], None] | None = None,
    ) -> None:
        self._rules = rules
        self._clock = clock
        self._on_penalty = on_penalty  # every platform 429 passes here: count it
        self._lanes: dict[str, Lane] = {}
        self._global = Budget(rules.global_windows)
        self._global_blocked = -math.inf
        # (ready_at, seq, version, lane): lanes waiting for their own windows or penalty.
        self._timed: list[tuple[float, int, int, Lane]] = []
        # (priority, head seq, version, lane): lanes ready now, competing for global slots.
        self._eligible: list[tuple[int, int, int, Lane]] = []
        self._seq = itertools.count()
        self._waiting = 0
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._next_sweep = clock.now() + _SWEEP_EVERY
        self.granted = 0  # slots granted, net of refunds

    # -- public API -----------------------------------------------------------------------------

    def request(self, lane: str, kind: str, priority: Priority = Priority.EDIT) -> Ticket:
        """Queue a request for one slot in ``lane`` (a chat) of ``kind``; await ``.wait()``.

        Granted synchronously when nobody waits and every window is free.
        """
        now = self._clock.now()
        state = self._lane(lane, kind, now)
        ticket = Ticket(self, state, priority, next(self._seq))
        if state.head() is None and state.ready_at(priority) <= now + _EPS:
            if self._waiting:
                # Serve whoever is already due first, so the fast path never jumps the queue.
                self._pump(now)
                self._kick()
            if not self._eligible and self._global_ready_at() <= now + _EPS:
                self._grant(state, ticket, now)
                return ticket
        state.queues[priority].append(ticket)
        self._waiting += 1
        if state.head() is ticket:
            self._reschedule(state, now)
        self._kick()
        return ticket

    async def acquire(self, lane: str, kind: str, priority: Priority = Priority.EDIT) -> Ticket:
        """Wait for a slot and consume it; returns the ticket (see :meth:`Ticket.refund`)."""
        ticket = self.request(lane, kind, priority)
        await ticket.wait()
        return ticket

    @overload
    async def call(
        self,
        lane: str,
        kind: str,
        call: Callable[[], Awaitable[T]],
        *,
        priority: Priority = ...,
        attempts: int = ...,
        droppable: Literal[False] = ...,
        paced: bool = ...,
    ) -> T: ...

    @overload
    async def call(
        self,
        lane: str,
        kind: str,
        call: Callable[[], Awaitable[T]],
        *,
        priority: Priority = ...,
        attempts: int = ...,
        droppable: bool,
        paced: bool = ...,
    ) -> T | None: ...

    async def call(
        self,
        lane: str,
        kind: str,
        call: Callable[[], Awaitable[T]],
        *,
        priority: Priority = Priority.URGENT,
        attempts: int = 3,
        droppable: bool = False,
        paced: bool = True,
    ) -> T | None:
        """Make one platform call (a send, an edit, an upload) within ``lane``'s budget.

        Waits for a slot at ``priority``, then returns what ``call()`` returns. ``call``
        raises :class:`~bot.core.errors.RetryLater` for the platform's 429: the lane (every
        lane, for a limit ``everywhere``) is penalized, and the call is made again once a slot
        comes after the penalty, ``attempts`` times in all; then
        :class:`~bot.core.errors.PlatformUnavailable`. Other exceptions propagate unchanged.
        Cancelled while it waits for a slot, the call consumes nothing.

        ``droppable``: an intermediate view, soon replaced, is not worth waiting out a penalty
        for: while the lane is blocked it is dropped (``None``, ``call`` not made), and so is
        one still rate limited after its last attempt. ``paced=False``: the call has a budget
        of its own (a Discord interaction webhook), so it takes a slot only while the lane is
        blocked, waiting out the penalty like everything else going there.
        """
        if attempts < 1:
            raise ValueError(f"a paced call needs attempts >= 1, got {attempts}")
        for _ in range(attempts):
            if droppable and self.is_blocked(lane):
                return None
            if paced or self.is_blocked(lane):
                await self.acquire(lane, kind, priority)  # the one place a call may be cancelled
            try:
                return await call()
            except RetryLater as exc:
                if exc.everywhere:
                    self.penalize_all(exc.retry_after)
                else:
                    self.penalize(lane, exc.retry_after)
        if droppable:
            return None
        raise PlatformUnavailable(f"lane {lane}: still rate limited after {attempts} attempts")

    def penalize(self, lane: str, retry_after: float) -> None:
        """The platform said 429 for ``lane``: grant nothing there for ``retry_after`` seconds."""
        now = self._clock.now()
        state = self._lanes.get(lane)
        if state is None:
            # Unknown lane: keep the penalty anyway, with no windows of its own.
            state = self._lanes[lane] = Lane(lane, None, ())
        state.blocked_until = max(state.blocked_until, now + max(0.0, retry_after))
        log.info("lane %s penalized for %.1fs", lane, retry_after)
        if self._on_penalty is not None:
            self._on_penalty(lane, retry_after)
        self._reschedule(state, now)
        self._kick()

    def penalize_all(self, retry_after: float) -> None:
        """A bot-wide 429 (e.g. Discord's global limit): grant nothing anywhere for a while."""
        self._global_blocked = max(self._global_blocked, self._clock.now() + max(0.0, retry_after))
        log.info("every lane penalized for %.1fs", retry_after)
        if self._on_penalty is not None:
            self._on_penalty("*", retry_after)
        self._kick()

    def blocked_until(self, lane: str) -> float:
        """Clock time until which ``lane`` is penalized (``-inf`` when it is not)."""
        state = self._lanes.get(lane)
        return max(self._global_blocked, -math.inf if state is None else state.blocked_until)

    def is_blocked(self, lane: str) -> bool:
        """Whether nothing may go to ``lane`` now (typing indicators included)."""
        return self.blocked_until(lane) > self._clock.now()

    @property
    def rules(self) -> PacerRules:
        """What this pacer enforces."""
        return self._rules

    @property
    def lane_count(self) -> int:
        """Lanes currently remembered (waiting, penalized or with recent grants)."""
        return len(self._lanes)

    @property
    def waiting(self) -> int:
        """Requests queued and not yet granted."""
        return self._waiting

    # -- internals ------------------------------------------------------------------------------

    def _lane(self, key: str, kind: str, now: float) -> Lane:
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._lanes.get(key)
        if state is not None and state.kind is not None:
            return state
        try:
            windows = self._rules.lanes[kind]
        except KeyError:
            raise ValueError(f"no pacing rules for lane kind {kind!r}") from None
        if state is None:
            state = self._lanes[key] = Lane(key, kind, windows)
        else:  # penalized before its first request: it has no queue yet, only a penalty
            state.kind, state.budget = kind, Budget(windows)
        return state

    def _global_ready_at(self) -> float:
        return max(self._global_blocked, self._global.free_at())

    def _grant(self, lane: Lane, ticket: Ticket, now: float) -> None:
        lane.budget.record(now)
        self._global.record(now)
        self.granted += 1
        ticket._resolve(now)

    def _reschedule(self, lane: Lane, now: float) -> None:
        lane.version += 1
        head = lane.head()
        if head is None:
            return
        at = lane.ready_at(head.priority)
        if at <= now + _EPS:
            heapq.heappush(self._eligible, (head.priority, head.seq, lane.version, lane))
        else:
            heapq.heappush(self._timed, (at, next(self._seq), lane.version, lane))

    def _kick(self) -> None:
        self._wake.set()
        if self._driver is None and self._waiting:
            self._driver = asyncio.get_running_loop().create_task(self._drive())

    def _pump(self, now: float) -> None:
        """Grant everything grantable at ``now``."""
        timed, eligible = self._timed, self._eligible
        while timed and timed[0][0] <= now + _EPS:
            _, _, version, lane = heapq.heappop(timed)
            head = lane.head()
            if version == lane.version and head is not None:
                heapq.heappush(eligible, (head.priority, head.seq, version, lane))
        while eligible and self._global_ready_at() <= now + _EPS:
            _, _, version, lane = heapq.heappop(eligible)
            head = lane.head()
            if version != lane.version or head is None:
                continue
            lane.queues[head.priority].popleft()
            self._waiting -= 1
            self._grant(lane, head, now)
            self._reschedule(lane, now)
        self._compact()

    def _next_wake(self, now: float) -> float:
        at = math.inf
        if self._timed:
            at = self._timed[0][0]
        if self._eligible:
            at = min(at, self._global_ready_at())
        return at - now

    async def _drive(self) -> None:
        try:
            while self._waiting:
                self._wake.clear()
                now = self._clock.now()
                self._pump(now)
                if not self._waiting:
                    break
                delay = self._next_wake(now)
                await wait_event(self._wake, None if math.isinf(delay) else delay, self._clock)
        except Exception:  # a bug here would hang every reply: fail them loudly instead
            log.exception("pacer driver crashed")
            self._fail_all()
        finally:
            self._driver = None

    def _fail_all(self) -> None:
        for lane in self._lanes.values():
            for ticket in [t for q in lane.queues for t in q]:
                self._requeue(ticket, None)
                if ticket._future is not None and not ticket._future.done():
                    ticket._future.set_exception(RuntimeError("pacer failed"))

    def _requeue(self, ticket: Ticket, priority: Priority | None) -> None:
        """Move a waiting ticket to another priority's queue, or out (``None``)."""
        lane = ticket._lane
        assert lane is not None
        was_head = lane.head() is ticket
        lane.queues[ticket.priority].remove(ticket)
        if priority is None:
            ticket._withdrawn = True
            self._waiting -= 1
        else:
            ticket.priority = priority
            lane.queues[priority].append(ticket)
        if was_head or lane.head() is ticket:
            self._reschedule(lane, self._clock.now())
            self._kick()

    def _refund(self, ticket: Ticket) -> None:
        assert ticket.granted_at is not None
        if ticket._lane is not None:
            ticket._lane.budget.unrecord(ticket.granted_at)
            self._reschedule(ticket._lane, self._clock.now())
        self._global.unrecord(ticket.granted_at)
        self.granted -= 1
        self._kick()

    def _sweep(self, now: float) -> None:
        # A lane whose windows hold no live grant behaves exactly like a new one: forget it.
        self._next_sweep = now + _SWEEP_EVERY
        stale = [
            key
            for key, lane in self._lanes.items()
            if lane.head() is None and lane.blocked_until <= now and lane.budget.idle_since(now)
        ]
        for key in stale:
            del self._lanes[key]

    def _compact(self) -> None:
        # Upgrades, penalties and withdrawals leave stale entries; rebuild if they pile up.
        live = len(self._lanes)
        if len(self._timed) + len(self._eligible) <= 4 * live + 64:
            return
        now = self._clock.now()
        self._timed.clear()
        self._eligible.clear()
        for lane in self._lanes.values():
            self._reschedule(lane, now)
