"""Discord adapter: discord.py Client + app_commands <-> the core.

Runs inside the service's event loop (``login`` + ``connect`` as a task, never ``bot.run``).
The bot answers every DM, and in servers the messages that @mention it (or its role) or reply
to it; ``/chat`` works anywhere. A channel, a thread and a DM are each one conversation.

Slash commands (synced at start): ``/chat prompt``, ``/reset``, ``/model [name]`` (the name
autocompletes from the model list), ``/system [text]`` and ``/help``. Every command is
acknowledged at once with a deferred "thinking…" response; the answer then streams into it
(see :class:`~bot.platforms.discord.surface.InteractionSurface` for followups and the 15-minute
token fallback). Only core models cross into ``bot.core``; errors become replies in one
place, the :class:`~bot.platforms.common.Guard` every handler runs in (through the
:class:`~bot.platforms.discord.context.DiscordContext` they share). Generation
(``/imagine``, ``/music``, ``/video``, ``/describe``, ``/blend``, result buttons, forms):
:mod:`bot.platforms.discord.generation`. ``/stop`` and the ⏹ button under a streaming reply:
:mod:`bot.platforms.discord.stops`.

``[discord] api_base_url`` and ``gateway_url`` point discord.py at a REST proxy or gateway
(class attributes of the library, set at start and restored at close). With ``[discord]
shard_count`` the client is discord.py's sharded one, opening a session per shard id of
``shard_ids`` (see :mod:`bot.platforms.discord.shards`: DMs arrive on shard 0 only).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

from bot.config import DiscordSettings
from bot.core.access.policy import Requester
from bot.core.errors import SurfaceError
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import DocumentText, ImageInput, Incoming, Platform, qualify
from bot.core.pacing import Pacer
from bot.platforms.common import GENERIC_APOLOGY, Services
from bot.platforms.discord.buttons import ButtonClient, ShardedButtonClient
from bot.platforms.discord.commands import SlashCommands
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.generation import DiscordGeneration
from bot.platforms.discord.images import DiscordImages
from bot.platforms.discord.messages import (
    addressed,
    audio_attachment,
    clean_text,
    conversation_key,
    read_attachment,
    read_attachments,
    requester,
)
from bot.platforms.discord.outbox import MEDIA_LIMITS, DiscordOutbox
from bot.platforms.discord.shards import ShardPlan
from bot.platforms.discord.surface import FAILURES, NO_PINGS, ChannelSurface, say, translate

__all__ = ["DiscordBot", "DiscordStartError"]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
READY_TIMEOUT = 30.0
IDENTIFY_INTERVAL = 5.0
"""Discord's pace of IDENTIFYs (discord.py waits this long before each shard after the first)."""


class DiscordStartError(Exception):
    """Discord could not be started; the message is one line for the operator."""


class DiscordBot:
    """The Discord side of the service. ``async with`` logs in, syncs the slash commands,
    connects to the gateway and waits until ready; leaving it drains and closes."""

    def __init__(
        self,
        settings: DiscordSettings,
        services: Services,
        *,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float | None = None,
        drain_timeout: float = SHUTDOWN.alone,
        identify_interval: float | None = None,
    ) -> None:
        self._settings = settings
        self.shards = ShardPlan.of(settings)
        self._chat = services.chat
        self._voice = services.voice
        self._gatekeeper = services.gatekeeper
        self._pacer = pacer = services.pacer
        generation = services.generation
        self._ready_timeout = ready_timeout
        self._identify_interval = identify_interval
        self._drain_timeout = drain_timeout
        intents = discord.Intents.default()
        intents.message_content = True  # to read what a mention or a reply says
        options: dict[str, Any] = {
            "intents": intents,
            "allowed_mentions": NO_PINGS,
            "guild_ready_timeout": guild_ready_timeout,
            "max_ratelimit_timeout": 30.0,  # longer 429 waits surface as RateLimited -> RetryLater
        }
        self.client = (
            ShardedButtonClient(
                shard_count=self.shards.count,
                shard_ids=list(self.shards.ids),
                identify_interval=identify_interval,
                **options,
            )
            if self.shards.sharded
            else ButtonClient(**options)
        )
        self.tree = app_commands.CommandTree(self.client)
        self._gateway: asyncio.Task[None] | None = None
        self._saved_urls: tuple[str, yarl.URL] | None = None
        self._context = DiscordContext(
            self.client, gatekeeper=services.gatekeeper, pacer=pacer, clock=services.clock
        )
        # Generation: the outbox reaches channels by key alone (the task poller uses it).
        self.outbox = DiscordOutbox(
            self.client,
            pacer,
            services.media_limits or MEDIA_LIMITS,
            shards=self.shards.sessions,
        )
        self._context.outbox = self.outbox
        self._generation = (
            DiscordGeneration(generation, self._context) if generation is not None else None
        )
        images = services.images
        self._images = DiscordImages(images, self._context) if images is not None else None
        self._register()

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> DiscordBot:
        self._point_library()
        try:
            await self._login()
            await self._sync_commands()
            self._gateway = asyncio.create_task(self.client.connect(), name="discord-gateway")
            await self._wait_ready(self._gateway)
        except BaseException:
            await self._shutdown()
            raise
        self._gateway.add_done_callback(_gateway_ended)
        user = self.client.user
        log.info("discord: connected as %s (id %s)", user, user.id if user else "?")
        if self.shards.sharded:
            ids = ", ".join(map(str, self.shards.ids))
            log.info("discord: running shards %s of %d", ids, self.shards.count)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()

    def healthy(self) -> bool:
        """For /healthz: connected to the gateway."""
        return self.client.is_ready() and not self.client.is_closed()

    def _point_library(self) -> None:
        route, ws = discord.http.Route, discord.gateway.DiscordWebSocket
        self._saved_urls = (route.BASE, ws.DEFAULT_GATEWAY)
        base = self._settings.api_base_url
        if base and base != DEFAULT_API_BASE:
            route.BASE = base
        if self._settings.gateway_url.strip():
            ws.DEFAULT_GATEWAY = yarl.URL(self._settings.gateway_url.strip())

    def _restore_library(self) -> None:
        if self._saved_urls is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._saved_urls
            )
            self._saved_urls = None

    async def _login(self) -> None:
        where = self._settings.api_base_url
        try:
            await self.client.login(self._settings.token.get_secret_value())
        except discord.LoginFailure as exc:
            raise DiscordStartError("Discord refused [discord] token; check it") from exc
        except discord.HTTPException as exc:
            raise DiscordStartError(
                f"Discord at {where} answered HTTP {exc.status} to the login"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DiscordStartError(f"cannot reach Discord at {where}: {exc}") from exc

    async def _sync_commands(self) -> None:
        try:
            synced = await self.tree.sync()
        except discord.HTTPException as exc:
            # Chat by message still works; the commands keep their last synced shape.
            log.warning("discord: could not sync slash commands: HTTP %s %s", exc.status, exc.text)
            return
        log.info("discord: synced %d slash commands", len(synced))

    async def _wait_ready(self, gateway: asyncio.Task[None]) -> None:
        timeout = READY_TIMEOUT if self._ready_timeout is None else self._ready_timeout
        if self.shards.sharded:  # the shards identify one after another
            interval = self._identify_interval
            pace = IDENTIFY_INTERVAL if interval is None else interval
            timeout += pace * (len(self.shards.ids) - 1)
        ready = asyncio.ensure_future(self.client.wait_until_ready())
        try:
            await asyncio.wait(
                {ready, gateway}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if self.client.is_ready():
            return
        where = self._settings.gateway_url or "the Discord gateway"
        exc = gateway.exception() if gateway.done() and not gateway.cancelled() else None
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            raise DiscordStartError(
                "Discord refused the Message Content intent; enable it on the Bot page "
                "of the Developer Portal"
            ) from exc
        if not gateway.done():
            reason = f"no answer within {timeout:.0f} s"
        elif isinstance(exc, discord.ConnectionClosed):
            reason = f"it closed the connection (code {exc.code}: {exc.reason or 'no reason'})"
        elif isinstance(exc, FAILURES):
            reason = str(exc) or type(exc).__name__
        else:
            # discord.py 2.7 crashes (AttributeError) when its very first connection fails;
            # the cause is in the log line above this one.
            reason = "the connection failed"
        raise DiscordStartError(f"cannot connect to {where}: {reason}") from exc

    async def _shutdown(self) -> None:
        self._context.closing = True
        try:
            # While the HTTP session is still open: a reply cut short shows its text so far.
            await self._context.guard.drain(self._drain_timeout)
            if not self.client.is_closed():
                await self.client.close()
            if self._gateway is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(self._gateway, SHUTDOWN.gateway)
        finally:
            self._restore_library()

    # -- wiring ---------------------------------------------------------------------------------

    def _register(self) -> None:
        self.client.event(self.on_message)
        self.tree.error(self._tree_error)
        SlashCommands(
            self._context,
            self._chat,
            generation=self._generation is not None,
            images=self._images is not None,
            voice=self._voice is not None and self._voice.speaks,
        ).register(self.tree)
        if self._generation is not None:  # /imagine, /music..., their buttons and forms
            self._generation.register(self.tree, self.client)
        if self._images is not None:
            self._images.register(self.tree)

    # -- errors -------------------------------------------------------------------------------

    async def _tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Errors the command tree raises itself (unknown command, bad option)."""
        log.error("discord: command %s failed", interaction.command, exc_info=error)
        if not interaction.response.is_done():
            await self._context.tell_privately(interaction, GENERIC_APOLOGY)

    # -- messages -------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if self._context.closing or me is None or message.author.bot:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if message.guild is not None and not addressed(message, me.id):
            return
        guild_id = message.guild.id if message.guild else None
        surface = self._context.channel_surface(
            message.channel.id, guild_id, reply_to=message if guild_id else None
        )
        who = requester(message.author.id, message.channel, guild_id)
        await self._context.guard.run(
            lambda: self._answer_message(message, surface, who),
            lambda text: say(self._pacer, surface, text),
            what=f"message {message.id} in {message.channel.id}",
            who=who,
        )

    async def _answer_message(
        self, message: discord.Message, surface: ChannelSurface, who: Requester
    ) -> None:
        me_id = self.client.user.id if self.client.user else 0
        text = clean_text(message, me_id)
        if self._generation is not None and message.reference is not None:
            self._gatekeeper.admit(who)  # a reply to a question completes its task
            if await self._generation.buttons.answer_reply(message, text, me_id):
                return
        await self._gatekeeper.admit_chat(who)
        audio = audio_attachment(message) if self._voice is not None else None
        if self._voice is not None and audio is not None:
            # A voice message or audio file: transcribed, shown, answered (core.chat.voice).
            attachment, note = audio
            self._voice.check(note)
            incoming = self._incoming(message, text)
            result = await self._voice.answer(
                incoming,
                note,
                fetch=lambda: read_attachment(attachment),
                say=lambda line: say(self._pacer, surface, line),
                reply=self._context.reply(surface),
                pictures=self._context.pictures(incoming.key),
            )
        else:
            images, documents = await read_attachments(message.attachments, self._chat.documents)
            incoming = self._incoming(message, text, images, documents)
            result = await self._chat.answer(
                incoming,
                self._context.reply(surface),
                pictures=self._context.pictures(incoming.key),
            )
        if self._voice is not None:  # where /voice is on, the answer also as audio
            await self._voice.speak_answer(
                incoming.key,
                result,
                lambda audio: send_audio(self._pacer, surface, message.channel, audio),
            )

    def _incoming(
        self,
        message: discord.Message,
        text: str,
        images: tuple[ImageInput, ...] = (),
        documents: tuple[DocumentText, ...] = (),
    ) -> Incoming:
        return Incoming(
            key=conversation_key(message.channel.id),
            user_id=qualify(Platform.DISCORD, message.author.id),
            user_name=message.author.display_name,
            text=text,
            images=images,
            is_group=message.guild is not None,
            documents=documents,
        )


def _gateway_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord: the gateway connection ended: %r", task.exception())


async def send_audio(
    pacer: Pacer, surface: ChannelSurface, channel: discord.abc.Messageable, audio: bytes
) -> None:
    """A spoken answer (OGG/Opus) as an ordinary audio attachment: discord.py cannot send
    voice messages (their waveform and duration fields). A failure is logged: the text is
    already there."""

    async def call() -> None:
        try:
            await channel.send(file=discord.File(io.BytesIO(audio), filename="answer.ogg"))
        except FAILURES as exc:
            raise translate(exc) from exc

    try:
        await pacer.call(surface.lane, surface.lane_kind, call)
    except SurfaceError as exc:
        log.warning("discord channel %s: could not send the spoken answer: %s", surface.lane, exc)
