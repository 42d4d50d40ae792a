"""The ports of generation (design §6): the task store, CometAPI's task families, the
platforms' outboxes, the handoff between processes and admission (quotas). Re-exported by
:mod:`bot.core.ports`, with the others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Protocol, TypeVar

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
    ConversationKey,
    Downloaded,
    MediaLimits,
    OutgoingMessage,
    StatusView,
    Submitted,
    TaskRef,
    TaskSnapshot,
)

__all__ = ["Admission", "Admitted", "Handoff", "Outbox", "Refunds", "TaskBackend", "TaskStore"]


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
