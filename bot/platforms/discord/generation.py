"""Discord's generation commands: ``/imagine``, ``/music``, ``/video``, ``/describe`` and
``/blend`` (buttons and forms: :mod:`bot.platforms.discord.buttons`).

Each command is acknowledged at once with a public deferred response
(:meth:`~bot.platforms.discord.context.DiscordContext.respond`: access check, "thinking…",
errors shown in it). Input is checked before
anything is downloaded or submitted; the core then posts the task's *status message* into
the channel as a reply to that response, and once the request is in, the response shows it
(``/imagine a paper boat``): the channel reads like Telegram's command → status → result
chain, and Discord's "alice used /imagine" header tells who asked. Status edits and results
go through :class:`~bot.platforms.discord.outbox.DiscordOutbox` by channel, never through
the interaction token, which expires after 15 minutes while tasks may run longer.

Images come from attachment options; an image link at the start of an ``/imagine`` prompt is
Midjourney's own reference syntax and passes through. ``/music`` and ``/video`` prompts accept
the same inline options as on Telegram (``--instrumental``, ``--ar 9:16``...), so a typo'd
option is refused the same way.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from typing import Any, Final

import discord
from discord import app_commands
from discord.utils import escape_markdown

from bot.core.errors import UserFacingError
from bot.core.generation.prompts import MusicSpec, parse_music, parse_video
from bot.core.generation.service import GenerationService, Origin
from bot.core.generation.views import excerpt
from bot.core.models import ImageInput, Platform, qualify
from bot.platforms.discord.buttons import (
    SONG_PREFIX,
    ButtonClient,
    DiscordButtons,
    SongForm,
    form_values,
)
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.messages import conversation_key, download_images, route_of
from bot.platforms.discord.surface import InteractionSurface, say

__all__ = ["HELP", "DiscordGeneration"]

HELP: Final = (
    "\n\nGenerate:\n"
    "/imagine — Midjourney (`--ar 16:9` and other parameters pass through; attach an image "
    "or start the prompt with an image link to use it as a reference)\n"
    "/music — Suno: two songs from a description (`instrumental`; `custom` opens a form "
    "for lyrics, style and title)\n"
    "/video — Kling (`duration`, `aspect_ratio`; attach an image to animate it)\n"
    "/describe — four prompts for an image, each with a button to imagine it\n"
    "/blend — blend 2 to 5 images"
)
ASPECTS: Final = ("16:9", "9:16", "1:1")
SHAPES: Final = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}
ECHO: Final = 300


async def image_inputs(attachments: Iterable[discord.Attachment | None]) -> list[ImageInput]:
    """Download image attachments (anything else is refused with a sentence)."""
    images: list[ImageInput] = []
    for attachment in attachments:
        if attachment is not None:
            images.extend(await download_images([attachment]))
    return images


def can_post(interaction: discord.Interaction) -> None:
    """Refuse at once where the results could not be posted: a slash command works in a
    channel where the bot may not send messages or files, but the status message and the
    results are channel messages."""
    if interaction.guild_id is None:
        return
    perms = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    send = perms.send_messages_in_threads if in_thread else perms.send_messages
    if not (send and perms.attach_files and perms.embed_links):
        raise UserFacingError(
            "I need the Send Messages, Attach Files and Embed Links permissions in this "
            "channel to post the result here."
        )


def echo(command: str, text: str = "", images: int = 0) -> str:
    """What the command's response shows once the request is in: the request itself."""
    line = f"**/{command}**"
    if text.strip():
        line += " " + escape_markdown(excerpt(text, ECHO))
    if images:
        line += f" (+{images} image{'s' if images > 1 else ''})"
    return line


class DiscordGeneration:
    """Registers the generation commands; owns their buttons and forms."""

    def __init__(self, service: GenerationService, context: DiscordContext) -> None:
        self._service = service
        self._context = context
        self.buttons = DiscordButtons(service, context)

    def register(
        self, tree: app_commands.CommandTree[discord.Client], client: ButtonClient
    ) -> None:
        self.buttons.bind(client)  # the buttons, on new and old messages alike
        client.event(self.on_interaction)  # the forms' submits
        respond = self._context.respond

        @tree.command(name="imagine", description="Midjourney: an image from a prompt")
        @app_commands.describe(
            prompt="What to imagine (--ar 16:9 and other parameters pass through)",
            image="An image to use as a reference",
        )
        async def imagine(
            interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
        ) -> None:
            await respond(interaction, lambda s: self.imagine(s, interaction, prompt, image))

        @tree.command(name="music", description="Suno: two songs from a description")
        @app_commands.describe(
            prompt="What the song is about (e.g. an upbeat synth-pop song about coding)",
            instrumental="No vocals",
            custom="Write the lyrics, style and title yourself (opens a form)",
        )
        async def music(
            interaction: discord.Interaction,
            prompt: str | None = None,
            instrumental: bool = False,
            custom: bool = False,
        ) -> None:
            if custom:
                form = SongForm(instrumental=instrumental, style=prompt or "")
                await self.buttons.open(interaction, form)
                return
            spec = functools.partial(parse_music, prompt or "", self._service.config.limits)
            await respond(interaction, lambda s: self.music(s, interaction, spec, instrumental))

        @tree.command(name="video", description="Kling: a video from a prompt or an image")
        @app_commands.describe(
            prompt="What happens in the video",
            image="An image to animate",
            duration="Seconds",
            aspect_ratio="Width:height (text to video)",
        )
        @app_commands.choices(
            duration=[app_commands.Choice(name=f"{n} s", value=n) for n in (5, 10)]
        )
        @app_commands.choices(aspect_ratio=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
        async def video(
            interaction: discord.Interaction,
            prompt: str | None = None,
            image: discord.Attachment | None = None,
            duration: app_commands.Choice[int] | None = None,
            aspect_ratio: app_commands.Choice[str] | None = None,
        ) -> None:
            config = self._service.config
            seconds = duration.value if duration else config.kling_duration
            aspect = aspect_ratio.value if aspect_ratio else config.kling_aspect_ratio
            await respond(
                interaction,
                lambda s: self.video(
                    s, interaction, prompt or "", image, duration=seconds, aspect=aspect
                ),
            )

        @tree.command(name="describe", description="Midjourney: four prompts for an image")
        @app_commands.describe(image="The image to describe", link="Or a link to the image")
        async def describe(
            interaction: discord.Interaction,
            image: discord.Attachment | None = None,
            link: str | None = None,
        ) -> None:
            await respond(interaction, lambda s: self.describe(s, interaction, image, link))

        @tree.command(name="blend", description="Midjourney: blend 2 to 5 images")
        @app_commands.describe(shape="The result's shape (default square)")
        @app_commands.choices(shape=[app_commands.Choice(name=n, value=n) for n in SHAPES])
        async def blend(  # noqa: PLR0917 (a slash command's options are its parameters)
            interaction: discord.Interaction,
            image1: discord.Attachment,
            image2: discord.Attachment,
            image3: discord.Attachment | None = None,
            image4: discord.Attachment | None = None,
            image5: discord.Attachment | None = None,
            shape: app_commands.Choice[str] | None = None,
        ) -> None:
            images = (image1, image2, image3, image4, image5)
            dimensions = SHAPES[shape.value] if shape else "SQUARE"
            await respond(interaction, lambda s: self.blend(s, interaction, images, dimensions))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Form submits (``client.event``: discord.py calls it for every interaction): the
        song form here, a question's answer form in the buttons."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Any = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        values = form_values(data)
        if custom_id.startswith(SONG_PREFIX):
            await self._custom_song(interaction, values, custom_id.endswith("1"))
        else:
            await self.buttons.answered(interaction, custom_id, values)

    # -- commands (run by ``respond``: acknowledged, access checked, errors answered) ----------

    @staticmethod
    def origin(surface: InteractionSurface, interaction: discord.Interaction) -> Origin:
        """The status message and the results reply to the command's response."""
        anchor = surface.original_id
        return Origin(
            conversation_key(surface.lane),
            qualify(Platform.DISCORD, interaction.user.id),
            reply_to=None if anchor is None else str(anchor),
            route=route_of(interaction.guild),
        )

    async def _done(self, surface: InteractionSurface, echo: str) -> None:
        await say(self._context.pacer, surface, echo)

    async def imagine(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None,
    ) -> None:
        can_post(interaction)
        prompt = self._service.check_imagine(prompt)  # before downloading anything
        images = await image_inputs([image])
        await self._service.imagine(self.origin(surface, interaction), prompt, images=images)
        await self._done(surface, echo("imagine", prompt, len(images)))

    async def music(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        spec: Callable[[], MusicSpec],
        instrumental: bool,
    ) -> None:
        can_post(interaction)
        checked = spec()  # inline options work as on Telegram (--instrumental, --style...)
        if instrumental and not checked.instrumental:
            checked = dataclasses.replace(checked, instrumental=True)
        await self._service.music(self.origin(surface, interaction), checked)
        about = (checked.title or checked.style) if checked.custom else checked.description
        await self._done(surface, echo("music", about + " (instrumental)" * checked.instrumental))

    async def _custom_song(
        self, interaction: discord.Interaction, form: dict[str, str], instrumental: bool
    ) -> None:
        """The song form's submit: custom mode, like ``/music --style ... --title ...``."""
        spec = MusicSpec(
            lyrics=form.get("lyrics", "").strip(),
            style=" ".join(form.get("style", "").split()),
            title=" ".join(form.get("title", "").split()),
            instrumental=instrumental,
        )
        await self._context.respond(
            interaction, lambda s: self.music(s, interaction, lambda: spec, False)
        )

    async def video(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None,
        *,
        duration: int,
        aspect: str,
    ) -> None:
        can_post(interaction)
        spec = parse_video(  # inline --duration/--aspect work as on Telegram
            prompt,
            self._service.config.limits,
            default_duration=duration,
            default_aspect=aspect,
            image=image is not None,
        )
        images = await image_inputs([image])
        origin = self.origin(surface, interaction)
        await self._service.video(origin, spec, image=images[0] if images else None)
        await self._done(surface, echo("video", spec.prompt, len(images)))

    async def describe(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        image: discord.Attachment | None,
        link: str | None,
    ) -> None:
        can_post(interaction)
        link = (link or "").strip() or None
        if (image is None) == (link is None):
            raise UserFacingError("Attach one image, or give one image link, to describe.")
        images = await image_inputs([image])
        origin = self.origin(surface, interaction)
        await self._service.describe(origin, image=images[0] if images else None, link=link)
        await self._done(surface, echo("describe", link or "", len(images)))

    async def blend(
        self,
        surface: InteractionSurface,
        interaction: discord.Interaction,
        attachments: Iterable[discord.Attachment | None],
        dimensions: str,
    ) -> None:
        can_post(interaction)
        images = await image_inputs(attachments)
        await self._service.blend(self.origin(surface, interaction), images, dimensions=dimensions)
        await self._done(surface, echo("blend", dimensions.lower(), len(images)))
