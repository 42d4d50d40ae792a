"""Telegram's generation commands: /imagine, /music, /video, /describe, /blend, the result
buttons (``mj:<token>``) and the answers to ForceReply questions (Custom Zoom).

Images come from the command's own photo (a photo whose caption is the command), from the
photo the command replies to, or, for /blend, from an album captioned ``/blend``.
Everything else is the core's: :class:`~bot.core.generation.service.GenerationService` checks,
stores, submits and (through the poller) reports back.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from telegram import Message, PhotoSize, Update
from telegram.constants import FileSizeLimit
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core.errors import UserFacingError
from bot.core.generation.presses import ALREADY
from bot.core.generation.prompts import parse_music, parse_video
from bot.core.generation.service import GenerationService, Origin
from bot.core.models import ConversationKey, ImageInput, Platform, qualify
from bot.platforms.common import BUTTON_PREFIX, TELEGRAM_ROUTE
from bot.platforms.telegram.albums import Album, AlbumFilter, Albums
from bot.platforms.telegram.messages import Wrapper, conversation_key, download_file
from bot.platforms.telegram.outbox import TelegramOutbox

__all__ = ["COMMANDS", "HELP", "TelegramGeneration"]

log = logging.getLogger(__name__)

COMMANDS: Final = (
    ("imagine", "Midjourney: an image from a prompt (attach a photo as reference)"),
    ("music", "Suno: two songs from a description (--instrumental, --style, --title)"),
    ("video", "Kling: a video from a prompt or a photo (--duration 5|10, --aspect)"),
    ("describe", "Midjourney: four prompts for a photo"),
    ("blend", "Midjourney: blend 2-5 photos (send an album captioned /blend)"),
)
HELP: Final = (
    "\n\nGenerate:\n"
    "/imagine PROMPT — Midjourney (--ar 16:9 and other parameters pass through; attach a "
    "photo or reply to one to use it as a reference)\n"
    "/music DESCRIPTION — Suno (--instrumental; or --style STYLE --title TITLE with lyrics "
    "on the next lines)\n"
    "/video PROMPT — Kling (--duration 5|10, --aspect 16:9|9:16|1:1; attach a photo to "
    "animate it)\n"
    "/describe — with a photo: four prompts to imagine\n"
    "/blend — caption an album of 2-5 photos with /blend (portrait|square|landscape)"
)
_CAPTION_COMMAND = re.compile(r"^/(imagine|describe|blend|video)(@\w+)?(\s|$)", re.IGNORECASE)
_COMMAND_PREFIX = re.compile(r"^/\w+(@\w+)?[ \t]?")
_URL = re.compile(r"https?://\S+")
_DIMENSIONS: Final = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}


def origin_of(message: Message, *, reply_to: Message | None = None) -> Origin:
    user = message.from_user
    return Origin(
        key=conversation_key(message),
        user_id=qualify(Platform.TELEGRAM, user.id if user else "?"),
        reply_to=str((reply_to or message).message_id),
        route=TELEGRAM_ROUTE,
    )


def command_text(message: Message) -> str:
    """The text after ``/command[@bot]`` (newlines kept: lyrics need them)."""
    return _COMMAND_PREFIX.sub("", message.text or message.caption or "", count=1).strip()


async def download_photo(photo: PhotoSize) -> ImageInput:
    data = await download_file(
        photo,
        max_bytes=int(FileSizeLimit.FILESIZE_DOWNLOAD),
        too_large="That photo is too large for me to fetch (20 MB at most).",
    )
    return ImageInput(data, "image/jpeg")


def photo_of(message: Message) -> PhotoSize | None:
    """The largest size of the message's photo, or of the photo it replies to."""
    if message.photo:
        return message.photo[-1]
    replied = message.reply_to_message
    if replied is not None and replied.photo:
        return replied.photo[-1]
    return None


class TelegramGeneration:
    """Registers the generation handlers on a PTB Application."""

    def __init__(self, service: GenerationService, outbox: TelegramOutbox) -> None:
        self._service = service
        self._outbox = outbox
        self._albums = Albums(self._is_blend, self._blend)
        self._guard: Wrapper | None = None

    def register(self, app: Application[Any, Any, Any, Any, Any, Any], guard: Wrapper) -> None:
        """Call before the chat handlers: the album and caption handlers must win."""
        self._guard = guard
        self._albums.bind(app, guard)
        app.add_handler(
            MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, self._answer),
            group=-1,
        )
        app.add_handler(CommandHandler("imagine", guard(self._imagine)))
        app.add_handler(CommandHandler("music", guard(self._music)))
        app.add_handler(CommandHandler("video", guard(self._video)))
        app.add_handler(CommandHandler("describe", guard(self._describe)))
        app.add_handler(CommandHandler("blend", guard(self._blend_usage)))
        # Unguarded: it only holds the photo; the blend or the chat handlers check access.
        app.add_handler(
            MessageHandler(filters.PHOTO & AlbumFilter(self._albums), self._albums.collect)
        )
        app.add_handler(MessageHandler(filters.PHOTO & _CaptionFilter(), guard(self._captioned)))
        app.add_handler(
            CallbackQueryHandler(guard(self._button), pattern=f"^{re.escape(BUTTON_PREFIX)}")
        )

    async def close(self) -> None:
        await self._albums.close()

    # -- commands -------------------------------------------------------------------------------

    async def _imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        prompt = command_text(message)
        self._service.check_imagine(prompt)  # before downloading anything
        photo = photo_of(message)
        images = (await download_photo(photo),) if photo is not None else ()
        await self._service.imagine(origin_of(message), prompt, images=images)

    async def _music(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        spec = parse_music(command_text(message), self._service.config.limits)
        await self._service.music(origin_of(message), spec)

    async def _video(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        config = self._service.config
        photo = photo_of(message)
        text = command_text(message)
        spec = parse_video(
            text,
            config.limits,
            default_duration=config.kling_duration,
            default_aspect=config.kling_aspect_ratio,
            image=photo is not None,
        )
        image = await download_photo(photo) if photo is not None else None
        await self._service.video(origin_of(message), spec, image=image)

    async def _describe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        photo = photo_of(message)
        if photo is not None:
            image = await download_photo(photo)
            await self._service.describe(origin_of(message), image=image)
            return
        link = _URL.search(command_text(message))
        if link is None:
            raise UserFacingError(
                "Send a photo with the caption /describe, reply /describe to a photo, "
                "or give an image link: /describe https://..."
            )
        await self._service.describe(origin_of(message), link=link[0])

    async def _blend_usage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise UserFacingError(
            "Send 2 to 5 photos as one album with the caption /blend "
            "(optionally /blend portrait, square or landscape)."
        )

    async def _captioned(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A single photo whose caption is a command."""
        message = update.effective_message
        if message is None or not message.caption:
            return
        command = caption_command(message)
        name = command[1].lower() if command else ""
        if name == "imagine":
            await self._imagine(update, context)
        elif name == "describe":
            await self._describe(update, context)
        elif name == "video":
            await self._video(update, context)
        else:
            await self._blend_usage(update, context)

    # -- albums (/blend) ------------------------------------------------------------------------

    def _is_blend(self, message: Message) -> bool:
        command = caption_command(message)
        return command is not None and command[1].lower() == "blend"

    async def _blend(
        self, album: Album, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        """A complete album captioned /blend (run by the guard: access checked first)."""
        message = update.effective_message
        if message is None:
            return
        if not 2 <= len(album.photos) <= 5:
            raise UserFacingError(f"Blend needs 2 to 5 photos; this album has {len(album.photos)}.")
        words = command_text(message).lower().split()
        dimensions = next((_DIMENSIONS[w] for w in words if w in _DIMENSIONS), "SQUARE")
        images = [await download_photo(photo) for photo in album.photos]
        await self._service.blend(origin_of(message), images, dimensions=dimensions)

    # -- buttons and answers --------------------------------------------------------------------

    async def _button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None or query.message is None:
            return
        carrier = query.message
        key = (
            conversation_key(carrier)
            if isinstance(carrier, Message)
            else ConversationKey(Platform.TELEGRAM, str(carrier.chat.id))
        )
        user = qualify(Platform.TELEGRAM, query.from_user.id)
        # Where the click came from and who pressed: the core checks both against the task.
        origin = Origin(key, user, reply_to=str(carrier.message_id), route=TELEGRAM_ROUTE)
        try:
            ref = await self._service.button(query.data.removeprefix(BUTTON_PREFIX), origin)
        except UserFacingError as exc:
            # A repeated press gets a passing toast; a refusal a box the user must close.
            await query.answer(exc.message[:200], show_alert=exc.message != ALREADY)
            return
        name = " ".join(p for p in (ref.emoji, ref.label) if p) or "Button"
        await query.answer(f"{name}: on it…")
        await self._service.press(origin, ref)

    async def _answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to one of the bot's questions completes its task; anything else goes on
        to the chat handlers."""
        message = update.effective_message
        replied = message.reply_to_message if message is not None else None
        if message is None or replied is None or message.from_user is None:
            return
        if replied.from_user is None or replied.from_user.id != context.bot.id:
            return
        handled = False

        async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            nonlocal handled
            try:
                origin = origin_of(message, reply_to=replied)
                text = message.text or ""
                handled = await self._service.answer(origin, str(replied.message_id), text)
            except UserFacingError:
                handled = True
                raise

        assert self._guard is not None
        await self._guard(answer)(update, context)
        if handled:
            raise ApplicationHandlerStop


def caption_command(message: Message) -> re.Match[str] | None:
    """The command a photo's caption starts with, unless it is ``/cmd@otherbot``."""
    command = _CAPTION_COMMAND.match((message.caption or "").strip())
    if command is None or command[2] is None:
        return command
    try:
        username = message.get_bot().username or ""
    except RuntimeError:
        return None
    return command if command[2][1:].lower() == username.lower() else None


class _CaptionFilter(filters.MessageFilter):
    def __init__(self) -> None:
        super().__init__(name="caption_command")

    def filter(self, message: Message) -> bool:
        return caption_command(message) is not None
