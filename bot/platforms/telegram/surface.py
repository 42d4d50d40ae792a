"""Telegram's side of a reply: send/edit Markdown as text + entities, paced and translated.

Telegram errors become the core's: ``RetryAfter`` -> :class:`RetryLater`, "message is not
modified" -> success, a vanished message -> :class:`MessageGone`. Nothing here retries; the
core's StreamingReply decides.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Final, TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, MessageLimit
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.core.errors import MessageGone, RetryLater, SurfaceError
from bot.core.models import ReplyControls
from bot.core.pacing import TELEGRAM_GROUP, TELEGRAM_PRIVATE, Pacer
from bot.platforms.common import STOP_LABEL, STOP_PREFIX
from bot.platforms.telegram.messages import thread_id
from bot.platforms.telegram.render import measure, render

log = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
GONE_MARKERS: Final = ("message to edit not found", "message can't be edited", "message_id_invalid")
"""What Telegram's error says when the message to edit is gone (:class:`MessageGone`)."""


def retry_seconds(exc: RetryAfter) -> float:
    """PTB gives an int or (with PTB_TIMEDELTA=1) a timedelta."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


T = TypeVar("T")


async def retry_later(call: Awaitable[T]) -> T:
    """Await a Telegram call with its 429 (``RetryAfter``) raised as :class:`RetryLater`, for
    :meth:`~bot.core.pacing.Pacer.call`; other errors pass unchanged."""
    try:
        return await call
    except RetryAfter as exc:
        raise RetryLater(retry_seconds(exc)) from exc


def translate(exc: TelegramError) -> Exception | None:
    """The core's view of a Telegram error; ``None`` means it counts as success."""
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_seconds(exc))
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if "message is not modified" in text:
            return None
        if any(marker in text for marker in GONE_MARKERS):
            return MessageGone(exc.message)
    return SurfaceError(f"Telegram: {exc.message}")


def stop_markup(controls: ReplyControls | None) -> InlineKeyboardMarkup | None:
    """The ⏹ button under a streaming reply; ``None`` (no markup) removes it on an edit."""
    if controls is None:
        return None
    button = InlineKeyboardButton(STOP_LABEL, callback_data=STOP_PREFIX + controls.stop)
    return InlineKeyboardMarkup([[button]])


class TelegramSurface:
    """One chat (or forum topic) on Telegram; implements :class:`bot.core.ports.Surface`."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        group: bool,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> None:
        self._bot = bot
        self.chat_id = chat_id
        self._thread_id = thread_id
        self._reply_to = reply_to
        self.lane = str(chat_id)  # Telegram's budgets are per chat, forum topics included
        self.lane_kind = TELEGRAM_GROUP if group else TELEGRAM_PRIVATE

    @property
    def max_len(self) -> int:
        return int(MessageLimit.MAX_TEXT_LENGTH)

    def measure(self, text: str) -> int:
        return measure(text)

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        body, entities = render(text)
        reply = None
        if self._reply_to is not None:
            reply = ReplyParameters(self._reply_to, allow_sending_without_reply=True)
            self._reply_to = None  # only the first message of a reply quotes the question
        try:
            message = await self._bot.send_message(
                self.chat_id,
                body,
                entities=entities,
                message_thread_id=self._thread_id,
                reply_parameters=reply,
                link_preview_options=_NO_PREVIEW,
                reply_markup=stop_markup(controls),
            )
        except TelegramError as exc:
            raise (translate(exc) or SurfaceError("Telegram: empty answer to send")) from exc
        return str(message.message_id)

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None:
        body, entities = render(text)
        try:
            await self._bot.edit_message_text(
                body,
                chat_id=self.chat_id,
                message_id=int(message_id),
                entities=entities,
                link_preview_options=_NO_PREVIEW,
                reply_markup=stop_markup(controls),  # none: an inline keyboard is removed
            )
        except TelegramError as exc:
            error = translate(exc)
            if error is not None:
                raise error from exc

    async def typing(self) -> None:
        try:
            await self._bot.send_chat_action(
                self.chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
            )
        except TelegramError as exc:
            error = translate(exc)
            if error is not None:
                raise error from exc


def surface_for(bot: Bot, message: Message, *, reply: bool) -> TelegramSurface:
    """The chat (or forum topic) of ``message``; with ``reply``, the answer quotes it."""
    return TelegramSurface(
        bot,
        message.chat_id,
        group=message.chat.type != ChatType.PRIVATE,
        thread_id=thread_id(message),
        reply_to=message.message_id if reply else None,
    )


async def tell(pacer: Pacer, bot: Bot, update: Update, text: str) -> None:
    """Answer an update with one short message: a button press with an alert where the user
    looks, anything else in its chat, quoting the message."""
    query = update.callback_query
    if query is not None:
        with contextlib.suppress(TelegramError):
            await query.answer(text[:200], show_alert=True)
        return
    message = update.effective_message
    if message is not None:
        await say(pacer, surface_for(bot, message, reply=True), text)


async def say(
    pacer: Pacer, surface: TelegramSurface, text: str, *, attempts: int = 3
) -> str | None:
    """Send one short, non-streamed message (a command's answer) within the chat's budget.
    Failures (rate limited ``attempts`` times included) are logged, not raised."""
    try:
        return await pacer.call(
            surface.lane, surface.lane_kind, lambda: surface.send(text), attempts=attempts
        )
    except SurfaceError as exc:
        log.warning("telegram chat %s: could not send: %s", surface.chat_id, exc)
        return None
