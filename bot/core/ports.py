"""The Protocols the core needs from the outside world.

Platforms implement :class:`Surface` (chat replies) and :class:`Outbox` (generation status
and results); ``bot.adapters.chat_model`` maps the CometAPI SDK onto :class:`ChatModel` and
``bot.adapters.task_backend`` onto :class:`TaskBackend`; ``bot.store`` implements the stores.
The ports of pictures, voice and documents are in :mod:`bot.core.media_ports`; those of
generation in :mod:`bot.core.generation_ports` (re-exported here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Protocol

# Generation's ports live in their own module; every port is importable from here.
from bot.core.generation_ports import (
    Admission,
    Admitted,
    Handoff,
    Outbox,
    Refunds,
    TaskBackend,
    TaskStore,
)
from bot.core.models import (
    ChannelSettings,
    ChatDelta,
    ChatMessage,
    ConversationKey,
    Platform,
    ReplyControls,
    Turn,
    Usage,
)

if TYPE_CHECKING:  # roles imports this module
    from bot.core.roles import ProcessInfo

__all__ = [
    "Admission",
    "Admitted",
    "ChatModel",
    "ChatStore",
    "Clock",
    "Handoff",
    "LimitsStore",
    "Outbox",
    "ProcessRegistry",
    "Refunds",
    "StatsStore",
    "Surface",
    "TaskBackend",
    "TaskStore",
    "Telemetry",
]


class Clock(Protocol):
    """Injectable time, so pacing logic is tested without sleeping."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait until ``event`` is set or ``seconds`` (> 0) of this clock pass; whether it is
        set. Use :func:`bot.core.clock.wait_event`, which handles the trivial cases first."""
        ...


class Surface(Protocol):
    """Where one reply is shown: a chat, channel, thread or interaction.

    ``send``/``edit`` take Markdown; the surface renders it for its platform, with
    ``controls`` (a streaming reply's ⏹ button) as the platform's markup under the text, or
    none (an edit without them removes them). They raise
    :class:`bot.core.errors.RetryLater` on a 429 and treat "message is not modified" as
    success.
    """

    @property
    def max_len(self) -> int:
        """The platform's limit for one message, in the units of :meth:`measure`."""
        ...

    def measure(self, text: str) -> int:
        """Length of ``text`` as the platform counts it after rendering."""
        ...

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        """Post a new message; returns its id."""
        ...

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None: ...

    async def typing(self) -> None: ...


class ChatModel(Protocol):
    def stream(
        self, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[ChatDelta, None]:
        """Stream an answer; raises :class:`bot.core.errors.ModelError` subclasses.

        The caller closes the generator (``contextlib.aclosing``) so an abandoned
        answer closes its upstream connection at once."""
        ...

    async def list_models(self) -> list[str]: ...


class ChatStore(Protocol):
    """The part of the store a chat turn uses."""

    async def recent_turns(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        """Newest ``limit`` turns after the last reset, oldest first."""
        ...

    async def add_turn(
        self,
        key: ConversationKey,
        turn: Turn,
        *,
        user_id: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
    ) -> int: ...

    async def get_settings(self, key: ConversationKey) -> ChannelSettings: ...

    async def set_model(self, key: ConversationKey, model: str | None) -> None: ...

    async def set_persona(self, key: ConversationKey, persona: str | None) -> None: ...

    async def set_voice(self, key: ConversationKey, on: bool) -> None:
        """``/voice on|off``: whether answers in ``key`` are also spoken."""
        ...

    async def reset(self, key: ConversationKey) -> None:
        """Start a fresh context; older turns stay stored."""
        ...

    async def move_chat(self, platform: Platform, old_chat_id: str, new_chat_id: str) -> int:
        """The chat of ``old_chat_id`` now has ``new_chat_id``: move its conversations (turns,
        settings, threads) and its tasks there in one transaction; how many rows moved
        (0 when there was nothing left to move)."""
        ...


class LimitsStore(Protocol):
    """The part of the store that per-user quotas and the concurrent-task cap use.

    Counters are per user per UTC day; ``kind`` is a usage label (``"imagine"``,
    ``"prompt_tokens"``, ...). ``user_id`` is platform-qualified (``"tg:123"``).
    """

    async def usage_today(self, user_id: str, *, day: str | None = None) -> dict[str, int]: ...

    async def record_usage(
        self, user_id: str, kind: str, amount: int = 1, *, at: float | None = None
    ) -> None: ...

    async def reserve_quota(self, user_id: str, kind: str, *, limit: int, amount: int = 1) -> bool:
        """Count ``amount`` now if today's total stays within ``limit`` (atomically)."""
        ...

    async def refund_quota(
        self, user_id: str, kind: str, *, amount: int = 1, at: float | None = None
    ) -> None: ...

    async def count_active_tasks(self, owner_id: str) -> int: ...

    async def start_cooldown(self, user_id: str, kind: str, seconds: float) -> float:
        """Start the user's ``kind`` cooldown unless one runs, atomically (one statement, so
        of concurrent starts from any process exactly one passes): 0.0 when it started,
        else the seconds left. On the store's wall clock, so it survives a restart."""
        ...

    async def clear_cooldown(self, user_id: str, kind: str) -> None:
        """End the user's ``kind`` cooldown (its request was refused after all)."""
        ...


class ProcessRegistry(Protocol):
    """The live processes on one database and their roles (design §9): each renews its own
    row while it runs; a row not renewed for a while belongs to a process that is gone."""

    async def register_process(self, name: str, *, started_at: float, roles: Sequence[str]) -> None:
        """Insert or renew ``name``'s row: seen now (the store's clock), with ``roles``."""
        ...

    async def live_processes(self, stale_after: float) -> list[ProcessInfo]:
        """Processes seen within the last ``stale_after`` seconds, by name."""
        ...

    async def forget_process(self, name: str) -> None:
        """Remove ``name``'s row (a clean stop)."""
        ...


class StatsStore(Protocol):
    """The store queries behind /stats and the health check."""

    async def usage_totals(self, day: str | None = None) -> dict[str, int]:
        """Every user's counters of a day (default today, UTC) summed: kind -> amount."""
        ...

    async def count_users(self, day: str | None = None) -> int:
        """Users with any usage on a day (default today, UTC)."""
        ...

    async def count_all_users(self) -> int: ...

    async def task_counts(self) -> dict[tuple[str, str], int]:
        """Tasks by ``(provider, status)``, all of them."""
        ...

    async def oldest_active_task_at(self) -> float | None:
        """When the oldest unfinished task was created (Unix seconds), if any."""
        ...

    async def live_processes(self, stale_after: float) -> list[ProcessInfo]:
        """The processes serving this database (see :class:`ProcessRegistry`)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        ...


class Telemetry(Protocol):
    """Counters the core reports to (Prometheus in production, nothing in tests).

    Label values must be few and fixed: platform values, outcome words, provider and
    status names, error class names, HTTP statuses; never user ids or prompts.
    """

    def reply_done(self, platform: str, outcome: str) -> None:
        """A chat reply ended; ``outcome``: ``ok``, ``error``, ``cut``, ``stopped`` (someone
        pressed ⏹ or sent /stop) or ``cancelled``."""
        ...

    def tokens(self, prompt: int, completion: int, *, model: str = "") -> None: ...

    def upstream_error(self, kind: str, status: int | None = None) -> None:
        """CometAPI failed: ``kind`` is the error class name, ``status`` the HTTP status."""
        ...

    def platform_rate_limited(self, platform: str) -> None:
        """A platform answered 429 / RetryAfter."""
        ...

    def poll_cycle(self, seconds: float, requests: int) -> None:
        """One poller cycle took ``seconds`` and made ``requests`` upstream calls."""
        ...

    def task_state(self, provider: str, status: str) -> None:
        """A task moved to ``status`` (counted per transition)."""
        ...

    def refused(self, reason: str) -> None:
        """A request was refused by access control or a limit (``reason``: a short word)."""
        ...

    def result_unfetched(self, provider: str, reason: str) -> None:
        """A finished task's result could not be downloaded and was given up (``reason``:
        ``not_found``, ``refused``, ``timeout`` or ``error``)."""
        ...
