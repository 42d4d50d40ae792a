"""The generation feature's stored rows: tasks and their buttons, as the store keeps them.

A :class:`Task` (with its :class:`Provider` and :class:`TaskStatus`) is written as a
:class:`NewTask` before the paid submit and changed only through a :class:`TaskUpdate`; a
finished task's buttons go in as :class:`ButtonSpec` and come back by token as
:class:`ButtonRef`. Only what the task store
keeps belongs here: values that merely pass through a port (what a provider answers, what a
platform shows) are in :mod:`bot.core.models`.

Stdlib-only frozen dataclasses owned by the core (the generation use cases and the
poller work on them); :mod:`bot.store` implements the queries that return them.

Times are Unix seconds (``float``) as given by the store's clock. JSON columns
come back as plain ``dict`` values; treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, Final

from bot.core.models import ConversationKey

__all__ = [
    "ACTIVE_STATUSES",
    "DEFAULT_DEADLINES",
    "TERMINAL_STATUSES",
    "UNSET",
    "ButtonRef",
    "ButtonSpec",
    "NewTask",
    "Provider",
    "Task",
    "TaskStatus",
    "TaskUpdate",
    "Unset",
]


class Provider(StrEnum):
    """Which CometAPI task family a task belongs to."""

    MIDJOURNEY = "mj"
    SUNO = "suno"
    KLING = "kling"


#: Seconds a submitted task may take before it expires, per provider: the defaults of the
#: ``[generation] *_deadline`` keys and of the generation and poller configs.
DEFAULT_DEADLINES: Final[Mapping[Provider, float]] = MappingProxyType(
    {Provider.MIDJOURNEY: 1800.0, Provider.SUNO: 900.0, Provider.KLING: 1800.0}
)


class TaskStatus(StrEnum):
    """The bot's own view of a task, normalised from each provider's spelling.

    ``PENDING`` is a row written before the (paid) submit call returned: after a
    crash it means "outcome unknown", never "submit again". ``WAITING`` is a task
    that needs the user (a Midjourney modal) and is not polled.
    """

    PENDING = "pending"
    SUBMITTED = "submitted"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the task will never change again (only its delivery is left)."""
        return self in TERMINAL_STATUSES


#: Statuses the poller may still poll; ``due_tasks`` and its partial index use exactly these.
ACTIVE_STATUSES: Final = (TaskStatus.PENDING, TaskStatus.SUBMITTED, TaskStatus.RUNNING)
#: Statuses after which only delivery (``mark_delivered``) is left.
TERMINAL_STATUSES: Final = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.EXPIRED, TaskStatus.CANCELLED}
)


class Unset(Enum):
    """Type of :data:`UNSET`, the "leave this column alone" marker of :class:`TaskUpdate`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class Task:
    """One generation task: a row before it is anything else (design §6).

    ``owner_id`` is the platform user id of the requester, qualified by platform
    by convention (e.g. ``"tg:123"``) so Telegram and Discord ids never collide.
    ``status_message_id`` is the platform message that shows progress and
    ``reply_to_id`` the user's message the result answers. ``progress`` is 0-100.
    """

    id: int
    provider: Provider
    kind: str
    owner_id: str
    conversation: ConversationKey
    status: TaskStatus
    request: dict[str, Any]
    created_at: float
    updated_at: float
    upstream_id: str | None = None
    parent_id: int | None = None
    status_message_id: str | None = None
    reply_to_id: str | None = None
    progress: int = 0
    deadline: float | None = None
    next_poll_at: float | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    delivered_at: float | None = None
    route: str | None = None  # see NewTask.route
    #: The process holding the task: its poller's lease, or, while ``pending``, the
    #: process whose submit is under way (``NewTask.submitter``).
    lease_owner: str | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task as the use cases write it, before the paid submit: the row starts ``pending`` and
    unpolled; what the submit returns (upstream id, deadline, first poll) and everything after
    arrive as :class:`TaskUpdate`\\ s. ``parent_id``: the task whose button this action is."""

    provider: Provider
    kind: str
    owner_id: str
    conversation: ConversationKey
    request: Mapping[str, Any] = field(default_factory=dict)
    parent_id: int | None = None
    reply_to_id: str | None = None
    #: Which part of the platform may post the result (a Discord guild, ``"dm"``), when
    #: the platform is split between processes; ``None``: whoever holds the platform.
    route: str | None = None
    #: The process making the submit: with several processes, a ``pending`` row is only
    #: failed as "interrupted" once that process is gone.
    submitter: str | None = None


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A change to one task: every field left :data:`UNSET` keeps its stored value.

    ``None`` is a real value (it clears ``next_poll_at``, ``error``, ...).
    ``updated_at`` is always set to the store's clock.
    """

    task_id: int
    status: TaskStatus | Unset = UNSET
    upstream_id: str | Unset | None = UNSET
    status_message_id: str | Unset | None = UNSET
    progress: int | Unset = UNSET
    deadline: float | Unset | None = UNSET
    next_poll_at: float | Unset | None = UNSET
    attempts: int | Unset = UNSET
    result: dict[str, Any] | Unset | None = UNSET
    error: str | Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    """A button as a finished task offers it (copied from the task's ``buttons`` list).

    ``kind`` is the caller's classification (``"upscale"``, ``"variation"``,
    ``"reroll"``, ``"zoom"``, ...); the store does not interpret it.
    """

    custom_id: str
    label: str = ""
    emoji: str = ""
    kind: str = ""


@dataclass(frozen=True, slots=True)
class ButtonRef:
    """A stored button: the platform button carries only ``mj:<token>``."""

    token: str
    task_id: int
    custom_id: str
    label: str
    emoji: str
    kind: str
    created_at: float
