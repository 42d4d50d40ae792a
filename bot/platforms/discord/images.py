"""Discord's ``/image``: a picture from the images API, or an edit of an attached image.

Acknowledged at once like the generation commands
(:meth:`~bot.platforms.discord.context.DiscordContext.respond`); the picture is posted into
the channel as a reply to the command's response, through the paced
:class:`~bot.platforms.discord.outbox.DiscordOutbox`, and the response then shows the
request. The ``model`` option offers the configured image models as choices (Discord allows
25). ``prompt`` is optional so that a bare ``/image`` gets the usage line, as on Telegram.
"""

from __future__ import annotations

from typing import Final

import discord
from discord import app_commands

from bot.core.generation.images import ImageService
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.generation import DiscordGeneration, can_post, echo, image_inputs
from bot.platforms.discord.surface import InteractionSurface, say

__all__ = ["HELP", "DiscordImages"]

HELP: Final = (
    "\n/image — a picture from the images API (`model` picks another image model; attach "
    "an `image` to edit it)"
)


class DiscordImages:
    """Registers ``/image`` on a command tree."""

    def __init__(self, service: ImageService, context: DiscordContext) -> None:
        self._service = service
        self._context = context

    def register(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        respond = self._context.respond
        config = self._service.config
        models = list(dict.fromkeys((config.model, *config.models)))[:25]

        @tree.command(name="image", description=f"A picture from a prompt ({config.model})")
        @app_commands.describe(
            prompt="What to draw (or, with an image, how to change it)",
            model=f"The image model (default {config.model})",
            image="An image to edit",
        )
        @app_commands.choices(model=[app_commands.Choice(name=m, value=m) for m in models])
        async def image(
            interaction: discord.Interaction,
            prompt: str | None = None,
            model: app_commands.Choice[str] | None = None,
            image: discord.Attachment | None = None,
        ) -> None:
            chosen = model.value if model else None
            await respond(
                interaction, lambda s: self.image(s, interaction, prompt or "", chosen, image)
            )

    async def image(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        prompt: str,
        model: str | None,
        attachment: discord.Attachment | None,
    ) -> None:
        request = self._service.check(prompt, model=model)  # before downloading anything
        can_post(interaction)
        images = await image_inputs([attachment])
        origin = DiscordGeneration.origin(surface, interaction)
        await self._service.image(origin, prompt, model=model, image=images[0] if images else None)
        await say(self._context.pacer, surface, echo("image", request.prompt, len(images)))
