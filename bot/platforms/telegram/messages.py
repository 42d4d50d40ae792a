"""Reading Telegram updates for the core: who asks and where, the conversation key."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Audio, Document, Message, PhotoSize, Update, Voice
from telegram.constants import ChatType, InlineKeyboardButtonLimit
from telegram.ext import ContextTypes

from bot.core.access.policy import Requester
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey, Platform

__all__ = [
    "Handler",
    "Wrapper",
    "conversation_key",
    "download_file",
    "fits_callback",
    "remove_mention",
    "requester_of",
    "requester_of_message",
    "thread_id",
]

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
"""A PTB handler callback."""
Wrapper = Callable[[Handler], Handler]
"""The bot's guard around a handler: access checked, errors answered, work tracked."""


def requester_of(update: Update) -> Requester | None:
    """Who asks and where (a button press counts where its message is)."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return None
    return _requester(update.effective_user.id, message)


def requester_of_message(message: Message) -> Requester | None:
    return None if message.from_user is None else _requester(message.from_user.id, message)


def _requester(user_id: int, message: Message) -> Requester:
    return Requester(
        platform=Platform.TELEGRAM,
        user=str(user_id),
        chat=str(message.chat_id),
        is_private=message.chat.type == ChatType.PRIVATE,
    )


def conversation_key(message: Message) -> ConversationKey:
    """A chat is a conversation; a forum topic is one of its own."""
    thread = thread_id(message)
    return ConversationKey(
        Platform.TELEGRAM, str(message.chat_id), None if thread is None else str(thread)
    )


def thread_id(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def remove_mention(text: str, mention: str) -> str:
    lowered = text.lower()
    at = lowered.find(mention)
    if at < 0:
        return text
    return (text[:at] + text[at + len(mention) :]).strip()


def fits_callback(model: str, prefix: str) -> bool:
    """Whether ``prefix + model`` fits Telegram's 64-byte callback data."""
    size = len((prefix + model).encode("utf-8"))
    return size <= int(InlineKeyboardButtonLimit.MAX_CALLBACK_DATA)


async def download_file(
    item: PhotoSize | Document | Voice | Audio,
    *,
    max_bytes: int | None = None,
    too_large: str = "That file is too large for me to fetch.",
) -> bytes:
    """The bytes of a file a person sent (getFile, then its download). Refused with
    ``too_large`` before anything is fetched when Telegram says it is over ``max_bytes``."""
    if max_bytes is not None and item.file_size and item.file_size > max_bytes:
        raise UserFacingError(too_large)
    file = await item.get_file()
    return bytes(await file.download_as_bytearray())
