"""The Protocols the core needs from the outside world.

Platforms implement :class:`Surface`; ``bot.adapters`` maps the CometAPI SDK
onto :class:`ChatModel`; ``bot.store`` implements :class:`Store`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from bot.core.models import (
    ChannelSettings,
    ChatDelta,
    ChatMessage,
    ConversationKey,
    Turn,
    Usage,
)


class Clock(Protocol):
    """Injectable time, so pacing logic is tested without sleeping."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class Surface(Protocol):
    """Where one reply is shown: a chat, channel, thread or interaction.

    ``send``/``edit`` take Markdown; the surface renders it for its platform.
    They raise :class:`bot.core.errors.RetryLater` on a 429 and treat
    "message is not modified" as success.
    """

    @property
    def max_len(self) -> int:
        """The platform's limit for one message, in the units of :meth:`measure`."""
        ...

    def measure(self, text: str) -> int:
        """Length of ``text`` as the platform counts it after rendering."""
        ...

    async def send(self, text: str) -> str:
        """Post a new message; returns its id."""
        ...

    async def edit(self, message_id: str, text: str) -> None: ...

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

    async def reset(self, key: ConversationKey) -> None:
        """Start a fresh context; older turns stay stored."""
        ...
