"""Reading Discord messages for the core: who is addressed, the text without the bot's mention,
image attachments as :class:`~bot.core.models.ImageInput`, text and PDF attachments as
:class:`~bot.core.models.DocumentText`, the conversation key."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Sequence

import discord

from bot.core.access.policy import Requester
from bot.core.chat.documents import DocumentKind, DocumentReader
from bot.core.chat.voice import VoiceNote
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey, DocumentText, ImageInput, Platform
from bot.platforms.common import discord_route
from bot.platforms.discord.surface import FAILURES

__all__ = [
    "addressed",
    "audio_attachment",
    "clean_text",
    "conversation_key",
    "download_images",
    "read_attachment",
    "read_attachments",
    "requester",
    "requester_of",
]

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES = 4

_MENTION = re.compile(r"<(@[!&]?|#)(\d+)>")


def conversation_key(channel_id: int | str) -> ConversationKey:
    """A DM, channel or thread is one conversation (threads have channel ids of their own)."""
    return ConversationKey(Platform.DISCORD, str(channel_id))


def route_of(guild: discord.Guild | None) -> str:
    """Which process posts a task's results here: the guild's shard's (DMs: shard 0's)."""
    return discord_route(guild.shard_id if guild is not None else 0)


def requester(user_id: int, channel: object, guild_id: int | None) -> Requester:
    """Who asks and where, for the access lists (a thread counts through its parent)."""
    parent = getattr(channel, "parent_id", None)
    return Requester(
        platform=Platform.DISCORD,
        user=str(user_id),
        chat=str(getattr(channel, "id", "")),
        guild=None if guild_id is None else str(guild_id),
        is_private=guild_id is None,
        parent=None if parent is None else str(parent),
    )


def requester_of(interaction: discord.Interaction) -> Requester:
    """Who sent an interaction (a command, a click, a form), and where."""
    return requester(interaction.user.id, interaction.channel, interaction.guild_id)


def addressed(message: discord.Message, bot_id: int) -> bool:
    """Whether a server message is for the bot: a mention of it (or of its role) or a reply
    to one of its messages."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    role = message.guild.self_role if message.guild else None
    if role is not None and role in message.role_mentions:
        return True
    ref = message.reference
    resolved = ref.resolved if ref is not None else None
    return isinstance(resolved, discord.Message) and resolved.author.id == bot_id


def clean_text(message: discord.Message, bot_id: int) -> str:
    """The text without the bot's own mention; other mentions become readable names."""
    users = {u.id: u.display_name for u in message.mentions}
    roles = {r.id: r.name for r in message.role_mentions}
    guild = message.guild
    self_role = guild.self_role.id if guild and guild.self_role else None

    def readable(match: re.Match[str]) -> str:
        kind, ident = match.group(1), int(match.group(2))
        if kind in ("@", "@!"):
            return "" if ident == bot_id else f"@{users.get(ident, 'someone')}"
        if kind == "@&":
            return "" if ident == self_role else f"@{roles.get(ident, 'role')}"
        channel = guild.get_channel_or_thread(ident) if guild else None
        return f"#{channel.name}" if channel is not None else "#channel"

    return re.sub(r"[ \t]{2,}", " ", _MENTION.sub(readable, message.content)).strip()


async def download_images(attachments: Sequence[discord.Attachment]) -> tuple[ImageInput, ...]:
    """Download image attachments for the model; anything else is refused with a clear
    sentence before anything is downloaded."""
    if not attachments:
        return ()
    if len(attachments) > MAX_IMAGES:
        raise UserFacingError(f"Please attach at most {MAX_IMAGES} images at a time.")
    kinds = [_image_type(a) for a in attachments]
    images: list[ImageInput] = []
    for attachment, kind in zip(attachments, kinds, strict=True):
        images.append(ImageInput(await read_attachment(attachment), kind))
    return tuple(images)


async def read_attachments(
    attachments: Sequence[discord.Attachment], reader: DocumentReader
) -> tuple[tuple[ImageInput, ...], tuple[DocumentText, ...]]:
    """A chat message's attachments: images for the model to look at, text files and PDFs to
    read. Every one is checked (type, size) before any is downloaded, so a refused file
    costs no download and no upstream call."""
    if len(attachments) > MAX_IMAGES:
        raise UserFacingError(f"Please attach at most {MAX_IMAGES} files at a time.")
    checked = []
    for attachment in attachments:
        mime = _mime_type(attachment)
        kind = reader.check(attachment.filename, mime, attachment.size)
        checked.append(
            (attachment, _image_type(attachment) if kind is DocumentKind.IMAGE else mime)
        )
    images: list[ImageInput] = []
    documents: list[DocumentText] = []
    for attachment, mime in checked:
        data = await read_attachment(attachment)
        if mime.startswith("image/"):
            images.append(ImageInput(data, mime))
        else:
            documents.append(await reader.read(attachment.filename, mime, data))
    return tuple(images), tuple(documents)


def _mime_type(attachment: discord.Attachment) -> str:
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if not kind or kind == "application/octet-stream":
        kind = mimetypes.guess_type(attachment.filename)[0] or kind
    return kind


def _image_type(attachment: discord.Attachment) -> str:
    kind = _mime_type(attachment)
    if not kind.startswith("image/"):
        raise UserFacingError(f"I can only read images, and {attachment.filename} is not one.")
    if attachment.size > MAX_IMAGE_BYTES:
        raise UserFacingError(
            f"{attachment.filename} is too large for me to read "
            f"({MAX_IMAGE_BYTES // (1024 * 1024)} MB at most)."
        )
    return kind


def audio_attachment(message: discord.Message) -> tuple[discord.Attachment, VoiceNote] | None:
    """A voice message's recording (flag 8192, one ``audio/ogg`` attachment) or the message's
    one audio attachment, with what the core checks before it is downloaded."""
    audio = [a for a in message.attachments if a.is_voice_message() or _is_audio(a)]
    if len(audio) != 1 or len(message.attachments) != 1:
        return None
    [attachment] = audio
    mime = (attachment.content_type or "").split(";")[0].strip() or None
    note = VoiceNote(attachment.duration, attachment.size, attachment.filename, mime)
    return attachment, note


def _is_audio(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if not kind or kind == "application/octet-stream":
        kind = mimetypes.guess_type(attachment.filename)[0] or ""
    return kind.startswith("audio/")


async def read_attachment(attachment: discord.Attachment) -> bytes:
    """An attachment's bytes; a failed download is one sentence."""
    try:
        return await attachment.read()
    except FAILURES as exc:
        log.warning("discord: downloading attachment %s failed: %s", attachment.id, exc)
        raise UserFacingError(
            f"I could not download {attachment.filename}; please try again."
        ) from exc
