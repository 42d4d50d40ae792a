"""Discord's generation buttons and forms: result buttons (``mj:<token>``), the *Answer*
button under a Midjourney question, and the forms (modals) behind them.

**Buttons.** A click is answered at once with a silent deferred update; then the token is
looked up (an unknown, failed or expired one is told privately) and the action submitted
with the button's exact customId; the new task replies to the message that carried it.

**Forms.** A Midjourney question (Custom Zoom) is a message with an *Answer* button that
opens a form (a modal can only be opened in answer to an interaction); a reply to the
question works too. ``/music custom:True`` opens a form for style, title and lyrics. Forms
are sent already stopped, so discord.py does not keep them: their submits arrive through
``on_interaction`` by custom_id (``mjq:<question id>``, ``song:<0|1>``) and so keep working
across a restart, like the buttons (dynamic items, see ``discord_outbox``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import discord

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.errors import UserFacingError
from bot.core.generation.service import GenerationService, Origin
from bot.platforms.discord.messages import conversation_key, requester
from bot.platforms.discord.surface import FAILURES, NO_PINGS

__all__ = ["AnswerForm", "DiscordButtons", "Guarded", "SongForm", "form_values"]

log = logging.getLogger(__name__)

Report = Callable[[str], Awaitable[object]]
Guarded = Callable[[Awaitable[object], Report, str, Requester], Awaitable[None]]
Song = Callable[[discord.Interaction, dict[str, str], bool], Awaitable[None]]
"""Starts a custom song from the form's values (``instrumental`` last)."""

FORM_PREFIX: Final = "mjq:"
SONG_PREFIX: Final = "song:"
NOT_WAITING: Final = (
    "That question is not waiting for your answer (it was answered already, or it belongs "
    "to someone else)."
)


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


def _who(interaction: discord.Interaction) -> Requester:
    return requester(interaction.user.id, interaction.channel, interaction.guild_id)


class DiscordButtons:
    """Clicks and form submits (see the module docstring)."""

    def __init__(
        self,
        service: GenerationService,
        *,
        gatekeeper: Gatekeeper,
        guarded: Guarded,
        song: Song,
    ) -> None:
        self._service = service
        self._gatekeeper = gatekeeper
        self._guarded = guarded
        self._song = song

    async def _admitted(self, interaction: discord.Interaction) -> Requester | None:
        """Access checked (a refusal is answered privately); None if refused."""
        who = _who(interaction)
        try:
            self._gatekeeper.admit(who)
        except UserFacingError as exc:
            # Answered even when repeated: Discord shows "interaction failed" otherwise, and
            # an ephemeral answer costs the channel nothing.
            with contextlib.suppress(*FAILURES):
                await interaction.response.send_message(
                    exc.message, ephemeral=True, allowed_mentions=NO_PINGS
                )
            return None
        return who

    async def _acked(self, interaction: discord.Interaction) -> Requester | None:
        """Access checked and the interaction acknowledged (silently); None if not."""
        who = await self._admitted(interaction)
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
            where = f"button {token} in {interaction.channel_id}"
            await self._guarded(
                self._press(interaction, token), self._private(interaction), where, who
            )

    async def _press(self, interaction: discord.Interaction, token: str) -> None:
        ref = await self._service.button(token)  # unknown, failed or expired: told privately
        carrier = interaction.message
        origin = Origin(
            conversation_key(interaction.channel_id or 0),
            f"dc:{interaction.user.id}",
            reply_to=str(carrier.id) if carrier is not None else None,
        )
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
        if await self._admitted(interaction) is None:
            return
        form.stop()  # a form only: its submit comes through on_interaction (see the docstring)
        try:
            await interaction.response.send_modal(form)
        except FAILURES as exc:
            log.warning("discord: could not open a form for %s: %s", interaction.id, exc)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Form submits (``client.event``: discord.py calls it for every interaction)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Any = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        values = form_values(data)
        if custom_id.startswith(FORM_PREFIX) and custom_id[len(FORM_PREFIX) :].isdigit():
            question_id = custom_id[len(FORM_PREFIX) :]
            who = await self._acked(interaction)
            if who is not None:
                answer = self._answer(interaction, question_id, values.get("answer", ""))
                where = f"answer to {question_id}"
                await self._guarded(answer, self._private(interaction), where, who)
        elif custom_id.startswith(SONG_PREFIX):
            await self._song(interaction, values, custom_id.endswith("1"))

    async def _answer(self, interaction: discord.Interaction, question_id: str, text: str) -> None:
        origin = Origin(
            conversation_key(interaction.channel_id or 0),
            f"dc:{interaction.user.id}",
            reply_to=question_id,
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
            conversation_key(message.channel.id), f"dc:{message.author.id}", reply_to=question_id
        )
        return await self._service.answer(origin, question_id, text)
