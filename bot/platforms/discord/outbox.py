"""Discord as the task poller reaches it: :class:`bot.core.ports.Outbox` by conversation key.

Everything goes through the channel routes (``POST``/``PATCH /channels/{id}/messages``), never
an interaction token: a task outlives the 15 minutes a token lives, and a restart forgets
every interaction. Each call goes through :meth:`~bot.core.pacing.Pacer.call` in the lane
chat replies use (the channel), posts and final edits urgently, progress edits at edit
priority. discord.py sleeps through short 429s itself; a longer one becomes
:class:`~bot.core.errors.RetryLater`, which penalizes the channel's lane: a post (inside
:meth:`DiscordOutbox.paced`) and a final edit are retried after it, a progress edit is
dropped (a newer one follows). Texts are sent verbatim, pinging nobody.
The buttons a message carries, and where their clicks go: :mod:`bot.platforms.discord.buttons`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any, Final

import discord

from bot.core.errors import PlatformUnavailable, SurfaceError
from bot.core.models import (
    ConversationKey,
    MediaFile,
    MediaKind,
    MediaLimits,
    OutgoingMessage,
    StatusView,
)
from bot.core.pacing import DISCORD_CHANNEL, Pacer
from bot.platforms.common import PacedOutbox, discord_route
from bot.platforms.discord.buttons import button_view
from bot.platforms.discord.surface import FAILURES, MAX_MESSAGE_LEN, NO_PINGS, translate

__all__ = ["MEDIA_LIMITS", "DiscordOutbox"]

log = logging.getLogger(__name__)

MEDIA_LIMITS: Final = MediaLimits(
    photo_max_bytes=10 * 1024 * 1024, upload_max_bytes=10 * 1024 * 1024
)
"""Discord's upload limit for bots in an unboosted server (``[generation]`` may change it)."""
COVER: Final = "cover.jpg"
MAX_ATTACHMENTS: Final = 10


def clip(text: str, limit: int = MAX_MESSAGE_LEN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


class DiscordOutbox(PacedOutbox):
    """Posts and edits in Discord channels by conversation key (see the module docstring)."""

    def __init__(
        self,
        client: discord.Client,
        pacer: Pacer,
        limits: MediaLimits,
        *,
        shards: Sequence[int] = (0,),
    ) -> None:
        # This process posts the results of tasks started on its own shards.
        super().__init__(pacer, limits, routes=[discord_route(shard) for shard in shards])
        self._client = client

    def lane(self, key: ConversationKey) -> tuple[str, str]:
        return key.chat_id, DISCORD_CHANNEL  # the channel's lane, as its chat replies use

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
        view = button_view(message)
        if view is not None:
            kwargs["view"] = view
        if message.media is not None:
            kwargs["files"], kwargs["embeds"] = _files(message.media, self._limits)
        try:
            sent = await channel.send(clip(message.text) or None, **kwargs)
        except FAILURES as exc:
            raise _failure(exc) from exc
        return str(sent.id)

    async def post_pictures(
        self, key: ConversationKey, files: Sequence[MediaFile], *, reply_to: str | None
    ) -> None:
        """Attachments of one message (ten at most per message: more go in the next); a
        picture over Discord's upload limit is left out and said so in one line."""
        fits = [f for f in files if len(f.data) <= self._limits.upload_max_bytes]
        left_out = len(files) - len(fits)
        note = f"⚠️ {left_out} picture(s) too large to attach here." if left_out else None
        channel = self._client.get_partial_messageable(int(key.chat_id))
        kwargs: dict[str, Any] = {"allowed_mentions": NO_PINGS}
        if reply_to is not None:
            kwargs["reference"] = discord.MessageReference(
                message_id=int(reply_to), channel_id=channel.id, fail_if_not_exists=False
            )
            kwargs["mention_author"] = False
        for start in range(0, max(len(fits), 1), MAX_ATTACHMENTS):
            part = fits[start : start + MAX_ATTACHMENTS]
            uploads = [discord.File(io.BytesIO(f.data), filename=f.filename) for f in part]
            try:
                await channel.send(note if start == 0 else None, files=uploads, **kwargs)
            except FAILURES as exc:
                raise _failure(exc) from exc

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        embeds = [discord.Embed().set_image(url=view.preview_url)] if view.preview_url else []
        message = self._client.get_partial_messageable(int(key.chat_id)).get_partial_message(
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

        await self.show(key, edit, final=view.final)
