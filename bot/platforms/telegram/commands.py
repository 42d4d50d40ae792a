"""Telegram's chat commands: ``/help`` (and ``/start``), ``/model`` with its keyboard,
``/system``, ``/reset``, ``/usage`` and ``/stats``; ``/stop`` and the ⏹ button in
:mod:`bot.platforms.telegram.stops`.

Each handler parses its update and sends what :class:`~bot.core.chat.commands.ChatCommands`
answers; ``/ask`` and plain messages are the chat itself (:mod:`bot.platforms.telegram.bot`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Final

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType, MessageEntityType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.chat.commands import Changer, ChatCommands, Dialect, ModelChoice, Picker
from bot.core.chat.service import ChatService
from bot.core.errors import PlatformUnavailable, UserFacingError
from bot.core.pacing import Pacer
from bot.platforms.telegram.generation import HELP as GENERATION_HELP
from bot.platforms.telegram.images import HELP as IMAGE_HELP
from bot.platforms.telegram.messages import (
    Wrapper,
    conversation_key,
    fits_callback,
    requester_of,
)
from bot.platforms.telegram.render import render
from bot.platforms.telegram.stops import TelegramStops
from bot.platforms.telegram.surface import retry_later, surface_for, tell
from bot.platforms.telegram.voice import HELP as VOICE_HELP

__all__ = ["COMMANDS", "TelegramCommands"]

log = logging.getLogger(__name__)

COMMANDS: Final = (
    ("ask", "Ask the model (in groups)"),
    ("model", "Show or pick this chat's model"),
    ("system", "Show or set this chat's persona"),
    ("reset", "Start a fresh conversation"),
    ("stop", "Stop the answer being written"),
    ("usage", "Your use today and what is left"),
    ("help", "What this bot can do"),
)
"""The command menu (``setMyCommands``), before the generation commands."""
HOW_TO_ASK: Final = (
    "In a private chat just write to me. In a group, mention me, reply to me, or use /ask. "
    "Send a photo and I will look at it. Send a text file or a PDF (its caption is the "
    "question) and I will read it."
)
MODEL_CALLBACK: Final = "model:"
GROUP_ADMINS: Final = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
UNKNOWN_GROUP: Final = 1
"""The handler group of the unknown-command answer: after every other handler of group 0
has had its chance, whatever order they were added in."""


def keyboard(choices: tuple[ModelChoice, ...]) -> InlineKeyboardMarkup | None:
    """The model menu, two buttons a row (names too long for the callback data are left out)."""
    fitting = [c for c in choices if fits_callback(c.name, MODEL_CALLBACK)]
    rows = [
        [InlineKeyboardButton(c.label, callback_data=MODEL_CALLBACK + c.name) for c in pair]
        for pair in (fitting[i : i + 2] for i in range(0, len(fitting), 2))
    ]
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramCommands:
    """The chat command handlers; :meth:`register` adds them to the application."""

    def __init__(
        self,
        chat: ChatService,
        gatekeeper: Gatekeeper,
        *,
        bot: Bot,
        pacer: Pacer,
        generation: bool = False,
        images: bool = False,
        voice: bool = False,
    ) -> None:
        more_help = GENERATION_HELP if generation else ""
        if images:
            more_help += IMAGE_HELP if generation else "\n" + IMAGE_HELP
        more_help += VOICE_HELP if voice else ""
        dialect = Dialect(how_to_ask=HOW_TO_ASK, picker=Picker.BUTTONS, more_help=more_help)
        self._voice = voice
        self._commands = ChatCommands(chat, gatekeeper, dialect)
        self._bot = bot
        self._pacer = pacer
        self._stops = TelegramStops(self._commands, bot=bot, pacer=pacer)  # ⏹ and /stop

    def register(self, app: Application[Any, Any, Any, Any, Any, Any], guard: Wrapper) -> None:
        app.add_handler(CommandHandler(["start", "help"], guard(self.help)))
        app.add_handler(CommandHandler("reset", guard(self.reset)))
        app.add_handler(CommandHandler("model", guard(self.model)))
        app.add_handler(CommandHandler("system", guard(self.system)))
        if self._voice:
            app.add_handler(CommandHandler("voice", guard(self.voice)))
        app.add_handler(
            CallbackQueryHandler(guard(self.model_chosen), pattern=f"^{MODEL_CALLBACK}")
        )
        app.add_handler(CommandHandler("usage", guard(self.usage)))
        app.add_handler(CommandHandler("stats", guard(self.stats)))
        self._stops.register(app, guard)
        app.add_handler(
            MessageHandler(filters.COMMAND & ~filters.UpdateType.EDITED, guard(self.unknown)),
            group=UNKNOWN_GROUP,
        )

    @staticmethod
    def _known(app: Application[Any, Any, Any, Any, Any, Any]) -> frozenset[str]:
        """Every command some handler of the application takes (read when asked, so handlers
        added after this one count too)."""
        handlers: list[BaseHandler[Any, Any, Any]] = [
            h for group in app.handlers.values() for h in group
        ]
        return frozenset(
            name for h in handlers if isinstance(h, CommandHandler) for name in h.commands
        )

    def _changer(self, update: Update) -> Changer:
        """Who asks for a change; whether they administer the group is asked of Telegram
        (getChatMember: not a message, so outside the chat's send budget) only if needed."""
        who = requester_of(update)
        message, user = update.effective_message, update.effective_user
        if who is None or message is None or user is None:
            raise UserFacingError("Sorry, I cannot tell who is asking.")
        # An anonymous admin speaks as the group itself.
        sender = update.message.sender_chat if update.message is not None else None
        as_group = sender is not None and sender.id == message.chat_id

        async def place_admin() -> bool:
            if as_group:
                return True
            try:
                member = await self._bot.get_chat_member(message.chat_id, user.id)
            except TelegramError as exc:
                log.info("telegram: could not check chat %s admins: %s", message.chat_id, exc)
                return False
            return member.status in GROUP_ADMINS

        return Changer(who, place_admin)

    async def _tell(self, update: Update, text: str) -> None:
        await tell(self._pacer, self._bot, update, text)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command nobody handles: one line naming /help, where it is surely for this bot (a
        private chat, or ``/foo@thisbot``). In groups a bare ``/foo`` or ``/foo@otherbot`` may
        be another bot's, so it is left alone."""
        message = update.effective_message
        if message is None or not message.text or not message.entities:
            return
        entity = message.entities[0]
        if entity.type != MessageEntityType.BOT_COMMAND or entity.offset != 0:
            return
        command, _, addressee = message.parse_entity(entity)[1:].partition("@")
        if addressee:
            if addressee.lower() != (self._bot.username or "").lower():
                return
        elif message.chat.type != ChatType.PRIVATE:
            return
        if command.lower() in self._known(context.application):
            return  # handled in group 0 (e.g. with arguments PTB's filters refused)
        await self._tell(update, f"I don't know /{command}. Send /help to see what I can do.")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._tell(update, self._commands.help().text)

    async def usage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester_of(update)
        if who is not None:
            await self._tell(update, (await self._commands.usage(who)).text)

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester_of(update)
        if who is not None:
            await self._tell(update, (await self._commands.stats(who)).text)

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None:
            await self._tell(update, (await self._commands.reset(conversation_key(message))).text)

    async def system(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        text = (message.text or "").partition(" ")[2]  # newlines kept, unlike context.args
        answer = await self._commands.system(
            conversation_key(message), text, by=self._changer(update)
        )
        await self._tell(update, answer.text)

    async def voice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        arg = context.args[0] if context.args else None
        answer = await self._commands.voice(
            conversation_key(message), arg, by=self._changer(update)
        )
        await self._tell(update, answer.text)

    async def model(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        key = conversation_key(message)
        changer = self._changer(update)
        if context.args:
            answer = await self._commands.model(key, " ".join(context.args), by=changer)
            await self._tell(update, answer.text)
            return
        answer = await self._commands.model(key, by=changer)
        body, entities = render(answer.text)
        surface = surface_for(self._bot, message, reply=True)
        with contextlib.suppress(PlatformUnavailable):  # rate limited: no menu this time
            await self._pacer.call(
                surface.lane,
                surface.lane_kind,
                lambda: retry_later(
                    message.reply_text(
                        body, entities=entities, reply_markup=keyboard(answer.choices)
                    )
                ),
                attempts=1,
            )

    async def model_chosen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None or not isinstance(query.message, Message):
            return
        name = query.data.removeprefix(MODEL_CALLBACK)
        try:
            answer = await self._commands.model(
                conversation_key(query.message), name, by=self._changer(update)
            )
        except UserFacingError as exc:
            await query.answer(exc.message[:200], show_alert=True)
            return
        body, entities = render(answer.text)
        await query.answer(body[:200])
        surface = surface_for(self._bot, query.message, reply=False)
        try:
            await self._pacer.call(
                surface.lane,
                surface.lane_kind,
                lambda: retry_later(query.edit_message_text(body, entities=entities)),
                attempts=1,
            )
        except (PlatformUnavailable, TelegramError) as exc:
            log.info("telegram: could not update the model menu: %s", exc)
