"""Discord as the task poller reaches it: :class:`bot.core.ports.Outbox` by conversation key,
and the persistent buttons its messages carry.

Everything goes through the channel routes (``POST``/``PATCH /channels/{id}/messages``), never
an interaction token: a task outlives the 15 minutes a token lives, and a restart forgets
every interaction. Each call goes through :meth:`~bot.core.pacing.Pacer.call` in the lane
chat replies use (the channel), posts and final edits urgently, progress edits at edit
priority. discord.py sleeps through short 429s itself; a longer one becomes
:class:`~bot.core.errors.RetryLater`, which penalizes the channel's lane: a post (inside
:meth:`DiscordOutbox.paced`) and a final edit are retried after it, a progress edit is
dropped (a newer one follows). Texts are sent verbatim, pinging nobody.

Buttons: a result button carries only ``mj:<token>`` (:class:`ResultButton`), a question
only ``mjq:answer`` (:class:`AnswerButton`, which opens a form). Both are
:class:`discord.ui.DynamicItem` classes: :func:`bind` registers them on a client at start,
so a click on a message posted before a restart still reaches the handler.
"""

from __future__ import annotations

import io
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

import discord

from bot.core.errors import PlatformUnavailable, SurfaceError
from bot.core.models import (
    ButtonView,
    ConversationKey,
    MediaFile,
    MediaKind,
    MediaLimits,
    OutgoingMessage,
    StatusView,
)
from bot.core.pacing import DISCORD_CHANNEL, Pacer, Priority
from bot.platforms.discord.surface import FAILURES, MAX_MESSAGE_LEN, NO_PINGS, translate

__all__ = [
    "ANSWER_ID",
    "BUTTON_PREFIX",
    "MEDIA_LIMITS",
    "AnswerButton",
    "ButtonHandler",
    "DiscordOutbox",
    "ResultButton",
    "bind",
    "button_grid",
]

log = logging.getLogger(__name__)

BUTTON_PREFIX: Final = "mj:"
"""``custom_id`` of a result button: ``mj:<token>`` (well under Discord's 100 characters)."""
ANSWER_ID: Final = "mjq:answer"
"""``custom_id`` of the button under a question; the question is the message carrying it."""
MEDIA_LIMITS: Final = MediaLimits(
    photo_max_bytes=10 * 1024 * 1024, upload_max_bytes=10 * 1024 * 1024
)
"""Discord's upload limit for bots in an unboosted server (``[generation]`` may change it)."""
ATTEMPTS: Final = 5
MAX_ROWS: Final = 5
MAX_ROW: Final = 5
MAX_LABEL: Final = 80
COVER: Final = "cover.jpg"


class ButtonHandler(Protocol):
    """Where clicks go (``bot.platforms.discord.generation``)."""

    async def click(self, interaction: discord.Interaction, token: str) -> None: ...

    async def ask(self, interaction: discord.Interaction) -> None: ...


_handlers: weakref.WeakKeyDictionary[discord.Client, ButtonHandler] = weakref.WeakKeyDictionary()


def bind(client: discord.Client, handler: ButtonHandler) -> None:
    """Send ``client``'s button clicks to ``handler``, for new and old messages alike."""
    _handlers[client] = handler
    client.add_dynamic_items(ResultButton, AnswerButton)


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(BUTTON_PREFIX) + r"(?P<token>[A-Za-z0-9_-]{1,64})",
):
    """A Midjourney result button: ``mj:<token>``; the token names the stored button."""

    def __init__(self, token: str, label: str = "•", *, row: int | None = None) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=_label(label),
            custom_id=BUTTON_PREFIX + token,
            style=discord.ButtonStyle.secondary,
        )
        super().__init__(button, row=row)
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        return cls(match["token"], getattr(item, "label", None) or "•")

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = _handlers.get(interaction.client)
        if handler is not None:
            await handler.click(interaction, self.token)


class AnswerButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.escape(ANSWER_ID)
):
    """The button under a question (Custom Zoom): it opens a form for the answer."""

    def __init__(self) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label="Answer", emoji="✏️", custom_id=ANSWER_ID, style=discord.ButtonStyle.primary
        )
        super().__init__(button)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AnswerButton:
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        handler = _handlers.get(interaction.client)
        if handler is not None:
            await handler.ask(interaction)


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def clip(text: str, limit: int = MAX_MESSAGE_LEN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def button_grid(
    rows: tuple[tuple[ButtonView, ...], ...],
) -> list[list[ButtonView]]:
    """The core's rows as Discord allows them: at most 5 rows of 5 (re-flowed when the
    core's rows do not fit, and cut at 25 buttons)."""
    if len(rows) <= MAX_ROWS and all(len(row) <= MAX_ROW for row in rows):
        return [list(row) for row in rows if row]
    flat = [b for row in rows for b in row][: MAX_ROWS * MAX_ROW]
    return [flat[i : i + MAX_ROW] for i in range(0, len(flat), MAX_ROW)]


def _view(message: OutgoingMessage) -> discord.ui.View | None:
    if message.ask:
        view = discord.ui.View(timeout=None)
        view.add_item(AnswerButton())
        return view
    if not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for index, row in enumerate(button_grid(message.buttons)):
        for button in row:
            view.add_item(ResultButton(button.token, button.text, row=index))
    return view


def _files(media: MediaFile, limits: MediaLimits) -> tuple[list[discord.File], list[discord.Embed]]:
    files = [discord.File(io.BytesIO(media.data), filename=media.filename)]
    embeds: list[discord.Embed] = []
    if media.kind is MediaKind.AUDIO:
        embed = discord.Embed(title=clip(media.title or media.filename, 256))
        if media.performer:
            embed.set_author(name=clip(media.performer, 256))
        cover = media.thumbnail
        if cover and len(media.data) + len(cover) <= limits.upload_max_bytes:
            files.append(discord.File(io.BytesIO(cover), filename=COVER))
            embed.set_thumbnail(url=f"attachment://{COVER}")
        embeds.append(embed)
    return files, embeds


def _failure(exc: BaseException, *, editing: bool = False) -> SurfaceError:
    """:func:`translate`, with transient failures (5xx, network) marked as such."""
    if isinstance(exc, discord.HTTPException) and exc.status >= 500:
        return PlatformUnavailable(f"Discord: HTTP {exc.status}")
    if not isinstance(exc, discord.DiscordException):  # aiohttp.ClientError, OSError, timeouts
        return PlatformUnavailable(f"Discord: {type(exc).__name__}: {exc}")
    return translate(exc, editing=editing)


T = TypeVar("T")


class DiscordOutbox:
    """Posts and edits in Discord channels by conversation key (see the module docstring)."""

    def __init__(self, client: discord.Client, pacer: Pacer, limits: MediaLimits) -> None:
        self._client = client
        self._pacer = pacer
        self._limits = limits

    @property
    def limits(self) -> MediaLimits:
        return self._limits

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        return await self._pacer.call(key.chat_id, DISCORD_CHANNEL, call, attempts=attempts)

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        channel = self._client.get_partial_messageable(int(key.chat_id))
        kwargs: dict[str, Any] = {"allowed_mentions": NO_PINGS}
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=int(reply_to), channel_id=channel.id, fail_if_not_exists=False
            )
            kwargs["mention_author"] = False
        view = _view(message)
        if view is not None:
            kwargs["view"] = view
        if message.media is not None:
            kwargs["files"], kwargs["embeds"] = _files(message.media, self._limits)
        try:
            sent = await channel.send(clip(message.text) or None, **kwargs)
        except FAILURES as exc:
            raise _failure(exc) from exc
        return str(sent.id)

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        lane = key.chat_id
        embeds = [discord.Embed().set_image(url=view.preview_url)] if view.preview_url else []
        message = self._client.get_partial_messageable(int(lane)).get_partial_message(
            int(message_id)
        )

        async def edit() -> None:
            try:
                # view=None: a question's Answer button goes once its task runs (status
                # messages carry no other buttons; results are new messages).
                await message.edit(
                    content=clip(view.text), embeds=embeds, view=None, allowed_mentions=NO_PINGS
                )
            except FAILURES as exc:
                raise _failure(exc, editing=True) from exc  # RetryLater, MessageGone included

        await self._pacer.call(
            lane,
            DISCORD_CHANNEL,
            edit,
            priority=Priority.URGENT if view.final else Priority.EDIT,
            attempts=ATTEMPTS if view.final else 1,
            droppable=not view.final,  # an intermediate view is not worth waiting out a penalty for
        )
