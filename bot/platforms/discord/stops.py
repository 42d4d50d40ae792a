"""Stopping an answer on Discord: the ⏹ button under a streaming reply (custom id
``stop:<id>``) and the ``/stop`` slash command.

The core decides (:meth:`ChatCommands.stop <bot.core.chat.commands.ChatCommands.stop>`):
only who asked, or a bot admin, may stop an answer. Every answer here is an interaction
response, which costs the channel's budget nothing: a press that stops is acknowledged
silently (the reply's own final edit shows "⏹ Stopped." and drops the button), anything
else is told privately (ephemeral), ``/stop`` always privately.

The button is a :class:`discord.ui.DynamicItem` registered on the client, so a click finds
its way here by custom id alone: the reply's view is not kept by discord.py (see
:func:`~bot.platforms.discord.surface.stop_view`), and a button from before a restart is
told that its answer has ended.
"""

from __future__ import annotations

import contextlib
import logging
import re
import weakref
from typing import Any

import discord
from discord import app_commands

from bot.core.chat.commands import ChatCommands
from bot.platforms.common import STOP_LABEL, STOP_PREFIX
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.messages import conversation_key
from bot.platforms.discord.surface import FAILURES

__all__ = ["DiscordStops", "StopButton"]

log = logging.getLogger(__name__)

# Which DiscordStops serves a client's clicks (a DynamicItem gets only the interaction).
_SERVING: weakref.WeakKeyDictionary[discord.Client, DiscordStops] = weakref.WeakKeyDictionary()


class StopButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(STOP_PREFIX) + r"(?P<reply>[A-Za-z0-9_-]{1,64})",
):
    """The ⏹ button: ``stop:<id>`` names the running answer."""

    def __init__(self, reply: str) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=STOP_LABEL, custom_id=STOP_PREFIX + reply, style=discord.ButtonStyle.secondary
        )
        super().__init__(button)
        self.reply = reply

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> StopButton:
        return cls(match["reply"])

    async def callback(self, interaction: discord.Interaction) -> None:
        stops = _SERVING.get(interaction.client)
        if stops is not None:
            await stops.pressed(interaction, self.reply)


class DiscordStops:
    """The ⏹ button's and ``/stop``'s handlers; :meth:`register` adds them."""

    def __init__(self, context: DiscordContext, commands: ChatCommands) -> None:
        self._context = context
        self._commands = commands

    def register(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        _SERVING[tree.client] = self
        tree.client.add_dynamic_items(StopButton)

        @tree.command(name="stop", description="Stop the answer being written in this channel")
        async def stop_command(interaction: discord.Interaction) -> None:
            await self.command(interaction)

    async def command(self, interaction: discord.Interaction) -> None:
        """``/stop``: the answer being written in this channel, answered privately."""
        who = await self._context.admitted(interaction)  # a refusal is told privately
        if who is None or interaction.channel_id is None:
            return
        result = self._commands.stop(who, conversation_key(interaction.channel_id))
        await self._context.tell_privately(interaction, result.text)

    async def pressed(self, interaction: discord.Interaction, reply: str) -> None:
        """The ⏹ button of the answer ``reply``."""
        who = await self._context.admitted(interaction)
        if who is None or interaction.channel_id is None:
            return
        result = self._commands.stop(who, conversation_key(interaction.channel_id), reply)
        if not result.stopped:
            await self._context.tell_privately(interaction, result.text)
            return
        with contextlib.suppress(*FAILURES):  # acknowledged silently: the final edit shows it
            await interaction.response.defer()
