"""Telegram adapter: python-telegram-bot <-> the core.

Runs inside the service's event loop (``initialize/start/start_polling``, never
``run_polling``) with updates handled concurrently. Private chats get an answer to every
message; groups when the bot is @mentioned, replied to, or asked with ``/ask``; each forum
topic is its own conversation. Only core models cross into ``bot.core``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.config import TelegramSettings
from bot.core.access.gatekeeper import Gatekeeper
from bot.core.chat.service import ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import PlatformUnavailable, UserFacingError
from bot.core.generation.service import GenerationService
from bot.core.models import ImageInput, Incoming, MediaLimits
from bot.core.pacing import Pacer
from bot.core.ports import Clock
from bot.platforms.telegram.generation import COMMANDS as GENERATION_COMMANDS
from bot.platforms.telegram.generation import HELP as GENERATION_HELP
from bot.platforms.telegram.generation import TelegramGeneration
from bot.platforms.telegram.messages import (
    conversation_key,
    fits_callback,
    remove_mention,
    requester_of,
    requester_of_message,
    thread_id,
)
from bot.platforms.telegram.outbox import MEDIA_LIMITS, TelegramOutbox
from bot.platforms.telegram.request import AiohttpRequest
from bot.platforms.telegram.surface import TelegramSurface, retry_later, say

log = logging.getLogger(__name__)

COMMANDS = (
    ("ask", "Ask the model (in groups)"),
    ("model", "Show or pick this chat's model"),
    ("system", "Show or set this chat's persona"),
    ("reset", "Start a fresh conversation"),
    ("usage", "Your use today and what is left"),
    ("help", "What this bot can do"),
)
HELP = (
    "I answer with an AI model and remember this chat's conversation.\n\n"
    "In a private chat just write to me. In a group, mention me, reply to me, or use /ask.\n"
    "/model — show or pick the model (/model NAME to set it)\n"
    "/system — show the persona (/system TEXT to set it, /system default to restore)\n"
    "/reset — start a fresh conversation (history stays stored)\n"
    "/usage — your use today and what is left"
)
GENERIC_APOLOGY = "Sorry, something went wrong on my side. Please try again."
DRAIN_TIMEOUT = 5.0  # at shutdown, handlers in flight get this long before they are cut short
SHUTDOWN_FLUSH = 5.0  # a cancelled reply's bounded attempt to show its text (StreamingReply)
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MODEL_CALLBACK = "model:"
TYPING_AFTER = 0.5  # seconds without text before a chat shows "typing…"


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class TelegramBot:
    """The Telegram side of the service. ``async with`` starts and stops polling."""

    def __init__(
        self,
        settings: TelegramSettings,
        *,
        chat: ChatService,
        gatekeeper: Gatekeeper,
        pacer: Pacer,
        clock: Clock,
        concurrent_updates: int = 4096,
        drain_timeout: float = DRAIN_TIMEOUT,
        generation: GenerationService | None = None,
        media_limits: MediaLimits | None = None,
    ) -> None:
        self._settings = settings
        self._chat = chat
        self._gatekeeper = gatekeeper
        self._pacer = pacer
        self._clock = clock
        self._drain_timeout = drain_timeout
        self._inflight: set[asyncio.Task[Any]] = set()
        self.application: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.token.get_secret_value())
            .base_url(settings.api_base_url)
            .base_file_url(settings.file_base_url)
            .concurrent_updates(concurrent_updates)
            # PTB's defaults: 256 connections for calls, 1 for getUpdates.
            .request(AiohttpRequest(256))
            .get_updates_request(AiohttpRequest(1))
            .build()
        )
        self._username = ""
        self._bot_id = 0
        # Generation: the outbox reaches chats by key alone (the task poller uses it).
        self.outbox = TelegramOutbox(self.application.bot, pacer, media_limits or MEDIA_LIMITS)
        self._generation = (
            TelegramGeneration(generation, self.outbox) if generation is not None else None
        )
        self._register()

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> TelegramBot:
        app = self.application
        await app.initialize()
        try:
            self._username = (app.bot.username or "").lower()
            self._bot_id = app.bot.id
            commands = COMMANDS + (GENERATION_COMMANDS if self._generation else ())
            await app.bot.set_my_commands([BotCommand(name, text) for name, text in commands])
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
                error_callback=self._polling_error,
            )
        except BaseException:
            await self._shutdown()
            raise
        log.info("telegram: polling as @%s", self._username)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()

    def healthy(self) -> bool:
        """For /healthz: polling runs."""
        updater = self.application.updater
        return updater is not None and updater.running

    async def _shutdown(self) -> None:
        app = self.application
        if self._generation is not None:
            await self._generation.close()
        if app.updater is not None and app.updater.running:
            await app.updater.stop()  # no new updates from here on
        await self._drain()
        if app.running:
            await app.stop()  # waits for the handlers still running (none, after the drain)
        await app.shutdown()

    async def _drain(self) -> None:
        """Give handlers in flight a moment, then cut them short: a cancelled reply still
        delivers its text so far with a note (StreamingReply's shutdown flush)."""
        pending = {t for t in self._inflight if not t.done()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self._drain_timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=SHUTDOWN_FLUSH + 1.0)

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("telegram: polling error: %s", exc.message)

    # -- wiring ---------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.application
        if self._generation is not None:  # first: its album/caption handlers must win
            self._generation.register(app, self._guard)
        app.add_handler(CommandHandler(["start", "help"], self._guard(self._help)))
        app.add_handler(CommandHandler("ask", self._guard(self._ask)))
        app.add_handler(CommandHandler("reset", self._guard(self._reset)))
        app.add_handler(CommandHandler("model", self._guard(self._model)))
        app.add_handler(CommandHandler("system", self._guard(self._system)))
        app.add_handler(
            CallbackQueryHandler(self._guard(self._model_chosen), pattern=f"^{MODEL_CALLBACK}")
        )
        app.add_handler(CommandHandler("usage", self._guard(self._usage)))
        app.add_handler(CommandHandler("stats", self._guard(self._stats)))
        app.add_handler(
            MessageHandler(
                (filters.TEXT | filters.PHOTO) & ~filters.COMMAND & ~filters.UpdateType.EDITED,
                # Access is checked only once a message is known to be for the bot.
                self._guard(self._message, admit=False),
            )
        )

    def _guard(self, handler: Handler, *, admit: bool = True) -> Handler:
        """The one place errors become replies (expected ones verbatim, the rest an apology),
        access is checked, and work is tracked for a graceful shutdown."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            who = requester_of(update)
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                with self._gatekeeper.work(
                    platform="tg", chat=who.chat if who else "?", user=who.user if who else None
                ):
                    if admit and who is not None:
                        self._gatekeeper.admit(who)
                    await handler(update, context)
            except UserFacingError as exc:
                if not exc.quiet:
                    await self._reply(update, exc.message)
            except Exception:
                log.exception("telegram: handling update %s failed", update.update_id)
                await self._reply(update, GENERIC_APOLOGY)
            finally:
                if task is not None:
                    self._inflight.discard(task)

        return guarded

    # -- translation ----------------------------------------------------------------------------

    def _surface(self, message: Message, *, reply: bool) -> TelegramSurface:
        return TelegramSurface(
            self.application.bot,
            message.chat_id,
            group=message.chat.type != ChatType.PRIVATE,
            thread_id=thread_id(message),
            reply_to=message.message_id if reply else None,
        )

    async def _reply(self, update: Update, text: str) -> None:
        query = update.callback_query
        if query is not None:  # a button press: answer it where the user looks
            with contextlib.suppress(TelegramError):
                await query.answer(text[:200], show_alert=True)
            return
        message = update.effective_message
        if message is None:
            return
        await say(self._pacer, self._surface(message, reply=True), text)

    def _addressed(self, message: Message) -> tuple[bool, str]:
        """Whether a group message is for the bot, and its text without the @mention."""
        text = message.text or message.caption or ""
        entities = message.entities or message.caption_entities or ()
        mention = f"@{self._username}"

        def entity_text(entity: MessageEntity) -> str:
            if message.text:
                return message.parse_entity(entity)
            return message.parse_caption_entity(entity)

        mentioned = any(
            e.type == MessageEntity.MENTION and entity_text(e).lower() == mention for e in entities
        )
        if mentioned:
            text = remove_mention(text, mention)
        replied = message.reply_to_message
        to_bot = (
            replied is not None
            and replied.from_user is not None
            and replied.from_user.id == self._bot_id
        )
        return mentioned or to_bot, text.strip()

    async def _incoming(self, message: Message, text: str) -> Incoming:
        user = message.from_user
        images: tuple[ImageInput, ...] = ()
        if message.photo:
            photo = message.photo[-1]  # the largest size
            if photo.file_size and photo.file_size > MAX_PHOTO_BYTES:
                raise UserFacingError("That photo is too large for me to read (10 MB at most).")
            file = await photo.get_file()
            images = (ImageInput(bytes(await file.download_as_bytearray()), "image/jpeg"),)
        return Incoming(
            key=conversation_key(message),
            user_id=f"tg:{user.id}" if user else "tg:?",
            user_name=user.full_name if user else "someone",
            text=text,
            images=images,
            is_group=message.chat.type != ChatType.PRIVATE,
        )

    async def _answer(self, message: Message, text: str) -> None:
        who = requester_of_message(message)
        if who is not None:
            await self._gatekeeper.admit_chat(who)
        incoming = await self._incoming(message, text)
        self._chat.validate(incoming)
        surface = self._surface(message, reply=incoming.is_group)
        await self._chat.answer(incoming, self._open_reply(surface))

    def _open_reply(self, surface: TelegramSurface) -> StreamingReply:
        return StreamingReply(
            surface,
            pacer=self._pacer,
            lane=surface.lane,
            lane_kind=surface.lane_kind,
            clock=self._clock,
            # "typing…" only when the first words are slow: a fast answer needs no extra call.
            typing_after=TYPING_AFTER,
        )

    # -- handlers -------------------------------------------------------------------------------

    async def _message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or (message.from_user is not None and message.from_user.is_bot):
            return
        if message.chat.type == ChatType.PRIVATE:
            await self._answer(message, message.text or message.caption or "")
            return
        addressed, text = self._addressed(message)
        if addressed:
            await self._answer(message, text)

    async def _ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        text = " ".join(context.args or ())
        if not text.strip() and not message.photo:
            raise UserFacingError("Usage: /ask your question")
        await self._answer(message, text)

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, HELP + (GENERATION_HELP if self._generation else ""))

    async def _usage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester_of(update)
        if who is not None:
            await self._reply(update, await self._gatekeeper.usage_text(who))

    async def _stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester_of(update)
        if who is not None:
            await self._reply(update, await self._gatekeeper.stats_text(who))

    async def _reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        await self._chat.reset(conversation_key(message))
        await self._reply(
            update,
            "Started a fresh conversation. Earlier messages stay stored but are no longer "
            "sent to the model.",
        )

    async def _system(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        key = conversation_key(message)
        text = (message.text or "").partition(" ")[2].strip()
        if not text:
            persona, default = await self._chat.persona(key)
            origin = "the default" if default else "set for this chat"
            await self._reply(update, f"Persona ({origin}):\n\n{persona}")
            return
        if text.lower() == "default":
            await self._chat.set_persona(key, None)
            await self._reply(update, "Persona restored to the default.")
            return
        await self._chat.set_persona(key, text)
        await self._reply(update, "Persona set for this chat. /reset to start fresh with it.")

    async def _model(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        key = conversation_key(message)
        if context.args:
            name = await self._chat.set_model(key, " ".join(context.args))
            await self._reply(update, f"Model set to {name}.")
            return
        current = await self._chat.current_model(key)
        menu = [m for m in await self._chat.model_menu() if fits_callback(m, MODEL_CALLBACK)]
        rows = [
            [
                InlineKeyboardButton(
                    ("✅ " if m == current else "") + m, callback_data=MODEL_CALLBACK + m
                )
                for m in menu[i : i + 2]
            ]
            for i in range(0, len(menu), 2)
        ]
        surface = self._surface(message, reply=True)
        with contextlib.suppress(PlatformUnavailable):  # rate limited: no menu this time
            await self._pacer.call(
                surface.lane,
                surface.lane_kind,
                lambda: retry_later(
                    message.reply_text(
                        f"Current model: {current}\nPick another, or send /model NAME.",
                        reply_markup=InlineKeyboardMarkup(rows) if rows else None,
                    )
                ),
                attempts=1,
            )

    async def _model_chosen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None or not isinstance(query.message, Message):
            return
        name = query.data.removeprefix(MODEL_CALLBACK)
        key = conversation_key(query.message)
        try:
            await self._chat.set_model(key, name)
        except UserFacingError as exc:
            await query.answer(exc.message[:200], show_alert=True)
            return
        await query.answer(f"Model set to {name}")
        surface = self._surface(query.message, reply=False)
        try:
            await self._pacer.call(
                surface.lane,
                surface.lane_kind,
                lambda: retry_later(query.edit_message_text(f"Model set to {name}.")),
                attempts=1,
            )
        except (PlatformUnavailable, TelegramError) as exc:
            log.info("telegram: could not update the model menu: %s", exc)
