"""The slash commands: ``/chat``, ``/reset``, ``/model`` (autocompleted), ``/system``, ``/help``.

Each command hands its work to the adapter's ``respond`` hook, which acknowledges the
interaction at once (a deferred "thinking…" response), tracks the work for shutdown and turns
errors into replies; the work then answers through the
:class:`~bot.platforms.discord.surface.InteractionSurface` it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import discord
from discord import app_commands

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.service import ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.models import Incoming
from bot.core.pacing import Pacer
from bot.platforms.discord.messages import conversation_key, requester
from bot.platforms.discord.surface import NO_PINGS, InteractionSurface, say

__all__ = ["HELP", "SlashCommands"]

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit for autocomplete choices
MAX_CHOICE_LEN = 100
HELP = (
    "I answer with an AI model and remember each channel's conversation (every thread and DM "
    "has its own).\n\n"
    "In a DM just write to me. In a server, mention me, reply to one of my messages, or use "
    "`/chat`. Attach images and I will look at them.\n"
    "`/model` — show or pick the model (it autocompletes)\n"
    "`/system` — show or set the persona (`/system text: default` restores it)\n"
    "`/reset` — start a fresh conversation (history stays stored)\n"
    "`/usage` — your use today and what is left"
)

Work = Callable[[InteractionSurface], Awaitable[object]]


class Respond(Protocol):
    def __call__(
        self,
        interaction: discord.Interaction,
        work: Work,
        *,
        defer: bool = True,
        ephemeral: bool = False,
    ) -> Awaitable[None]: ...


class SlashCommands:
    """The command handlers; :meth:`register` adds them to a command tree."""

    def __init__(
        self,
        *,
        chat: ChatService,
        gatekeeper: Gatekeeper,
        pacer: Pacer,
        respond: Respond,
        reply: Callable[[InteractionSurface], StreamingReply],
        help_text: str = HELP,
    ) -> None:
        self._chat = chat
        self._gatekeeper = gatekeeper
        self._pacer = pacer
        self._respond = respond
        self._reply = reply
        self._help = help_text

    def register(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        respond = self._respond

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
            await respond(interaction, lambda s: self.model(s, name))

        @model_command.autocomplete("name")
        async def model_names(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return await self.model_choices(current)

        @tree.command(name="system", description="Show or set this channel's persona")
        @app_commands.describe(text="The new persona, or `default` to restore the default")
        async def system_command(interaction: discord.Interaction, text: str | None = None) -> None:
            await respond(interaction, lambda s: self.system(s, text))

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
                    self._help, ephemeral=True, allowed_mentions=NO_PINGS
                ),
                defer=False,
            )

    async def chat(
        self, interaction: discord.Interaction, surface: InteractionSurface, prompt: str
    ) -> None:
        await self._gatekeeper.admit_chat(_requester(interaction))
        incoming = Incoming(
            key=conversation_key(surface.lane),
            user_id=f"dc:{interaction.user.id}",
            user_name=interaction.user.display_name,
            text=prompt,
            is_group=interaction.guild_id is not None,
        )
        await self._chat.answer(incoming, self._reply(surface))

    async def usage(self, interaction: discord.Interaction, surface: InteractionSurface) -> None:
        text = await self._gatekeeper.usage_text(_requester(interaction))
        await say(self._pacer, surface, text)

    async def stats(self, interaction: discord.Interaction, surface: InteractionSurface) -> None:
        text = await self._gatekeeper.stats_text(_requester(interaction))
        await say(self._pacer, surface, text)

    async def reset(self, surface: InteractionSurface) -> None:
        await self._chat.reset(conversation_key(surface.lane))
        await say(
            self._pacer,
            surface,
            "Started a fresh conversation in this channel. Earlier messages stay stored but "
            "are no longer sent to the model.",
        )

    async def model(self, surface: InteractionSurface, name: str | None) -> None:
        key = conversation_key(surface.lane)
        if name and name.strip():
            chosen = await self._chat.set_model(key, name)
            await say(self._pacer, surface, f"Model set to `{chosen}` for this channel.")
            return
        current = await self._chat.current_model(key)
        await say(
            self._pacer,
            surface,
            f"This channel uses `{current}`. Pick another with `/model name` (it autocompletes).",
        )

    async def model_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Models matching what is typed (prefix matches first); popular ones when empty."""
        needle = current.strip().lower()
        try:
            if needle:
                models = await self._chat.available_models()
            else:
                models = await self._chat.model_menu(MAX_CHOICES)
        except Exception as exc:  # an empty menu beats a failed autocomplete
            log.warning("discord: model list for autocomplete failed: %s", exc)
            return []
        if needle:
            starts = [m for m in models if m.lower().startswith(needle)]
            inside = [m for m in models if needle in m.lower() and m not in starts]
            models = starts + inside
        fitting = [m for m in models if 0 < len(m) <= MAX_CHOICE_LEN]
        return [app_commands.Choice(name=m, value=m) for m in fitting[:MAX_CHOICES]]

    async def system(self, surface: InteractionSurface, text: str | None) -> None:
        key = conversation_key(surface.lane)
        text = (text or "").strip()
        if not text:
            persona, default = await self._chat.persona(key)
            origin = "the default" if default else "set for this channel"
            await say(self._pacer, surface, f"Persona ({origin}):\n\n{persona}")
        elif text.lower() == "default":
            await self._chat.set_persona(key, None)
            await say(self._pacer, surface, "Persona restored to the default.")
        else:
            await self._chat.set_persona(key, text)
            await say(
                self._pacer,
                surface,
                "Persona set for this channel. Use `/reset` to start fresh with it.",
            )


def _requester(interaction: discord.Interaction) -> Requester:
    return requester(interaction.user.id, interaction.channel, interaction.guild_id)
