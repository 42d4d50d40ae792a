"""The Protocols the core needs from the outside world.

Platforms implement :class:`Surface` (chat replies) and :class:`Outbox` (generation status
and results); ``bot.adapters.chat_model`` maps the CometAPI SDK onto :class:`ChatModel` and
``bot.adapters.task_backend`` onto :class:`TaskBackend`; ``bot.store`` implements the stores.
The ports of pictures, voice and documents are in :mod:`bot.core.media_ports`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.core.generation.records import (
    ButtonRef,
    ButtonSpec,
    NewTask,
    Provider,
    Task,
    TaskUpdate,
)
from bot.core.generation.requests import GenerationRequest
from bot.core.models import (
    ChannelSettings,
    ChatDelta,
    ChatMessage,
    ConversationKey,
    Downloaded,
    MediaLimits,
    OutgoingMessage,
    Platform,
    ReplyControls,
    StatusView,
    Submitted,
    TaskRef,
    TaskSnapshot,
    Turn,
    Usage,
)

if TYPE_CHECKING:  # roles imports this module
    from bot.core.roles import ProcessInfo


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


# -- generation -------------------------------------------------------------------------------


class TaskStore(Protocol):
    """The part of the store the generation use cases and the task poller use."""

    async def create_task(self, task: NewTask) -> int:
        """Write ``task`` as a ``pending`` row; its id."""
        ...

    async def get_task(self, task_id: int) -> Task | None: ...

    async def update_task(self, update: TaskUpdate) -> bool: ...

    async def update_tasks(self, updates: Iterable[TaskUpdate], *, release: bool = False) -> int:
        """Many changes in one transaction (one write per poller cycle); ``release`` also
        ends the leases of the changed tasks (the poller's write after a round)."""
        ...

    async def claim_due_tasks(
        self,
        owner: str,
        *,
        due_before: float,
        lease: float,
        limit: int,
        routes: Collection[str] | None = None,
        grace: float = 0.0,
    ) -> list[Task]:
        """Claim pollable tasks due by ``due_before`` that no live lease holds, for
        ``lease`` seconds, soonest first: no other process polls them meanwhile. With
        ``routes`` (the destinations this process posts to), other processes' tasks are
        claimed only once ``grace`` seconds overdue."""
        ...

    async def release_tasks(self, owner: str, task_ids: Sequence[int]) -> int:
        """End ``owner``'s leases on tasks it claimed but did not poll."""
        ...

    async def release_leases(self, owner: str | None) -> int:
        """End all of ``owner``'s leases (``None``: everyone's)."""
        ...

    async def claim_part(self, task_id: int, part: str, owner: str) -> bool:
        """The right to post one part of a result; False once anyone has taken it."""
        ...

    async def part_posted(self, task_id: int, part: str, message_id: str) -> None: ...

    async def release_part(self, task_id: int, part: str) -> None:
        """The platform refused the part (nothing went out): it may be claimed again."""
        ...

    async def due_tasks(self, now: float | None = None, limit: int = 100) -> list[Task]: ...

    async def next_due_at(
        self, routes: Collection[str] | None = None, grace: float = 0.0
    ) -> float | None:
        """When to look for due tasks next: the earliest ``next_poll_at``, a leased task's
        lease end, another process's chat's task ``grace`` later (``routes`` as for
        :meth:`claim_due_tasks`)."""
        ...

    async def undelivered_tasks(self, limit: int = 100) -> list[Task]: ...

    async def pending_tasks(self, *, created_before: float, limit: int = 100) -> list[Task]: ...

    async def waiting_task(self, owner_id: str, status_message_id: str) -> Task | None: ...

    async def mark_delivered(self, task_id: int, *, at: float | None = None) -> bool:
        """Record delivery once; True only for the call that did it."""
        ...

    async def add_buttons(self, task_id: int, buttons: Sequence[ButtonSpec]) -> list[str]:
        """Tokens for the buttons, in order; idempotent per (task, custom_id)."""
        ...

    async def get_button(self, token: str) -> ButtonRef | None: ...


class TaskBackend(Protocol):
    """CometAPI's task families as the core sees them (``bot.adapters.task_backend``).

    Raises only core errors: :class:`~bot.core.errors.GenerationError` subclasses from
    :meth:`submit` (``SubmitUncertain`` when a paid submit may have gone through), and
    :class:`~bot.core.errors.UpstreamError` from :meth:`poll` and :meth:`download`.
    """

    def batch_limit(self, provider: Provider) -> int:
        """How many tasks one :meth:`poll` request may carry (1: one request per task)."""
        ...

    async def submit(self, request: GenerationRequest) -> Submitted:
        """One paid submit, never retried after an unclear outcome."""
        ...

    async def poll(self, provider: Provider, refs: Sequence[TaskRef]) -> list[TaskSnapshot]:
        """The current state of up to :meth:`batch_limit` tasks in one request; tasks the
        provider does not know are missing from the answer."""
        ...

    async def download(self, url: str, *, max_bytes: int) -> Downloaded:
        """A result's bytes; :class:`~bot.core.errors.MediaTooLarge` past ``max_bytes``."""
        ...


T = TypeVar("T")


class Outbox(Protocol):
    """A platform as the task poller reaches it: by conversation key alone, so tasks outlive
    the handler that started them (and the process: after a restart the poller still
    finds the chat).

    Texts are plain and shown verbatim. Pacing uses the platform's shared pacer (the one
    chat replies use), through :meth:`~bot.core.pacing.Pacer.call`. Posting is two calls so
    that a stop never cuts a post in half: :meth:`paced` waits for the chat's slot (safe to
    cancel), then runs the caller's work at once: a :meth:`post`, and the record of its
    message id before anything else can interrupt it (see
    :func:`bot.core.generation.progress.post_paced` and the deliverer's parts).
    Errors: :class:`~bot.core.errors.RetryLater` (the platform said 429; :meth:`paced` turns
    it into a penalty for the chat and a retry), :class:`~bot.core.errors.MessageGone` (edit
    target deleted), :class:`~bot.core.errors.PlatformUnavailable` (transient, or still rate
    limited after every attempt: try again later) and :class:`~bot.core.errors.SurfaceError`
    (permanent: the chat is gone, the bot blocked...).
    """

    @property
    def limits(self) -> MediaLimits: ...

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        """Run ``call`` in the chat's next urgent slot; after a
        :class:`~bot.core.errors.RetryLater` it raises, wait out the penalty and run it
        again, ``attempts`` times in all (then :class:`~bot.core.errors.PlatformUnavailable`)."""
        ...

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        """Post a message now, inside :meth:`paced` (text, or media with ``text`` as caption,
        with buttons, or a question answered by reply); returns its id. Takes no slot and
        retries nothing: a 429 is raised as :class:`~bot.core.errors.RetryLater`."""
        ...

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        """Show ``view`` in a status message, pacing itself. An intermediate view is
        dropped when the chat is rate limited; a ``final`` one is retried after 429s."""
        ...

    def routes(self) -> Collection[str]:
        """The task routes (:attr:`~bot.core.generation.records.NewTask.route`) this
        process posts to on this platform: a Discord process its shards' only."""
        ...


class Handoff(Protocol):
    """Tells the other processes that a finished task waits for its destination's owner
    (PostgreSQL's NOTIFY); one process alone needs nothing of it."""

    async def task_ready(self, task_id: int) -> None: ...


class Admitted(Protocol):
    """A generation let through by :class:`Admission` (e.g. a quota reservation)."""

    def recorded(self) -> None:
        """The task row is written."""
        ...

    async def refund(self) -> bool:
        """The generation definitely failed before it cost anything; give it back."""
        ...


class Refunds(Protocol):
    """Gives a generation back to its owner's quota when its task ended without a result."""

    async def refund_task(self, task: Task) -> None: ...


class Admission(Protocol):
    """The one place a generation is allowed or refused (quotas, cooldowns, caps).

    Raises a :class:`~bot.core.errors.UserFacingError` to refuse. ``kind`` is
    ``"imagine"`` (every Midjourney submit, actions included), ``"music"``, ``"video"`` or
    ``"images"`` (``/image``).
    """

    async def admit_generation(self, user: str, kind: str, *, amount: int = 1) -> Admitted: ...
