"""Discord's generation buttons and forms: result buttons (``mj:<token>``), the *Answer*
button under a Midjourney question, and the forms (modals) behind them. A click starts here.

**Buttons.** A result button carries only ``mj:<token>`` (:class:`ResultButton`), a question
only ``mjq:answer`` (:class:`AnswerButton`, which opens a form). Both are
:class:`discord.ui.DynamicItem` classes, registered on the client at start
(:meth:`DiscordButtons.bind`), so a click on a message posted before a restart still arrives.
A click is answered at once with a silent deferred update; then the token is looked up (an
unknown, failed or expired one is told privately) and the action submitted with the
button's exact customId; the new task replies to the message that carried it.

**Forms.** A Midjourney question (Custom Zoom) is a message with an *Answer* button that
opens a form (a modal can only be opened in answer to an interaction); a reply to the
question works too. ``/music custom:True`` opens a form for style, title and lyrics. Forms
are sent already stopped, so discord.py does not keep them: their submits arrive through
``on_interaction`` by custom_id (``mjq:<question id>`` here, ``song:<0|1>`` in
:meth:`~bot.platforms.discord.generation.DiscordGeneration.on_interaction`) and so keep
working across a restart, like the buttons.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Final

import discord

from bot.core.access.policy import Requester
from bot.core.errors import UserFacingError
from bot.core.generation.service import GenerationService, Origin
from bot.core.models import ButtonView, OutgoingMessage, Platform, qualify
from bot.platforms.common import BUTTON_PREFIX, Report
from bot.platforms.discord.context import DiscordContext
from bot.platforms.discord.messages import conversation_key, route_of
from bot.platforms.discord.surface import FAILURES, NO_PINGS

__all__ = [
    "ANSWER_ID",
    "AnswerButton",
    "AnswerForm",
    "ButtonClient",
    "DiscordButtons",
    "ResultButton",
    "ShardedButtonClient",
    "SongForm",
    "button_grid",
    "button_view",
    "form_values",
]

log = logging.getLogger(__name__)

ANSWER_ID: Final = "mjq:answer"
"""``custom_id`` of the button under a question; the question is the message carrying it."""
FORM_PREFIX: Final = "mjq:"
SONG_PREFIX: Final = "song:"
MAX_ROWS: Final = 5
MAX_ROW: Final = 5
MAX_LABEL: Final = 80
NOT_WAITING: Final = (
    "That question is not waiting for your answer (it was answered already, or it belongs "
    "to someone else)."
)


# -- the buttons ------------------------------------------------------------------------------


class ButtonClient(discord.Client):
    """The bot's client. discord.py hands a button only the interaction, so the client
    (``interaction.client``) knows where clicks go; :meth:`DiscordButtons.bind` sets it."""

    buttons: DiscordButtons | None = None


class ShardedButtonClient(discord.AutoShardedClient, ButtonClient):
    """The bot's client when it runs shards (``[discord] shard_count``): one gateway session
    per shard id it is given. Discord accepts one IDENTIFY per 5 s (per concurrency bucket),
    which discord.py's own wait between shards keeps; ``identify_interval`` shortens it
    against a fake Discord."""

    def __init__(self, *, identify_interval: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._identify_interval = identify_interval

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self._identify_interval is None:
            await super().before_identify_hook(shard_id, initial=initial)
        elif not initial:
            await asyncio.sleep(self._identify_interval)


def _buttons(interaction: discord.Interaction) -> DiscordButtons | None:
    client = interaction.client
    return client.buttons if isinstance(client, ButtonClient) else None


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(BUTTON_PREFIX) + r"(?P<token>[A-Za-z0-9_-]{1,64})",
):
    """A Midjourney result button: ``mj:<token>``; the token names the stored button."""

    def __init__(self, token: str, label: str = "•", *, row: int | None = None) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=_label(label),
            custom_id=BUTTON_PREFIX + token,
            style=discord.ButtonStyle.secondary,
        )
        super().__init__(button, row=row)
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        return cls(match["token"], getattr(item, "label", None) or "•")

    async def callback(self, interaction: discord.Interaction) -> None:
        buttons = _buttons(interaction)
        if buttons is not None:
            await buttons.click(interaction, self.token)


class AnswerButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=re.escape(ANSWER_ID)
):
    """The button under a question (Custom Zoom): it opens a form for the answer."""

    def __init__(self) -> None:
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label="Answer", emoji="✏️", custom_id=ANSWER_ID, style=discord.ButtonStyle.primary
        )
        super().__init__(button)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AnswerButton:
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        buttons = _buttons(interaction)
        if buttons is not None:
            await buttons.ask(interaction)


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def button_grid(
    rows: tuple[tuple[ButtonView, ...], ...],
) -> list[list[ButtonView]]:
    """The core's rows as Discord allows them: at most 5 rows of 5 (re-flowed when the
    core's rows do not fit, and cut at 25 buttons)."""
    if len(rows) <= MAX_ROWS and all(len(row) <= MAX_ROW for row in rows):
        return [list(row) for row in rows if row]
    flat = [b for row in rows for b in row][: MAX_ROWS * MAX_ROW]
    return [flat[i : i + MAX_ROW] for i in range(0, len(flat), MAX_ROW)]


def button_view(message: OutgoingMessage) -> discord.ui.View | None:
    """The buttons a task's message carries: its result buttons, or a question's Answer."""
    if message.ask:
        view = discord.ui.View(timeout=None)
        view.add_item(AnswerButton())
        return view
    if not message.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for index, row in enumerate(button_grid(message.buttons)):
        for button in row:
            view.add_item(ResultButton(button.token, button.text, row=index))
    return view


# -- the forms --------------------------------------------------------------------------------


class AnswerForm(discord.ui.Modal):
    """The answer to a Midjourney question (a zoom factor, or a prompt)."""

    def __init__(self, question_id: int, *, zoom: bool) -> None:
        super().__init__(
            title="Custom Zoom" if zoom else "Your prompt", custom_id=f"{FORM_PREFIX}{question_id}"
        )
        hint = "1.5, or a prompt ending in --zoom 1.5" if zoom else "the prompt to use"
        self.add_item(
            discord.ui.TextInput(
                label="Zoom factor (1 to 2) or prompt" if zoom else "Prompt",
                custom_id="answer",
                placeholder=hint,
                style=discord.TextStyle.short if zoom else discord.TextStyle.paragraph,
                max_length=4000,
            )
        )


class SongForm(discord.ui.Modal):
    """Suno's custom mode: style, title and lyrics."""

    def __init__(self, *, instrumental: bool, style: str = "") -> None:
        super().__init__(title="Custom song", custom_id=f"{SONG_PREFIX}{int(instrumental)}")
        fields: tuple[discord.ui.TextInput[SongForm], ...] = (
            discord.ui.TextInput(
                label="Style", custom_id="style", placeholder="emotional punk", default=style[:200]
            ),
            discord.ui.TextInput(
                label="Title", custom_id="title", placeholder="City Lights", required=False
            ),
            discord.ui.TextInput(
                label="Lyrics",
                custom_id="lyrics",
                placeholder="[Verse] Neon lights…",
                style=discord.TextStyle.paragraph,
                required=not instrumental,
                max_length=4000,
            ),
        )
        for field in fields:
            self.add_item(field)


def form_values(data: Any) -> dict[str, str]:
    """A modal submit's text inputs: custom_id -> value (rows or labels, any depth)."""
    values: dict[str, str] = {}

    def walk(components: Any) -> None:
        for comp in components if isinstance(components, list) else []:
            if not isinstance(comp, dict):
                continue
            if isinstance(comp.get("value"), str) and "custom_id" in comp:
                values[str(comp["custom_id"])] = comp["value"]
            walk(comp.get("components"))
            if isinstance(comp.get("component"), dict):
                walk([comp["component"]])

    walk((data or {}).get("components"))
    return values


# -- where clicks and answers go -------------------------------------------------------------


class DiscordButtons:
    """Clicks and answer forms (see the module docstring)."""

    def __init__(self, service: GenerationService, context: DiscordContext) -> None:
        self._service = service
        self._context = context

    def bind(self, client: ButtonClient) -> None:
        """Send ``client``'s button clicks here, for new and old messages alike."""
        client.buttons = self
        client.add_dynamic_items(ResultButton, AnswerButton)

    async def _acked(self, interaction: discord.Interaction) -> Requester | None:
        """Access checked and the interaction acknowledged (silently); None if not."""
        who = await self._context.admitted(interaction)
        if who is None:
            return None
        try:
            await interaction.response.defer()
        except FAILURES as exc:
            log.warning("discord: interaction %s not acknowledged: %s", interaction.id, exc)
            return None
        return who

    def _private(self, interaction: discord.Interaction) -> Report:
        async def report(text: str) -> None:
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)

        return report

    async def click(self, interaction: discord.Interaction, token: str) -> None:
        """A result button: answered at once, then its action submitted."""
        who = await self._acked(interaction)
        if who is not None:
            await self._context.guard.run(
                lambda: self._press(interaction, token),
                self._private(interaction),
                what=f"button {token} in {interaction.channel_id}",
                who=who,
            )

    async def _press(self, interaction: discord.Interaction, token: str) -> None:
        carrier = interaction.message
        # Where the click came from and who pressed: the core checks both against the task.
        origin = Origin(
            conversation_key(interaction.channel_id or 0),
            qualify(Platform.DISCORD, interaction.user.id),
            reply_to=str(carrier.id) if carrier is not None else None,
            route=route_of(interaction.guild),
        )
        # Unknown, failed, expired, another channel's, someone else's or just pressed: told
        # privately, nothing submitted.
        ref = await self._service.button(token, origin)
        await self._service.press(origin, ref)

    async def ask(self, interaction: discord.Interaction) -> None:
        """The Answer button under a question: open the form."""
        question = interaction.message
        if question is None:
            return
        await self.open(
            interaction, AnswerForm(question.id, zoom="zoom" in question.content.lower())
        )

    async def open(self, interaction: discord.Interaction, form: discord.ui.Modal) -> None:
        """Open ``form`` in answer to ``interaction`` (access checked first)."""
        if await self._context.admitted(interaction) is None:
            return
        form.stop()  # a form only: its submit comes through on_interaction (see the docstring)
        try:
            await interaction.response.send_modal(form)
        except FAILURES as exc:
            log.warning("discord: could not open a form for %s: %s", interaction.id, exc)

    async def answered(
        self, interaction: discord.Interaction, custom_id: str, values: dict[str, str]
    ) -> None:
        """An answer form's submit (``mjq:<question id>``); any other custom_id is ignored."""
        question_id = custom_id.removeprefix(FORM_PREFIX)
        if not custom_id.startswith(FORM_PREFIX) or not question_id.isdigit():
            return
        who = await self._acked(interaction)
        if who is not None:
            await self._context.guard.run(
                lambda: self._answer(interaction, question_id, values.get("answer", "")),
                self._private(interaction),
                what=f"answer to {question_id}",
                who=who,
            )

    async def _answer(self, interaction: discord.Interaction, question_id: str, text: str) -> None:
        origin = Origin(
            conversation_key(interaction.channel_id or 0),
            qualify(Platform.DISCORD, interaction.user.id),
            reply_to=question_id,
            route=route_of(interaction.guild),
        )
        if not await self._service.answer(origin, question_id, text):
            raise UserFacingError(NOT_WAITING)

    async def answer_reply(self, message: discord.Message, text: str, bot_id: int) -> bool:
        """A reply to one of the bot's questions completes its task (True); anything else is
        left to the chat (False)."""
        ref = message.reference
        if ref is None or ref.message_id is None:
            return False
        replied = ref.resolved
        if isinstance(replied, discord.Message) and replied.author.id != bot_id:
            return False
        question_id = str(ref.message_id)
        origin = Origin(
            conversation_key(message.channel.id),
            qualify(Platform.DISCORD, message.author.id),
            reply_to=question_id,
            route=route_of(message.guild),
        )
        return await self._service.answer(origin, question_id, text)
