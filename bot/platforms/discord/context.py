"""What every Discord handler needs, in one object: the client, the core's gatekeeper, the
pacer and the clock, the platform's :class:`~bot.platforms.common.Guard`, and the steps every
interaction takes (access checked, acknowledged at once, work run guarded).

The bot builds one :class:`DiscordContext` and hands it to the slash commands, the
generation commands and the buttons, so none of them needs a callback into the bot.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import discord

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey, Platform
from bot.core.pacing import Pacer
from bot.core.ports import Clock
from bot.platforms.common import GENERIC_APOLOGY, RESTARTING, Guard, OutboxPictures, PacedOutbox
from bot.platforms.discord.messages import requester_of
from bot.platforms.discord.surface import (
    FAILURES,
    NO_PINGS,
    ChannelSurface,
    InteractionSurface,
    say,
)

__all__ = ["Command", "DiscordContext"]

log = logging.getLogger(__name__)

TYPING_AFTER = 1.0  # seconds without text before a channel shows "typing…"

Command = Callable[[InteractionSurface], Awaitable[object]]
"""A command's work, answering through the interaction's surface."""


class DiscordContext:
    """Shared by every Discord handler (see the module docstring)."""

    def __init__(
        self, client: discord.Client, *, gatekeeper: Gatekeeper, pacer: Pacer, clock: Clock
    ) -> None:
        self.client = client
        self.gatekeeper = gatekeeper
        self.pacer = pacer
        self.clock = clock
        self.guard = Guard(gatekeeper, Platform.DISCORD)
        self.closing = False
        """Set at shutdown: new messages are ignored, new interactions told to retry."""
        self.outbox: PacedOutbox | None = None
        """Where a chat answer's pictures go (set by the bot once its outbox exists)."""

    def pictures(self, key: ConversationKey) -> OutboxPictures | None:
        return OutboxPictures(self.outbox, key) if self.outbox is not None else None

    def channel_surface(
        self,
        channel_id: int,
        guild_id: int | None,
        *,
        reply_to: discord.Message | None = None,
    ) -> ChannelSurface:
        channel = self.client.get_partial_messageable(channel_id, guild_id=guild_id)
        return ChannelSurface(channel, reply_to=reply_to)

    def reply(self, surface: ChannelSurface | InteractionSurface) -> StreamingReply:
        """A streamed answer into ``surface``."""
        return StreamingReply(
            surface,
            pacer=self.pacer,
            lane=surface.lane,
            lane_kind=surface.lane_kind,
            clock=self.clock,
            # A channel's typing call is a REST request like any other: it counts against
            # Discord's 50 per second, so it takes a (lowest-priority) slot, and only when
            # the first words are slow to come. An interaction already shows "thinking…".
            typing_paced=isinstance(surface, ChannelSurface),
            typing_after=TYPING_AFTER,
        )

    async def admitted(self, interaction: discord.Interaction) -> Requester | None:
        """Access checked (a refusal is answered privately); None if refused."""
        who = requester_of(interaction)
        try:
            self.gatekeeper.admit(who)
        except UserFacingError as exc:
            # Always answered, even a repeated refusal: Discord shows "interaction failed"
            # otherwise, and an ephemeral answer costs the channel nothing.
            await self.tell_privately(interaction, exc.message)
            return None
        return who

    async def tell_privately(self, interaction: discord.Interaction, text: str) -> None:
        """Answer an interaction not acknowledged yet, seen only by who sent it."""
        with contextlib.suppress(*FAILURES):
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)

    async def respond(
        self,
        interaction: discord.Interaction,
        work: Command,
        *,
        defer: bool = True,
        ephemeral: bool = False,
    ) -> None:
        """Check access, acknowledge at once (before any slow work), then run ``work``
        guarded: its errors are shown in the response."""
        if self.closing:
            await self.tell_privately(interaction, RESTARTING)
            return
        if interaction.channel_id is None:  # not sent by Discord for commands; be safe
            await self.tell_privately(interaction, GENERIC_APOLOGY)
            return
        who = await self.admitted(interaction)
        if who is None:
            return
        fallback = self.channel_surface(interaction.channel_id, interaction.guild_id)
        surface = InteractionSurface(interaction, fallback, clock=self.clock)
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
                await say(self.pacer, surface, text)
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=NO_PINGS
                )

        name = interaction.command.name if interaction.command else "?"
        await self.guard.run(
            lambda: work(surface), report, what=f"/{name} in {interaction.channel_id}", who=who
        )
