"""The one place a request is let in, for every platform and command.

Adapters build a :class:`~bot.core.access.Requester` and call one method here before doing
any work: the shutdown gate, the access lists (with refusals told at most once a minute per
person and place), then cooldowns and quotas. Refusals are :class:`UserFacingError`\\ s, so
each platform's one error hook shows them; a refusal repeated too soon is marked ``quiet``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.core.access import AccessDenied, AccessPolicy, RefusalNotices, Requester
from bot.core.lifecycle import ShuttingDown, WorkGate
from bot.core.limits import Limits
from bot.core.logcontext import log_context
from bot.core.ports import Clock, StatsStore, Telemetry
from bot.core.stats import collect_stats, format_stats

__all__ = ["Gatekeeper"]


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
        notices: RefusalNotices | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.gate = gate
        self._stats = stats
        self._telemetry = telemetry
        self._clock = clock
        self._notices = notices or RefusalNotices()
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
        await self.limits.admit_chat(requester.user)

    async def usage_text(self, requester: Requester) -> str:
        """What /usage shows: the user's use today and what is left."""
        self.admit(requester)
        return await self.limits.usage_summary(requester.user)

    async def stats_text(self, requester: Requester) -> str:
        """What /stats shows; admins only."""
        self.admit(requester)
        self.policy.require_admin(requester, "/stats")
        return format_stats(await collect_stats(self._stats, wall=self._wall))
