"""Value objects that cross a port, shared by the features and the layers around the core.

What a platform hands the core (:class:`ConversationKey`, :class:`Incoming`), a chat's stored
turns and settings, what the chat model streams back (:class:`ChatDelta`, :class:`Usage`),
what the core asks a platform to show (:class:`OutgoingMessage`, :class:`StatusView`,
:class:`MediaFile`, :class:`ButtonView`) and what the task backend answers
(:class:`Submitted`, :class:`TaskSnapshot`, :class:`Downloaded`). The rows the generation
feature keeps (a task, its buttons) are in :mod:`bot.core.generation.records`.

Platforms build these from their own update types; nothing platform-specific
(a ``telegram.Update``, a ``discord.Message``) ever enters ``bot.core``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType


class Platform(StrEnum):
    TELEGRAM = "tg"
    DISCORD = "dc"
    CONSOLE = "console"


UserId = NewType("UserId", str)
"""A platform-qualified user id, as the store and the access lists know users: ``"tg:123"``,
``"dc:456"``, ``"console:operator"``. Build one with :func:`qualify`."""


def qualify(platform: Platform, user: int | str) -> UserId:
    """``"tg:123"`` for Telegram user 123; an already qualified id is returned as is."""
    prefix = f"{platform.value}:"
    raw = str(user)
    return UserId(raw if raw.startswith(prefix) else prefix + raw)


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """One conversation: a chat, a channel, a DM, a thread or a forum topic.

    ``thread`` is set for Telegram forum topics; Discord threads are channels of
    their own and so need no thread part.
    """

    platform: Platform
    chat_id: str
    thread: str | None = None

    def __str__(self) -> str:
        base = f"{self.platform.value}:{self.chat_id}"
        return base if self.thread is None else f"{base}:{self.thread}"

    @classmethod
    def parse(cls, raw: str) -> ConversationKey:
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"not a conversation key: {raw!r}")
        thread = parts[2] if len(parts) == 3 else None
        return cls(Platform(parts[0]), parts[1], thread)


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class ImageInput:
    """An image a user attached, already downloaded (platform URLs expire or carry tokens)."""

    data: bytes
    mime_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class DocumentText:
    """A file a user sent with a question, read as text (see ``bot.core.chat.documents``).
    ``part`` says which part was read when it is not all of it (``"pages 1-30 of 57"``)."""

    name: str
    text: str
    part: str | None = None


@dataclass(frozen=True, slots=True)
class PdfPages:
    """What a PDF reader found: the text of the pages read, and how many pages there are."""

    text: str
    pages_read: int
    pages_total: int


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored message of a conversation, as the store returns it."""

    role: Role
    content: str
    speaker: str | None = None
    tokens: int = 0
    created_at: float = 0.0
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Per-conversation choices; ``None`` means the configured default."""

    model: str | None = None
    persona: str | None = None
    voice: bool = False
    """Answers are also spoken (``/voice on``)."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the context sent to the model (OpenAI chat format)."""

    role: Role
    content: str
    images: tuple[ImageInput, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One piece of a streamed answer. ``usage`` arrives once, near the end."""

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message addressed to the bot, translated by a platform adapter."""

    key: ConversationKey
    user_id: UserId
    user_name: str
    text: str
    images: tuple[ImageInput, ...] = field(default=())
    is_group: bool = False
    documents: tuple[DocumentText, ...] = ()
    """Files sent with the question, read: their text goes upstream with this turn only."""


@dataclass(frozen=True, slots=True)
class ReplyControls:
    """What a streaming reply's messages carry under the text while it streams: a ⏹ button
    naming the running answer (``stop``, a short random id) in the platform's markup."""

    stop: str


# -- generation: what crosses between the core, the task backend and the platforms ---------------


class MediaKind(StrEnum):
    """How a platform should show a file."""

    PHOTO = "photo"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded result to upload (URLs expire, so the platform gets the bytes)."""

    kind: MediaKind
    data: bytes
    filename: str
    mime_type: str = "application/octet-stream"
    title: str | None = None
    performer: str | None = None
    duration: float | None = None
    thumbnail: bytes | None = None


@dataclass(frozen=True, slots=True)
class ButtonView:
    """A button under a result; the platform carries only ``token`` (see ``callback_data``)."""

    token: str
    label: str = ""
    emoji: str = ""

    @property
    def text(self) -> str:
        """What the button shows: emoji and label as Midjourney gives them."""
        return " ".join(part for part in (self.emoji, self.label) if part) or "•"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message an :class:`~bot.core.ports.Outbox` posts.

    ``text`` is plain text, shown verbatim (a caption when there is ``media``).
    ``ask`` asks the user to answer by replying (Telegram: ForceReply).
    """

    text: str
    media: MediaFile | None = None
    buttons: tuple[tuple[ButtonView, ...], ...] = ()
    ask: bool = False


@dataclass(frozen=True, slots=True)
class StatusView:
    """What a task's status message shows: plain text, maybe a preview image.

    ``final`` views (done, failed) must arrive; intermediate ones may be dropped.
    """

    text: str
    preview_url: str | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """What a platform accepts: a photo up to ``photo_max_bytes``, any upload up to
    ``upload_max_bytes`` (bigger results are sent as a link)."""

    photo_max_bytes: int
    upload_max_bytes: int


class UpstreamState(StrEnum):
    """A provider's task status, normalised by the task backend."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Submitted:
    """An accepted submit. ``waiting``: the task needs more input first (a Midjourney modal)."""

    upstream_id: str
    waiting: bool = False


@dataclass(frozen=True, slots=True)
class TaskRef:
    """What polling needs to name one upstream task."""

    upstream_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """One poll's view of an upstream task.

    ``result`` is JSON-ready and stored in the task row (its shape is the backend's and the
    delivery's contract, see ``bot.core.generation.delivery``); ``error`` is a sentence for the
    user.
    """

    upstream_id: str
    state: UpstreamState
    progress: int | None = None
    """0-100, or None when the provider reports none (Kling)."""
    preview_url: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Downloaded:
    data: bytes
    content_type: str = ""
