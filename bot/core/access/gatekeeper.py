"""The one place a request is let in, for every platform and command.

Adapters build a :class:`~bot.core.access.policy.Requester` and call one method here before doing
any work: the shutdown gate, the access lists (with refusals told at most once a minute per
person and place), then cooldowns and quotas. Refusals are :class:`UserFacingError`\\ s, so
each platform's one error hook shows them; a refusal repeated too soon is marked ``quiet``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

from bot.core.access.limits import LimitExceeded, Limits, Reservation
from bot.core.access.policy import AccessDenied, AccessPolicy, RefusalNotices, Requester
from bot.core.access.stats import collect_stats, format_stats
from bot.core.lifecycle import ShuttingDown, WorkGate
from bot.core.logcontext import log_context
from bot.core.models import Platform
from bot.core.ports import Clock, StatsStore, Telemetry

__all__ = ["Gatekeeper"]

LIMIT_NOTICE_INTERVAL = 10.0
_LIMITS_PLACE = "limits"


class Gatekeeper:
    def __init__(
        self,
        *,
        policy: AccessPolicy,
        limits: Limits,
        gate: WorkGate,
        stats: StatsStore,
        telemetry: Telemetry,
        clock: Clock,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.gate = gate
        self._stats = stats
        self._telemetry = telemetry
        self._clock = clock
        self._notices = RefusalNotices()  # one refusal line per user and place a minute
        self._limit_notices = RefusalNotices(LIMIT_NOTICE_INTERVAL)
        self._wall = wall

    @contextmanager
    def work(self, *, platform: str, chat: str, user: str | None = None) -> Iterator[None]:
        """Wrap one update: counted for graceful shutdown, and its log lines carry where it
        came from. Raises :class:`ShuttingDown` once the service is stopping."""
        with self.gate.work(), log_context(platform=platform, chat=chat, user=user):
            yield

    def admit(self, requester: Requester) -> None:
        """May ``requester`` use the bot here? Raises :class:`AccessDenied` if not."""
        if self.gate.closed:
            raise ShuttingDown
        try:
            self.policy.check(requester)
        except AccessDenied as exc:
            self._telemetry.refused(exc.reason)
            exc.quiet = not self._notices.should_notify(requester, self._clock.now())
            raise

    async def admit_chat(self, requester: Requester) -> None:
        """Access, then the chat cooldown and the daily token quota."""
        self.admit(requester)
        try:
            await self.limits.admit_chat(requester.user)
        except LimitExceeded as exc:
            self._quiet_if_repeated(exc, requester.user)
            raise

    @asynccontextmanager
    async def chat_turn(self, user: str) -> AsyncIterator[None]:
        """The chat core's :class:`~bot.core.chat.service.ChatTurns`: held while an admitted
        turn runs; the token quota is checked again when its go comes (see
        :meth:`Limits.chat_turn`), a repeated refusal quiet like at admission."""
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.limits.chat_turn(user))
            except LimitExceeded as exc:
                self._quiet_if_repeated(exc, user)
                raise
            yield

    async def admit_generation(self, user: str, kind: str, *, amount: int = 1) -> Reservation:
        """The generation core's :class:`~bot.core.ports.Admission`: cooldown, the daily
        quota of ``kind`` and the concurrent-task cap (access was checked by the platform)."""
        try:
            return await self.limits.admit_generation(user, kind, amount=amount)
        except LimitExceeded as exc:
            self._quiet_if_repeated(exc, user)
            raise

    def _quiet_if_repeated(self, exc: LimitExceeded, user: str) -> None:
        # A burst of 20 commands gets one "please wait", not 20 messages that would
        # themselves spend the chat's send budget.
        platform = Platform(user.partition(":")[0]) if ":" in user else Platform.CONSOLE
        who = Requester(platform, user, chat=_LIMITS_PLACE)
        exc.quiet = not self._limit_notices.should_notify(who, self._clock.now())

    async def usage_text(self, requester: Requester) -> str:
        """What /usage shows: the user's use today and what is left."""
        self.admit(requester)
        return await self.limits.usage_summary(requester.user)

    async def stats_text(self, requester: Requester) -> str:
        """What /stats shows; admins only."""
        self.admit(requester)
        self.policy.require_admin(requester, "/stats")
        return format_stats(await collect_stats(self._stats, wall=self._wall))
