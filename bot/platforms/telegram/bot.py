"""Telegram adapter: python-telegram-bot <-> the core.

Runs inside the service's event loop (``initialize/start``, then receiving by long polling or
a webhook as :mod:`.receiving` says; never ``run_polling``) with updates handled
concurrently. Private chats get an answer to every message; groups when the bot is
@mentioned, replied to, or asked with ``/ask``; each forum topic is its own conversation.
Only core models cross into ``bot.core``.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, Document, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.config import TelegramSettings
from bot.core.chat.documents import DocumentKind
from bot.core.chat.service import ChatResult
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import UserFacingError
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import DocumentText, ImageInput, Incoming, Platform, qualify
from bot.platforms.common import Guard, OutboxPictures, Services
from bot.platforms.telegram.commands import COMMANDS, TelegramCommands
from bot.platforms.telegram.generation import COMMANDS as GENERATION_COMMANDS
from bot.platforms.telegram.generation import TelegramGeneration
from bot.platforms.telegram.images import COMMANDS as IMAGE_COMMANDS
from bot.platforms.telegram.images import TelegramImages
from bot.platforms.telegram.messages import (
    Handler,
    conversation_key,
    download_file,
    remove_mention,
    requester_of,
    requester_of_message,
)
from bot.platforms.telegram.outbox import MEDIA_LIMITS, TelegramOutbox
from bot.platforms.telegram.receiving import Receiver
from bot.platforms.telegram.request import AiohttpRequest
from bot.platforms.telegram.surface import TelegramSurface, surface_for, tell
from bot.platforms.telegram.voice import COMMANDS as VOICE_COMMANDS
from bot.platforms.telegram.voice import MAX_DOWNLOAD_BYTES, download, send_voice, voice_note

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024
TYPING_AFTER = 0.5  # seconds without text before a chat shows "typing…"
MIGRATE_GROUP = -2  # before the generation's reply handlers (group -1)


class TelegramBot:
    """The Telegram side of the service. ``async with`` starts it and, unless ``receive`` is
    false, receives updates until it stops; :meth:`start_receiving` and :meth:`stop_receiving`
    switch receiving on and off in between (a role a process may gain or lose)."""

    def __init__(
        self,
        settings: TelegramSettings,
        services: Services,
        *,
        concurrent_updates: int = 4096,
        drain_timeout: float = SHUTDOWN.alone,
        receive: bool = True,
    ) -> None:
        self._settings = settings
        self._receive = receive
        self._chat = chat = services.chat
        self._gatekeeper = gatekeeper = services.gatekeeper
        self._pacer = pacer = services.pacer
        self._clock = services.clock
        self._voice = services.voice
        generation = services.generation
        self._drain_timeout = drain_timeout
        self._guard = Guard(gatekeeper, Platform.TELEGRAM)
        # PTB's default: 256 connections for calls, 1 for getUpdates. Kept to be closed even
        # when start-up fails before PTB counts itself initialized (it then closes nothing).
        self._requests = (AiohttpRequest(256), AiohttpRequest(1))
        self.application: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.token.get_secret_value())
            .base_url(settings.api_base_url)
            .base_file_url(settings.file_base_url)
            .concurrent_updates(concurrent_updates)
            .request(self._requests[0])
            .get_updates_request(self._requests[1])
            .build()
        )
        assert self.application.updater is not None  # the builder always makes one
        self._receiver = Receiver(self.application.updater, settings)
        self._username = ""
        self._bot_id = 0
        # Generation: the outbox reaches chats by key alone (the task poller uses it).
        self.outbox = TelegramOutbox(
            self.application.bot,
            pacer,
            services.media_limits or MEDIA_LIMITS,
            on_migrated=self._chat_migrated,
        )
        self._generation = (
            TelegramGeneration(generation, self.outbox) if generation is not None else None
        )
        self._images = TelegramImages(services.images) if services.images is not None else None
        self._commands = TelegramCommands(
            chat,
            gatekeeper,
            bot=self.application.bot,
            pacer=pacer,
            generation=self._generation is not None,
            images=self._images is not None,
            voice=self._voice is not None and self._voice.speaks,
        )
        self._register()

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> TelegramBot:
        try:
            await self.initialize()
            if self._receive:
                await self.start_receiving()
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()

    async def initialize(self) -> None:
        """Ready to send and to handle updates (getMe, the command menu), receiving none yet."""
        app = self.application
        await app.initialize()
        self._username = (app.bot.username or "").lower()
        self._bot_id = app.bot.id
        commands = COMMANDS + (GENERATION_COMMANDS if self._generation else ())
        commands += IMAGE_COMMANDS if self._images else ()
        commands += VOICE_COMMANDS if self._voice is not None and self._voice.speaks else ()
        await app.bot.set_my_commands([BotCommand(name, text) for name, text in commands])
        await app.start()
        log.info("telegram: started as @%s", self._username)

    async def start_receiving(self) -> None:
        """Receive updates (long polling or the webhook, as configured); after
        :meth:`initialize`. Nothing when already receiving."""
        await self._receiver.start()

    async def stop_receiving(self) -> None:
        """No new updates from here on; what arrived is still handled, and sending goes on."""
        await self._receiver.stop()

    @property
    def receiving(self) -> bool:
        return self._receiver.running

    def healthy(self) -> bool:
        """For /healthz: updates are received."""
        return self._receiver.running

    async def _shutdown(self) -> None:
        app = self.application
        if self._generation is not None:
            await self._generation.close()
        await self._receiver.stop()  # no new updates from here on
        await self._guard.drain(self._drain_timeout)
        if app.running:
            await app.stop()  # waits for the handlers still running (none, after the drain)
        await app.shutdown()
        for request in self._requests:  # idempotent; the only close when initialize failed
            await request.shutdown()

    # -- wiring ---------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.application
        # Its own group: a service message, whatever else handles (or ignores) the update.
        app.add_handler(
            MessageHandler(filters.StatusUpdate.MIGRATE, self._guarded(self._migrate, admit=False)),
            group=MIGRATE_GROUP,
        )
        if self._images is not None:  # first: a photo captioned /image is its own
            self._images.register(app, self._guarded)
        if self._generation is not None:  # first: its album/caption handlers must win
            self._generation.register(app, self._guarded)
        self._commands.register(app, self._guarded)
        app.add_handler(CommandHandler("ask", self._guarded(self._ask)))
        if self._voice is not None:
            app.add_handler(
                MessageHandler(
                    (filters.VOICE | filters.AUDIO) & ~filters.UpdateType.EDITED,
                    self._guarded(self._voice_note, admit=False),
                )
            )
        app.add_handler(
            MessageHandler(
                (filters.TEXT | filters.PHOTO | filters.Document.ALL)
                & ~filters.COMMAND
                & ~filters.UpdateType.EDITED,
                # Access is checked only once a message is known to be for the bot.
                self._guarded(self._message, admit=False),
            )
        )

    def _guarded(self, handler: Handler, *, admit: bool = True) -> Handler:
        """``handler`` run by the platform's :class:`~bot.platforms.common.Guard`: access
        checked, errors answered where the update came from, work tracked for shutdown."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._guard.run(
                lambda: handler(update, context),
                lambda text: tell(self._pacer, self.application.bot, update, text),
                what=f"update {update.update_id}",
                who=requester_of(update),
                admit=admit,
            )

        return guarded

    # -- translation ----------------------------------------------------------------------------

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
            data = await download_file(
                photo,
                max_bytes=MAX_PHOTO_BYTES,
                too_large="That photo is too large for me to read (10 MB at most).",
            )
            images = (ImageInput(data, "image/jpeg"),)
        documents: tuple[DocumentText, ...] = ()
        if message.document:
            image, document = await self._read_document(message.document)
            images, documents = (image,) if image else (), (document,) if document else ()
        return Incoming(
            key=conversation_key(message),
            user_id=qualify(Platform.TELEGRAM, user.id if user else "?"),
            user_name=user.full_name if user else "someone",
            text=text,
            images=images,
            is_group=message.chat.type != ChatType.PRIVATE,
            documents=documents,
        )

    async def _read_document(
        self, document: Document
    ) -> tuple[ImageInput | None, DocumentText | None]:
        """A file sent with a question: an image to look at or a text to read. Refused in one
        sentence before the download when the core cannot read it or it is too large."""
        reader = self._chat.documents
        name = document.file_name or "file"
        kind = reader.check(name, document.mime_type, document.file_size)
        if kind is DocumentKind.IMAGE and (document.file_size or 0) > MAX_PHOTO_BYTES:
            raise UserFacingError(f"{name} is too large for me to look at (10 MB at most).")
        data = await download_file(document)
        if kind is DocumentKind.IMAGE:
            return ImageInput(data, document.mime_type or "image/jpeg"), None
        return None, await reader.read(name, document.mime_type, data)

    async def _answer(self, message: Message, text: str) -> None:
        who = requester_of_message(message)
        if who is not None:
            await self._gatekeeper.admit_chat(who)
        incoming = await self._incoming(message, text)
        self._chat.validate(incoming)
        surface = surface_for(self.application.bot, message, reply=incoming.is_group)
        result = await self._chat.answer(
            incoming, self._open_reply(surface), pictures=OutboxPictures(self.outbox, incoming.key)
        )
        await self._speak(message, incoming, result)

    async def _speak(self, message: Message, incoming: Incoming, result: ChatResult) -> None:
        """The answer also as a voice note, where ``/voice on`` asked for it."""
        if self._voice is not None:
            await self._voice.speak_answer(
                incoming.key,
                result,
                lambda audio: send_voice(self._pacer, self.application.bot, message, audio),
            )

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

    async def _voice_note(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A voice note or audio file: in a group only when addressed (a reply to the bot, a
        caption mentioning it); transcribed, shown, answered (:mod:`bot.core.chat.voice`)."""
        message = update.effective_message
        note = None if message is None else voice_note(message)
        if message is None or note is None or self._voice is None:
            return
        if message.from_user is not None and message.from_user.is_bot:
            return
        text = message.caption or ""
        if message.chat.type != ChatType.PRIVATE:
            addressed, text = self._addressed(message)
            if not addressed:
                return
        who = requester_of_message(message)
        if who is not None:
            await self._gatekeeper.admit_chat(who)
        self._voice.check(note, platform_max_bytes=MAX_DOWNLOAD_BYTES)
        incoming = await self._incoming(message, text)
        surface = surface_for(self.application.bot, message, reply=incoming.is_group)
        result = await self._voice.answer(
            incoming,
            note,
            fetch=lambda: download(message),
            say=lambda line: tell(self._pacer, self.application.bot, update, line),
            reply=self._open_reply(surface),
            pictures=OutboxPictures(self.outbox, incoming.key),
        )
        await self._speak(message, incoming, result)

    async def _migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup. Telegram says so in both chats (``migrate_to_chat_id``
        in the old one, ``migrate_from_chat_id`` in the new); either moves it, once."""
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id:
            await self.outbox.migrated(str(message.chat_id), str(message.migrate_to_chat_id))
        elif message.migrate_from_chat_id:
            await self.outbox.migrated(str(message.migrate_from_chat_id), str(message.chat_id))

    async def _chat_migrated(self, old_chat_id: str, new_chat_id: str) -> None:
        # The conversation (context, model, persona) and its tasks follow to the new id.
        await self._chat.move_chat(Platform.TELEGRAM, old_chat_id, new_chat_id)

    async def _ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        text = " ".join(context.args or ())
        if not text.strip() and not message.photo:
            raise UserFacingError("Usage: /ask your question")
        await self._answer(message, text)
