"""Per-user limits: cooldowns, daily quotas and a concurrent-task cap, enforced at admission.

::

    UserFacingError
    └── LimitExceeded          a limit refused the request; ``reason`` for logs and metrics
        ├── CooldownActive     too soon after the previous request; ``retry_after`` seconds
        ├── QuotaExceeded      today's quota of ``kind`` is used up (resets 00:00 UTC)
        └── TooManyTasks       the user already has ``limit`` generations in progress

How each limit holds:

* **Cooldowns** (chat and generation, separately) live in the store, on its wall clock,
  so they survive a restart and hold across processes: checking and starting one is a
  single statement (:meth:`~bot.core.ports.LimitsStore.start_cooldown`), so of a burst
  (from any number of processes) exactly one passes. Only an *admitted* request starts the
  next wait, so a refused request never extends it: the chat cooldown is the last check of
  a chat turn, and a generation refused by a check after its cooldown started (the task
  cap, the quota) clears that cooldown again.
* **Generation quotas** are reserved in the store at admission (an atomic conditional
  upsert, :meth:`~bot.core.ports.LimitsStore.reserve_quota`), so concurrent requests can
  never overshoot together; a :class:`Reservation` gives one back if the task fails.
  Midjourney button actions count as ``imagine``.
* **The chat token quota** can only be checked before a turn (the tokens are known after
  it): a turn is refused once today's prompt + completion tokens reached the quota, so
  the last admitted turn may go past it by its own size. It is checked at admission and
  again in :meth:`Limits.chat_turn`, which runs a quota-limited user's turns one at a time
  (in any conversation): five messages sent at once are admitted together, but only the
  first goes upstream if it uses the quota up.
* **The concurrent-task cap** counts the user's unfinished task rows plus admissions
  whose row is not written yet; one lock per user serialises generation admissions so a
  burst cannot slip through between the count and the reservation.

Admins (``exempt`` users) pass every limit, but their use is still counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from bot.core.access.usage import (
    QUOTA_KINDS,
    UsageKind,
    UserUsage,
    format_duration,
    format_usage,
    quantity,
)
from bot.core.errors import UserFacingError
from bot.core.generation.records import Provider, Task
from bot.core.locks import KeyedLocks
from bot.core.ports import LimitsStore, Telemetry
from bot.core.telemetry import NullTelemetry

__all__ = [
    "CooldownActive",
    "LimitExceeded",
    "Limits",
    "LimitsConfig",
    "QuotaExceeded",
    "Reservation",
    "TooManyTasks",
    "quota_kind",
]

_PROVIDER_KINDS: Final = {
    Provider.MIDJOURNEY: UsageKind.IMAGINE.value,
    Provider.SUNO: UsageKind.MUSIC.value,
    Provider.KLING: UsageKind.VIDEO.value,
}
_TOKEN_KINDS: Final = (UsageKind.PROMPT_TOKENS.value, UsageKind.COMPLETION_TOKENS.value)
_CHAT_TURNS: Final = UsageKind.CHAT.value
_DAY: Final = 86_400
# The store's cooldown kinds (its ``cooldowns.kind``).
_CHAT_COOLDOWN: Final = "chat"
_GENERATION_COOLDOWN: Final = "generation"


class LimitExceeded(UserFacingError):
    """A per-user limit refused the request."""

    reason = "limit"


class CooldownActive(LimitExceeded):
    reason = "cooldown"

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"Please wait {seconds} s before your next request.")
        self.retry_after = retry_after


class QuotaExceeded(LimitExceeded):
    reason = "quota"

    def __init__(self, kind: str, limit: int, *, resets_in: float) -> None:
        what = f"{limit:,} chat tokens" if kind == "chat_tokens" else quantity(kind, limit)
        super().__init__(
            f"You have used your {what} for today; the quota resets at 00:00 UTC "
            f"(in {format_duration(resets_in)})."
        )
        self.kind = kind
        self.limit = limit


class TooManyTasks(LimitExceeded):
    reason = "tasks"

    def __init__(self, limit: int) -> None:
        if limit == 1:
            text = "You already have a generation in progress; please wait for it to finish."
        else:
            text = (
                f"You already have {limit} generations in progress; please wait for one to finish."
            )
        super().__init__(text)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """``[limits]`` plus who is exempt; every 0 means unlimited."""

    chat_cooldown: float = 0.0
    generation_cooldown: float = 0.0
    daily_chat_tokens: int = 0
    daily_imagine: int = 0
    daily_music: int = 0
    daily_video: int = 0
    daily_images: int = 0
    max_concurrent_tasks: int = 0
    exempt: frozenset[str] = frozenset()
    """Platform-qualified users no limit applies to (the admins, unless configured)."""

    def quota(self, kind: str) -> int:
        """Today's limit for a generation ``kind`` (0: unlimited); ValueError if unknown."""
        if kind not in QUOTA_KINDS:
            raise ValueError(f"not a quota kind: {kind!r} (one of {', '.join(QUOTA_KINDS)})")
        limit: int = getattr(self, f"daily_{kind}")
        return limit


class Reservation:
    """A generation admitted by :meth:`Limits.admit_generation`; its quota is counted.

    Call :meth:`recorded` once the task row exists (until then the admission holds a
    slot of the concurrent-task cap), and :meth:`refund` if the task definitely failed;
    a refund happens at most once. As an async context manager it calls ``recorded`` on
    exit and ``refund`` when an ``Exception`` leaves the block (a cancellation does not
    refund: the submit's outcome is unknown and the task row stays to be resolved).
    """

    def __init__(
        self, limits: Limits, user: str, kind: str, amount: int, *, at: float, slot: bool
    ) -> None:
        self._limits = limits
        self.user = user
        self.kind = kind
        self.amount = amount
        self.at = at
        """Wall time of the reservation (a refund goes back to that UTC day)."""
        self._slot = slot
        self._refunded = False

    def recorded(self) -> None:
        """The task row is written (it now counts itself); release the admission's slot."""
        if self._slot:
            self._slot = False
            self._limits._release_slot(self.user)

    async def refund(self) -> bool:
        """Give the quota back (once); whether this call did. Also releases the slot."""
        self.recorded()
        if self._refunded:
            return False
        self._refunded = True
        await self._limits.refund(self.user, self.kind, amount=self.amount, at=self.at)
        return True

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, Exception):
            await self.refund()
        self.recorded()


class Limits:
    """Admits chat turns and generations per user, and reports use for /usage.

    ``wall`` (Unix seconds, the store's clock) dates quotas; cooldowns run on the store's
    own clock.
    """

    def __init__(
        self,
        config: LimitsConfig,
        store: LimitsStore,
        *,
        wall: Callable[[], float] = time.time,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._wall = wall
        self._telemetry = telemetry or NullTelemetry()
        self._pending: dict[str, int] = {}
        self._locks = KeyedLocks()  # one per user: admissions of a user go one at a time
        self._chat_turns = KeyedLocks()  # one per quota-limited user: one chat turn at a time

    @property
    def config(self) -> LimitsConfig:
        return self._config

    def is_exempt(self, user: str) -> bool:
        return user in self._config.exempt

    async def admit_chat(self, user: str) -> None:
        """Let a chat turn start, or raise :class:`QuotaExceeded` / :class:`CooldownActive`."""
        if self.is_exempt(user):
            return
        try:
            await self._check_chat_tokens(user)
            await self._start_cooldown(user, _CHAT_COOLDOWN, self._config.chat_cooldown)
        except LimitExceeded as exc:
            self._telemetry.refused(exc.reason)
            raise

    @asynccontextmanager
    async def chat_turn(self, user: str) -> AsyncIterator[None]:
        """Hold for one admitted chat turn, from just before it goes upstream until its
        usage is stored. With a daily token quota, a user's turns run one at a time and each
        checks the quota again when its go comes (raising :class:`QuotaExceeded`): the tokens
        of a turn are only known after it, so a burst admitted at once must not all go."""
        if self.is_exempt(user) or not self._config.daily_chat_tokens:
            yield
            return
        async with self._chat_turns.hold(user):
            try:
                await self._check_chat_tokens(user)
            except LimitExceeded as exc:
                self._telemetry.refused(exc.reason)
                raise
            yield

    async def _check_chat_tokens(self, user: str) -> None:
        limit = self._config.daily_chat_tokens
        if limit:
            used = await self._store.usage_today(user)
            if sum(used.get(kind, 0) for kind in _TOKEN_KINDS) >= limit:
                raise QuotaExceeded("chat_tokens", limit, resets_in=self._resets_in())

    async def admit_generation(self, user: str, kind: str, *, amount: int = 1) -> Reservation:
        """Admit a generation of ``kind`` (one of :data:`QUOTA_KINDS`) and count it.

        Raises :class:`CooldownActive`, :class:`TooManyTasks` or :class:`QuotaExceeded`;
        nothing is counted then. Midjourney button actions pass ``kind="imagine"``.
        """
        limit = self._config.quota(kind)
        if self.is_exempt(user):
            await self._store.record_usage(user, kind, amount)
            return Reservation(self, user, kind, amount, at=self._wall(), slot=False)
        cooldown = self._config.generation_cooldown
        try:
            async with self._locks.hold(user):
                # The cooldown first: its start is the one check that holds across processes
                # without the lock; a later refusal takes it back.
                await self._start_cooldown(user, _GENERATION_COOLDOWN, cooldown)
                try:
                    at = await self._reserve(user, kind, limit, amount)
                except Exception:
                    if cooldown > 0:
                        await self._store.clear_cooldown(user, _GENERATION_COOLDOWN)
                    raise
                self._pending[user] = self._pending.get(user, 0) + 1
                return Reservation(self, user, kind, amount, at=at, slot=True)
        except LimitExceeded as exc:
            self._telemetry.refused(exc.reason)
            raise

    async def _reserve(self, user: str, kind: str, limit: int, amount: int) -> float:
        """The task cap, then the quota (counted now); the wall time of the reservation."""
        cap = self._config.max_concurrent_tasks
        if cap:
            active = await self._store.count_active_tasks(user)
            if active + self._pending.get(user, 0) >= cap:
                raise TooManyTasks(cap)
        at = self._wall()
        if limit:
            if not await self._store.reserve_quota(user, kind, limit=limit, amount=amount):
                raise QuotaExceeded(kind, limit, resets_in=self._resets_in())
        else:
            await self._store.record_usage(user, kind, amount)
        return at

    async def refund(self, user: str, kind: str, *, amount: int = 1, at: float) -> None:
        """Give back a generation that failed after its reservation was gone (the poller).

        ``at`` is when it was reserved, e.g. the task's ``created_at``; call it once per
        task (on its transition to failed/expired), since the store cannot tell twice.
        """
        await self._store.refund_quota(user, kind, amount=amount, at=at)

    async def refund_task(self, task: Task) -> None:
        """:meth:`refund` for a task that ended without a result (its owner, its provider's
        quota, the day it was created). Call it once, where the poller moves a *polled* task
        to failed or expired; never for a row whose submit outcome was unclear."""
        await self.refund(task.owner_id, quota_kind(task.provider), at=task.created_at)

    async def usage(self, user: str) -> UserUsage:
        """The user's use today and the limits that apply to them."""
        used = await self._store.usage_today(user)
        exempt = self.is_exempt(user)
        config = self._config

        def limit(value: int) -> int:
            return 0 if exempt else value

        return UserUsage(
            user=user,
            exempt=exempt,
            chat_turns=used.get(_CHAT_TURNS, 0),
            chat_tokens=sum(used.get(kind, 0) for kind in _TOKEN_KINDS),
            chat_token_limit=limit(config.daily_chat_tokens),
            generations=tuple(
                (kind, used.get(kind, 0), limit(config.quota(kind))) for kind in QUOTA_KINDS
            ),
            active_tasks=await self._store.count_active_tasks(user),
            task_limit=limit(config.max_concurrent_tasks),
            chat_cooldown=0.0 if exempt else config.chat_cooldown,
            generation_cooldown=0.0 if exempt else config.generation_cooldown,
            resets_in=self._resets_in(),
        )

    async def usage_summary(self, user: str) -> str:
        """The /usage answer: use today against the limits, and when quotas reset."""
        return format_usage(await self.usage(user))

    # -- internals ------------------------------------------------------------------------------

    async def _start_cooldown(self, user: str, kind: str, seconds: float) -> None:
        if seconds > 0:
            left = await self._store.start_cooldown(user, kind, seconds)
            if left > 0:
                raise CooldownActive(left)

    def _resets_in(self) -> float:
        return _DAY - self._wall() % _DAY

    def _release_slot(self, user: str) -> None:
        left = self._pending.get(user, 0) - 1
        if left > 0:
            self._pending[user] = left
        else:
            self._pending.pop(user, None)


def quota_kind(provider: Provider | str) -> str:
    """The quota a provider's tasks count against: Midjourney ``imagine`` (actions too),
    Suno ``music``, Kling ``video``."""
    return _PROVIDER_KINDS[Provider(provider)]
