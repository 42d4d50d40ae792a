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
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from bot.core.clock import wait_event
from bot.core.ports import Clock

__all__ = [
    "DISCORD_CHANNEL",
    "DISCORD_CHANNEL_WINDOWS",
    "DISCORD_GLOBAL_WINDOWS",
    "TELEGRAM_GLOBAL_WINDOWS",
    "TELEGRAM_GROUP",
    "TELEGRAM_GROUP_WINDOWS",
    "TELEGRAM_PRIVATE",
    "TELEGRAM_PRIVATE_WINDOWS",
    "Pacer",
    "PacerRules",
    "Priority",
    "Ticket",
    "Window",
    "discord_rules",
    "telegram_rules",
]

log = logging.getLogger(__name__)

# Float slack when comparing a wake-up time with a window's free time: a clock that sleeps
# ``free_at - now`` may land a rounding error short of ``free_at``.
_EPS = 1e-9
_SWEEP_EVERY = 30.0


class Priority(IntEnum):
    """Lower goes first. Within one priority requests are served first come, first served."""

    URGENT = 0
    """A reply's first message, a new continuation message, a sealed or final text."""
    EDIT = 1
    """An intermediate edit of a growing message."""
    BACKGROUND = 2
    """Nice-to-have calls such as typing indicators, when they are paced at all."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``count`` grants in any span of ``per`` seconds.

    With ``holds`` set to :attr:`Priority.EDIT`, the window counts every grant but only holds
    back requests of that priority or lower: a smooth pace for edits that leaves room for
    first messages, instead of bursting into a long window and then stalling.
    """

    count: int
    per: float
    holds: Priority = Priority.URGENT

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0:
            raise ValueError(f"a window needs count >= 1 and per > 0, got {self}")


@dataclass(frozen=True, slots=True)
class PacerRules:
    """Windows per lane kind plus windows over every lane together."""

    lanes: Mapping[str, tuple[Window, ...]]
    global_windows: tuple[Window, ...] = ()


TELEGRAM_PRIVATE = "tg_private"
TELEGRAM_GROUP = "tg_group"
DISCORD_CHANNEL = "dc_channel"

# Values sit strictly inside what Telegram (and the fake Bot API) enforce: 1 message/s per chat
# with a burst of 3, 20 per rolling minute per group, 30 per rolling second overall.
TELEGRAM_PRIVATE_WINDOWS = (Window(1, 1.1),)
# Group edits keep a steady 1 per 4 s (15/min) so a long answer never exhausts the
# minute and stalls for 40 s, and first or final messages still find room 1.1 s apart.
TELEGRAM_GROUP_WINDOWS = (Window(1, 1.1), Window(18, 60.0), Window(1, 4.0, Priority.EDIT))
# A burst of 25 may go at once (every chat's first message), but no 1.3 s span holds more
# than 28: an event-loop stall of up to 0.3 s can bunch grants together on the way to
# Telegram, and its rolling second still sees at most 28 of its 30 (measured: 10-18 429s at
# 200 chats with the 1 s window alone, none with both).
TELEGRAM_GLOBAL_WINDOWS = (Window(25, 1.0), Window(28, 1.3))
# Discord: about 5 per 5 s per channel (community-observed) and 50 requests/s per bot.
DISCORD_CHANNEL_WINDOWS = (Window(4, 5.0), Window(1, 1.5, Priority.EDIT))
# Discord allows 50 requests/s per bot. As on Telegram, the second window keeps a burst
# delayed by an event-loop stall from meeting the next one inside Discord's second.
DISCORD_GLOBAL_WINDOWS = (Window(40, 1.0), Window(45, 1.3))


def telegram_rules() -> PacerRules:
    """Rules for Telegram: lane kinds :data:`TELEGRAM_PRIVATE` and :data:`TELEGRAM_GROUP`."""
    return PacerRules(
        lanes={TELEGRAM_PRIVATE: TELEGRAM_PRIVATE_WINDOWS, TELEGRAM_GROUP: TELEGRAM_GROUP_WINDOWS},
        global_windows=TELEGRAM_GLOBAL_WINDOWS,
    )


def discord_rules() -> PacerRules:
    """Rules for Discord: lane kind :data:`DISCORD_CHANNEL` (channels, threads, DMs)."""
    return PacerRules(
        lanes={DISCORD_CHANNEL: DISCORD_CHANNEL_WINDOWS}, global_windows=DISCORD_GLOBAL_WINDOWS
    )


class _Budget:
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


class _Lane:
    __slots__ = ("blocked_until", "budget", "key", "kind", "queues", "version")

    def __init__(self, key: str, kind: str | None, windows: tuple[Window, ...]) -> None:
        self.key = key
        self.kind = kind  # None: created by a penalty before its first request
        self.budget = _Budget(windows)
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

    def __init__(self, pacer: Pacer, lane: _Lane, priority: Priority, seq: int) -> None:
        self.pacer = pacer
        self.lane = lane.key
        self.priority = priority
        self.seq = seq
        self.granted_at: float | None = None
        self._lane: _Lane | None = lane
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
        self._lanes: dict[str, _Lane] = {}
        self._global = _Budget(rules.global_windows)
        self._global_blocked = -math.inf
        # (ready_at, seq, version, lane): lanes waiting for their own windows or penalty.
        self._timed: list[tuple[float, int, int, _Lane]] = []
        # (priority, head seq, version, lane): lanes ready now, competing for global slots.
        self._eligible: list[tuple[int, int, int, _Lane]] = []
        self._seq = itertools.count()
        self._waiting = 0
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._next_sweep = clock.now() + _SWEEP_EVERY
        self.granted = 0  # total grants, for metrics

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

    def penalize(self, lane: str, retry_after: float) -> None:
        """The platform said 429 for ``lane``: grant nothing there for ``retry_after`` seconds."""
        now = self._clock.now()
        state = self._lanes.get(lane)
        if state is None:
            # Unknown lane: keep the penalty anyway, with no windows of its own.
            state = self._lanes[lane] = _Lane(lane, None, ())
        state.blocked_until = max(state.blocked_until, now + max(0.0, retry_after))
        log.info("lane %s penalized for %.1fs", lane, retry_after)
        if self._on_penalty is not None:
            self._on_penalty(lane, retry_after)
        self._reschedule(state, now)
        self._kick()

    def penalize_all(self, retry_after: float) -> None:
        """A bot-wide 429 (e.g. Discord's global limit): grant nothing anywhere for a while."""
        self._global_blocked = max(self._global_blocked, self._clock.now() + max(0.0, retry_after))
        self._kick()

    def blocked_until(self, lane: str) -> float:
        """Clock time until which ``lane`` is penalized (``-inf`` when it is not)."""
        state = self._lanes.get(lane)
        return max(self._global_blocked, -math.inf if state is None else state.blocked_until)

    def is_blocked(self, lane: str) -> bool:
        """Whether nothing may go to ``lane`` now (typing indicators included)."""
        return self.blocked_until(lane) > self._clock.now()

    @property
    def lane_count(self) -> int:
        """Lanes currently remembered (waiting, penalized or with recent grants)."""
        return len(self._lanes)

    @property
    def waiting(self) -> int:
        """Requests queued and not yet granted."""
        return self._waiting

    # -- internals ------------------------------------------------------------------------------

    def _lane(self, key: str, kind: str, now: float) -> _Lane:
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
            state = self._lanes[key] = _Lane(key, kind, windows)
        else:  # penalized before its first request: it has no queue yet, only a penalty
            state.kind, state.budget = kind, _Budget(windows)
        return state

    def _global_ready_at(self) -> float:
        return max(self._global_blocked, self._global.free_at())

    def _grant(self, lane: _Lane, ticket: Ticket, now: float) -> None:
        lane.budget.record(now)
        self._global.record(now)
        self.granted += 1
        ticket._resolve(now)

    def _reschedule(self, lane: _Lane, now: float) -> None:
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
