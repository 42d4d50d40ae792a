"""The slash commands: ``/chat``, ``/reset``, ``/model`` (autocompleted), ``/system``,
``/usage``, ``/stats`` and ``/help`` (``/stop`` and the ⏹ button:
:mod:`bot.platforms.discord.stops`).

Each command hands its work to :meth:`DiscordContext.respond
<bot.platforms.discord.context.DiscordContext.respond>`, which acknowledges the interaction
at once (a deferred "thinking…" response), tracks the work for shutdown and turns errors
into replies; the work then answers through the
:class:`~bot.platforms.discord.surface.InteractionSurface` it is given. What the chat
commands say is decided by :class:`~bot.core.chat.commands.ChatCommands`.
"""

from __future__ import annotations

import logging
from typing import Final, Literal

import discord
from discord import app_commands

from bot.core.chat.commands import Answer, Changer, ChatCommands, Dialect, Picker
from bot.core.chat.service import ChatService
from bot.core.models import Incoming, Platform, qualify
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.generation import HELP as GENERATION_HELP
from bot.platforms.discord.images import HELP as IMAGE_HELP
from bot.platforms.discord.messages import conversation_key, requester_of
from bot.platforms.discord.stops import DiscordStops
from bot.platforms.discord.surface import NO_PINGS, InteractionSurface, say

__all__ = ["SlashCommands"]

log = logging.getLogger(__name__)

MAX_CHOICES: Final = 25  # Discord's limit for autocomplete choices
MAX_CHOICE_LEN: Final = 100
HOW_TO_ASK: Final = (
    "In a DM just write to me. In a server, mention me, reply to one of my messages, or use "
    "/chat. Attach images and I will look at them, text files or PDFs and I will read them."
)


VOICE_HELP: Final = "\n/voice on|off — also send this channel's answers as audio"


class SlashCommands:
    """The command handlers; :meth:`register` adds them to a command tree."""

    def __init__(
        self,
        context: DiscordContext,
        chat: ChatService,
        *,
        generation: bool = False,
        images: bool = False,
        voice: bool = False,
    ) -> None:
        self._context = context
        self._voice = voice
        self._chat = chat
        more_help = GENERATION_HELP if generation else ""
        if images:
            more_help += IMAGE_HELP if generation else "\n" + IMAGE_HELP
        dialect = Dialect(
            how_to_ask=HOW_TO_ASK,
            picker=Picker.AUTOCOMPLETE,
            set_model="/model name",
            set_persona="/system text",
            restore_persona="/system text: default",
            more_help=more_help + (VOICE_HELP if voice else ""),
        )
        self._commands = ChatCommands(chat, context.gatekeeper, dialect)
        self._stops = DiscordStops(context, self._commands)  # ⏹ and /stop

    def register(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        respond = self._context.respond
        self._stops.register(tree)

        @tree.command(name="chat", description="Ask the model (the answer streams here)")
        @app_commands.describe(prompt="Your question or message")
        async def chat_command(interaction: discord.Interaction, prompt: str) -> None:
            await respond(interaction, lambda s: self.chat(interaction, s, prompt))

        @tree.command(name="reset", description="Start a fresh conversation in this channel")
        async def reset_command(interaction: discord.Interaction) -> None:
            await respond(interaction, self.reset)

        @tree.command(name="model", description="Show or pick this channel's model")
        @app_commands.describe(name="The model to use from now on (leave empty to see it)")
        async def model_command(interaction: discord.Interaction, name: str | None = None) -> None:
            await respond(interaction, lambda s: self.model(interaction, s, name))

        @model_command.autocomplete("name")
        async def model_names(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return await self.model_choices(current)

        @tree.command(name="system", description="Show or set this channel's persona")
        @app_commands.describe(text="The new persona, or `default` to restore the default")
        async def system_command(interaction: discord.Interaction, text: str | None = None) -> None:
            await respond(interaction, lambda s: self.system(interaction, s, text))

        if self._voice:

            @tree.command(name="voice", description="Also send this channel's answers as audio")
            @app_commands.describe(state="on or off (leave empty to see it)")
            async def voice_command(
                interaction: discord.Interaction, state: Literal["on", "off"] | None = None
            ) -> None:
                await respond(interaction, lambda s: self.voice(interaction, s, state))

        @tree.command(name="usage", description="Your use of the bot today and what is left")
        async def usage_command(interaction: discord.Interaction) -> None:
            await respond(interaction, lambda s: self.usage(interaction, s), ephemeral=True)

        @tree.command(name="stats", description="Users, tokens and tasks (admins only)")
        async def stats_command(interaction: discord.Interaction) -> None:
            await respond(interaction, lambda s: self.stats(interaction, s), ephemeral=True)

        @tree.command(name="help", description="What this bot can do")
        async def help_command(interaction: discord.Interaction) -> None:
            await respond(
                interaction,
                lambda s: interaction.response.send_message(
                    self._commands.help().text, ephemeral=True, allowed_mentions=NO_PINGS
                ),
                defer=False,
            )

    async def _say(self, surface: InteractionSurface, answer: Answer) -> None:
        await say(self._context.pacer, surface, answer.text)

    async def chat(
        self, interaction: discord.Interaction, surface: InteractionSurface, prompt: str
    ) -> None:
        await self._context.gatekeeper.admit_chat(requester_of(interaction))
        incoming = Incoming(
            key=conversation_key(surface.lane),
            user_id=qualify(Platform.DISCORD, interaction.user.id),
            user_name=interaction.user.display_name,
            text=prompt,
            is_group=interaction.guild_id is not None,
        )
        await self._chat.answer(
            incoming, self._context.reply(surface), pictures=self._context.pictures(incoming.key)
        )

    async def usage(self, interaction: discord.Interaction, surface: InteractionSurface) -> None:
        await self._say(surface, await self._commands.usage(requester_of(interaction)))

    async def stats(self, interaction: discord.Interaction, surface: InteractionSurface) -> None:
        await self._say(surface, await self._commands.stats(requester_of(interaction)))

    async def reset(self, surface: InteractionSurface) -> None:
        await self._say(surface, await self._commands.reset(conversation_key(surface.lane)))

    async def model(
        self, interaction: discord.Interaction, surface: InteractionSurface, name: str | None
    ) -> None:
        key = conversation_key(surface.lane)
        answer = await self._commands.model(key, name, by=changer(interaction))
        await self._say(surface, answer)

    async def model_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Models matching what is typed (prefix matches first); popular ones when empty."""
        try:
            models = await self._commands.matching_models(current, MAX_CHOICES)
        except Exception as exc:  # an empty menu beats a failed autocomplete
            log.warning("discord: model list for autocomplete failed: %s", exc)
            return []
        fitting = [m for m in models if 0 < len(m) <= MAX_CHOICE_LEN]
        return [app_commands.Choice(name=m, value=m) for m in fitting[:MAX_CHOICES]]

    async def system(
        self, interaction: discord.Interaction, surface: InteractionSurface, text: str | None
    ) -> None:
        key = conversation_key(surface.lane)
        answer = await self._commands.system(key, text, by=changer(interaction))
        await self._say(surface, answer)

    async def voice(
        self, interaction: discord.Interaction, surface: InteractionSurface, state: str | None
    ) -> None:
        key = conversation_key(surface.lane)
        await self._say(surface, await self._commands.voice(key, state, by=changer(interaction)))


def changer(interaction: discord.Interaction) -> Changer:
    """Who asks for a change; a server's admins here are the members who may manage
    messages in the channel (Discord resolves the permissions into the interaction)."""
    may_manage = interaction.permissions.manage_messages

    async def place_admin() -> bool:
        return may_manage

    return Changer(requester_of(interaction), place_admin)
