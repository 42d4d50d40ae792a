"""Discord adapter: discord.py Client + app_commands <-> the core.

Runs inside the service's event loop (``login`` + ``connect`` as a task, never ``bot.run``).
The bot answers every DM, and in servers the messages that @mention it (or its role) or reply
to it; ``/chat`` works anywhere. A channel, a thread and a DM are each one conversation.

Slash commands (synced at start): ``/chat prompt``, ``/reset``, ``/model [name]`` (the name
autocompletes from the model list), ``/system [text]`` and ``/help``. Every command is
acknowledged at once with a deferred "thinking…" response; the answer then streams into it
(see :class:`~bot.platforms.discord.surface.InteractionSurface` for followups and the 15-minute
token fallback). Only core models cross into ``bot.core``; errors become replies in one
place, :meth:`DiscordBot._guarded`. Generation (``/imagine``, ``/music``, ``/video``,
``/describe``, ``/blend``, result buttons, forms): :mod:`bot.platforms.discord.generation`.

``[discord] api_base_url`` and ``gateway_url`` point discord.py at a REST proxy or gateway
(class attributes of the library, set at start and restored at close).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import discord
import yarl
from discord import app_commands

from bot.config import DiscordSettings
from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.service import ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import UserFacingError
from bot.core.generation.service import GenerationService
from bot.core.models import Incoming, MediaLimits
from bot.core.pacing import Pacer
from bot.core.ports import Clock
from bot.platforms.discord.commands import HELP, SlashCommands, Work
from bot.platforms.discord.generation import HELP as GENERATION_HELP
from bot.platforms.discord.generation import DiscordGeneration
from bot.platforms.discord.messages import (
    addressed,
    clean_text,
    conversation_key,
    download_images,
    requester,
)
from bot.platforms.discord.outbox import MEDIA_LIMITS, DiscordOutbox
from bot.platforms.discord.surface import (
    FAILURES,
    NO_PINGS,
    ChannelSurface,
    InteractionSurface,
    say,
)

__all__ = ["DiscordBot", "DiscordStartError"]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
READY_TIMEOUT = 30.0
TYPING_AFTER = 1.0  # seconds without text before a channel shows "typing…"
DRAIN_TIMEOUT = 5.0  # at shutdown, answers in flight get this long before they are cut short
GENERIC_APOLOGY = "Sorry, something went wrong on my side. Please try again."
RESTARTING = "I am restarting; please try again in a moment."


class DiscordStartError(Exception):
    """Discord could not be started; the message is one line for the operator."""


class DiscordBot:
    """The Discord side of the service. ``async with`` logs in, syncs the slash commands,
    connects to the gateway and waits until ready; leaving it drains and closes."""

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        chat: ChatService,
        gatekeeper: Gatekeeper,
        pacer: Pacer,
        clock: Clock,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        generation: GenerationService | None = None,
        media_limits: MediaLimits | None = None,
    ) -> None:
        self._settings = settings
        self._chat = chat
        self._gatekeeper = gatekeeper
        self._pacer = pacer
        self._clock = clock
        self._ready_timeout = ready_timeout
        self._drain_timeout = drain_timeout
        intents = discord.Intents.default()
        intents.message_content = True  # to read what a mention or a reply says
        self.client = discord.Client(
            intents=intents,
            allowed_mentions=NO_PINGS,
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=30.0,  # longer 429 waits surface as RateLimited -> RetryLater
        )
        self.tree = app_commands.CommandTree(self.client)
        self._gateway: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[object]] = set()
        self._closing = False
        self._saved_urls: tuple[str, yarl.URL] | None = None
        # Generation: the outbox reaches channels by key alone (the task poller uses it).
        self.outbox = DiscordOutbox(self.client, pacer, media_limits or MEDIA_LIMITS)
        self._generation = (
            DiscordGeneration(
                generation,
                gatekeeper=gatekeeper,
                pacer=pacer,
                respond=self._respond,
                guarded=self._guarded,
            )
            if generation is not None
            else None
        )
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
        self._closing = True
        try:
            await self._drain()
            if not self.client.is_closed():
                await self.client.close()
            if self._gateway is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(self._gateway, 5.0)
        finally:
            self._restore_library()

    async def _drain(self) -> None:
        """Let answers in flight finish for a moment, then cut them short (each one then
        delivers its text so far with a note) while the HTTP session is still open."""
        pending = {t for t in self._inflight if not t.done()}
        if not pending:
            return
        log.info("discord: waiting for %d answers in flight", len(pending))
        _, late = await asyncio.wait(pending, timeout=self._drain_timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=10.0)

    # -- wiring ---------------------------------------------------------------------------------

    def _register(self) -> None:
        self.client.event(self.on_message)
        self.tree.error(self._tree_error)
        SlashCommands(
            chat=self._chat,
            gatekeeper=self._gatekeeper,
            pacer=self._pacer,
            respond=self._respond,
            reply=self._reply,
            help_text=HELP + (GENERATION_HELP if self._generation else ""),
        ).register(self.tree)
        if self._generation is not None:  # /imagine, /music..., their buttons and forms
            self._generation.register(self.tree, self.client)

    # -- the one place errors become replies ----------------------------------------------------

    async def _guarded(
        self,
        work: Awaitable[object],
        report: Callable[[str], Awaitable[object]],
        what: str,
        who: Requester,
    ) -> None:
        """Run one handler: tracked for shutdown, expected errors answered verbatim, the rest
        logged and answered with an apology."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            with self._gatekeeper.work(platform="dc", chat=who.chat, user=who.user):
                await work
        except UserFacingError as exc:
            if not exc.quiet:
                await self._report(report, exc.message, what)
        except Exception:
            log.exception("discord: %s failed", what)
            await self._report(report, GENERIC_APOLOGY, what)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _report(
        self, report: Callable[[str], Awaitable[object]], text: str, what: str
    ) -> None:
        try:
            await report(text)
        except Exception as exc:
            log.warning("discord: could not answer %s: %s", what, exc)

    async def _tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Errors the command tree raises itself (unknown command, bad option)."""
        log.error("discord: command %s failed", interaction.command, exc_info=error)
        if not interaction.response.is_done():
            with contextlib.suppress(*FAILURES):
                await interaction.response.send_message(
                    GENERIC_APOLOGY, ephemeral=True, allowed_mentions=NO_PINGS
                )

    # -- messages -------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if self._closing or me is None or message.author.bot:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if message.guild is not None and not addressed(message, me.id):
            return
        guild_id = message.guild.id if message.guild else None
        surface = self._channel_surface(
            message.channel.id, guild_id, reply_to=message if guild_id else None
        )
        who = requester(message.author.id, message.channel, guild_id)
        await self._guarded(
            self._answer_message(message, surface, who),
            lambda text: say(self._pacer, surface, text),
            f"message {message.id} in {message.channel.id}",
            who,
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
        incoming = Incoming(
            key=conversation_key(message.channel.id),
            user_id=f"dc:{message.author.id}",
            user_name=message.author.display_name,
            text=text,
            images=await download_images(message.attachments),
            is_group=message.guild is not None,
        )
        await self._chat.answer(incoming, self._reply(surface))

    def _channel_surface(
        self,
        channel_id: int,
        guild_id: int | None,
        *,
        reply_to: discord.Message | None = None,
    ) -> ChannelSurface:
        channel = self.client.get_partial_messageable(channel_id, guild_id=guild_id)
        return ChannelSurface(channel, reply_to=reply_to)

    def _reply(self, surface: ChannelSurface | InteractionSurface) -> StreamingReply:
        return StreamingReply(
            surface,
            pacer=self._pacer,
            lane=surface.lane,
            lane_kind=surface.lane_kind,
            clock=self._clock,
            # A channel's typing call is a REST request like any other: it counts against
            # Discord's 50 per second, so it takes a (lowest-priority) slot, and only when
            # the first words are slow to come. An interaction already shows "thinking…".
            typing_paced=isinstance(surface, ChannelSurface),
            typing_after=TYPING_AFTER,
        )

    # -- interactions ---------------------------------------------------------------------------

    async def _respond(
        self,
        interaction: discord.Interaction,
        work: Work,
        *,
        defer: bool = True,
        ephemeral: bool = False,
    ) -> None:
        """Check access, acknowledge at once (before any slow work), then run ``work``
        guarded."""
        if self._closing:
            with contextlib.suppress(*FAILURES):
                await interaction.response.send_message(RESTARTING, ephemeral=True)
            return
        if interaction.channel_id is None:  # not sent by Discord for commands; be safe
            with contextlib.suppress(*FAILURES):
                await interaction.response.send_message(GENERIC_APOLOGY, ephemeral=True)
            return
        who = requester(interaction.user.id, interaction.channel, interaction.guild_id)
        try:
            self._gatekeeper.admit(who)
        except UserFacingError as exc:
            # Always answered, even a repeated refusal: Discord shows "interaction failed"
            # otherwise, and an ephemeral answer costs the channel nothing.
            with contextlib.suppress(*FAILURES):
                await interaction.response.send_message(
                    exc.message, ephemeral=True, allowed_mentions=NO_PINGS
                )
            return
        fallback = self._channel_surface(interaction.channel_id, interaction.guild_id)
        surface = InteractionSurface(interaction, fallback, clock=self._clock)
        if defer:
            try:
                surface.deferred(
                    await interaction.response.defer(thinking=True, ephemeral=ephemeral)
                )
            except discord.NotFound:
                log.warning(
                    "discord: interaction %s expired before it was acknowledged", interaction.id
                )
                return

        async def report(text: str) -> None:
            if interaction.response.is_done():
                await say(self._pacer, surface, text)
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=NO_PINGS
                )

        name = interaction.command.name if interaction.command else "?"
        await self._guarded(work(surface), report, f"/{name} in {interaction.channel_id}", who)


def _gateway_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord: the gateway connection ended: %r", task.exception())
