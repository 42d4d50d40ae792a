"""Telegram's ``/image PROMPT``: a picture from the images API, or an edit of a photo.

The photo to edit is the command's own (a photo captioned ``/image ...``) or the one the
command replies to. ``--model NAME`` picks another of the configured image models. The
core (:class:`~bot.core.generation.images.ImageService`) checks, counts and posts.
"""

from __future__ import annotations

from typing import Any, Final

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from bot.core.generation.images import ImageService
from bot.platforms.telegram.generation import command_text, download_photo, origin_of, photo_of
from bot.platforms.telegram.messages import Wrapper

__all__ = ["COMMANDS", "HELP", "TelegramImages"]

COMMANDS: Final = (
    ("image", "A picture from a prompt (gpt-image-1; attach or reply to a photo to edit it)"),
)
HELP: Final = (
    "\n/image PROMPT — a picture from the images API (--model NAME picks another image "
    "model; attach a photo or reply to one to edit it)"
)
_CAPTION: Final = r"^/image(@\w+)?(\s|$)"


class TelegramImages:
    """Registers ``/image`` (as a command, and as a photo's caption) on a PTB Application."""

    def __init__(self, service: ImageService) -> None:
        self._service = service

    def register(self, app: Application[Any, Any, Any, Any, Any, Any], guard: Wrapper) -> None:
        """Call before the generation and chat handlers: a captioned photo is ours."""
        app.add_handler(CommandHandler("image", guard(self._image)))
        app.add_handler(
            MessageHandler(filters.PHOTO & filters.CaptionRegex(_CAPTION), guard(self._image))
        )

    async def _image(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        text = command_text(message)
        self._service.check(text)  # before downloading anything: a bare /image costs nothing
        photo = photo_of(message)
        image = await download_photo(photo) if photo is not None else None
        await self._service.image(origin_of(message), text, image=image)
