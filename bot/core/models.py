"""Value objects that cross the boundary between platforms, core and store.

Platforms build these from their own update types; nothing platform-specific
(a ``telegram.Update``, a ``discord.Message``) ever enters ``bot.core``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Platform(StrEnum):
    TELEGRAM = "tg"
    DISCORD = "dc"
    CONSOLE = "console"


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


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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
    user_id: str
    user_name: str
    text: str
    images: tuple[ImageInput, ...] = field(default=())
    is_group: bool = False
