"""Stopping an answer on Telegram: the ⏹ button under a streaming reply (callback data
``stop:<id>``) and ``/stop``.

The core decides (:meth:`ChatCommands.stop <bot.core.chat.commands.ChatCommands.stop>`):
only who asked, or a bot admin, may stop an answer. A press is always answered with a
callback answer, which costs the chat nothing (refusals as an alert, seen only by who
pressed). ``/stop`` that stops something says nothing: the reply's own final edit shows
"⏹ Stopped."; anything else is one line in the chat.
"""

from __future__ import annotations

import contextlib
from typing import Any

from telegram import Bot, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.core.chat.commands import ChatCommands
from bot.core.chat.stops import ENDED
from bot.core.pacing import Pacer
from bot.platforms.common import STOP_PREFIX
from bot.platforms.telegram.messages import Wrapper, conversation_key, requester_of
from bot.platforms.telegram.surface import tell

__all__ = ["TelegramStops"]


class TelegramStops:
    """The ⏹ button's and ``/stop``'s handlers; :meth:`register` adds them."""

    def __init__(self, commands: ChatCommands, *, bot: Bot, pacer: Pacer) -> None:
        self._commands = commands
        self._bot = bot
        self._pacer = pacer

    def register(self, app: Application[Any, Any, Any, Any, Any, Any], guard: Wrapper) -> None:
        app.add_handler(CommandHandler("stop", guard(self.command)))
        app.add_handler(CallbackQueryHandler(guard(self.pressed), pattern=f"^{STOP_PREFIX}"))

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, who = update.effective_message, requester_of(update)
        if message is None or who is None:
            return
        result = self._commands.stop(who, conversation_key(message))
        if not result.stopped:
            await tell(self._pacer, self._bot, update, result.text)

    async def pressed(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, who = update.callback_query, requester_of(update)
        if query is None or query.data is None:
            return
        if who is None or not isinstance(query.message, Message):  # too old to be included
            result_text, alert = ENDED, True
        else:
            reply = query.data.removeprefix(STOP_PREFIX)
            result = self._commands.stop(who, conversation_key(query.message), reply)
            result_text, alert = result.text, not result.stopped
        with contextlib.suppress(TelegramError):  # the query may be too old to answer
            await query.answer(result_text[:200], show_alert=alert)
