"""The chat commands, decided once for every platform: ``/model``, ``/system``, ``/reset``,
``/stop``, ``/usage``, ``/stats`` and ``/help``.

Each method does the work and returns an :class:`Answer`: the text to say (Markdown) and,
for ``/model`` without a name on a platform with buttons, the choices to offer. Commands are
written plain (Telegram makes them clickable), model names in backticks. Telegram, Discord
and the console only parse the command and send the answer. What really differs between
them (how the bot is addressed, how a command takes its argument, whether a model is picked
from buttons, an autocompleted option or a typed name) is their :class:`Dialect`; the
wording is the same everywhere.

Showing the model or persona is open to everyone; changing them in a group is for the
group's admins and the bot's (see :class:`Changer`): with the default empty ``chat.models``
any model may be picked, however expensive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.service import ChatService
from bot.core.chat.stops import StopResult
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey

__all__ = ["Answer", "Changer", "ChatCommands", "Dialect", "ModelChoice", "Picker"]

CURRENT_MARK = "✅ "
RESET = (
    "Started a fresh conversation. Earlier messages stay stored but are no longer sent to the "
    "model."
)
PERSONA_RESTORED = "Persona restored to the default."
PERSONA_SET = "Persona set for this conversation. Use /reset to start fresh with it."


async def _not_an_admin() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Changer:
    """Who asks for ``/model NAME`` or ``/system TEXT``, and how the platform tells whether
    they administer the group (Telegram: the chat's creator or an administrator; Discord:
    Manage Messages in the channel). ``place_admin`` is awaited only when it decides: not
    in private places, not for the bot's admins, not when groups are open to everyone."""

    requester: Requester
    place_admin: Callable[[], Awaitable[bool]] = _not_an_admin


class Picker(StrEnum):
    """How a platform lets people pick a model."""

    BUTTONS = "buttons"
    """A keyboard under the ``/model`` answer (Telegram): the answer carries the choices."""
    AUTOCOMPLETE = "autocomplete"
    """The command's option autocompletes (Discord): see :meth:`ChatCommands.matching_models`."""
    TYPED = "typed"
    """The name is typed (the console): the answer lists some choices."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """What really differs between platforms in the command answers."""

    how_to_ask: str
    """The help's paragraph on how to talk to the bot here."""
    picker: Picker
    set_model: str = "/model NAME"
    set_persona: str = "/system TEXT"
    restore_persona: str = "/system default"
    more_help: str = ""
    """Appended to the help (the platform's generation commands)."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    name: str
    current: bool = False

    @property
    def label(self) -> str:
        """The button's text: the current model is marked."""
        return CURRENT_MARK + self.name if self.current else self.name


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    """Markdown (backticks around model names)."""
    choices: tuple[ModelChoice, ...] = ()
    """``/model`` on a :attr:`Picker.BUTTONS` platform: the models to offer as buttons."""


class ChatCommands:
    """The chat commands for one platform (see the module docstring)."""

    def __init__(self, chat: ChatService, gatekeeper: Gatekeeper, dialect: Dialect) -> None:
        self._chat = chat
        self._gatekeeper = gatekeeper
        self.dialect = dialect

    def help(self) -> Answer:
        d = self.dialect
        autocompletes = "; it autocompletes" if d.picker is Picker.AUTOCOMPLETE else ""
        return Answer(
            "I answer with an AI model and keep a conversation of its own for every chat, "
            "thread and DM.\n\n"
            f"{d.how_to_ask}\n"
            f"/model — show or pick the model ({d.set_model} sets it{autocompletes})\n"
            f"/system — show or set the persona ({d.set_persona} sets it, "
            f"{d.restore_persona} restores the default)\n"
            "/reset — start a fresh conversation (history stays stored)\n"
            "/stop — stop the answer being written (or press ⏹ under it)\n"
            "/usage — your use today and what is left" + d.more_help
        )

    async def reset(self, key: ConversationKey) -> Answer:
        await self._chat.reset(key)
        return Answer(RESET)

    def stop(
        self, requester: Requester, key: ConversationKey, reply: str | None = None
    ) -> StopResult:
        """``/stop``, or the ⏹ button of the answer ``reply``: the answer being written in
        ``key`` ends with its text so far, if ``requester`` asked for it or is an admin."""
        admin = self._gatekeeper.policy.is_admin(requester.user)
        return self._chat.running.stop(key, requester.user, admin=admin, reply=reply)

    async def _may_change(self, by: Changer, what: str) -> None:
        """Return if ``by`` may change this conversation's ``what``; raise if not."""
        if self._gatekeeper.policy.settings_open_to(by.requester) or await by.place_admin():
            return
        raise UserFacingError(f"Sorry, only the admins here can change the {what}.")

    async def model(self, key: ConversationKey, name: str | None = None, *, by: Changer) -> Answer:
        """With a name: set it, if ``by`` may (an unknown one raises, with suggestions).
        Without: the current model and how to pick another."""
        if name and name.strip():
            await self._may_change(by, "model")
            chosen = await self._chat.set_model(key, name)
            return Answer(f"Model set to `{chosen}` for this conversation.")
        current = await self._chat.current_model(key)
        shown = f"This conversation uses `{current}`.\n"
        d = self.dialect
        if d.picker is Picker.AUTOCOMPLETE:
            return Answer(shown + f"Pick another with {d.set_model} (it autocompletes).")
        menu = await self._chat.model_menu()
        if d.picker is Picker.TYPED:
            some = ", ".join(f"`{m}`" for m in menu)
            return Answer(shown + f"Pick another with {d.set_model}. Some choices: {some}")
        choices = tuple(ModelChoice(m, current=m == current) for m in menu)
        return Answer(shown + f"Pick another, or send {d.set_model}.", choices)

    async def matching_models(self, typed: str, size: int) -> list[str]:
        """What an autocompleting option offers: the models containing ``typed`` (those that
        start with it first), or the short menu when nothing is typed yet."""
        needle = typed.strip().lower()
        if not needle:
            return await self._chat.model_menu(size)
        models = await self._chat.available_models()
        starts = [m for m in models if m.lower().startswith(needle)]
        inside = [m for m in models if needle in m.lower() and m not in starts]
        return starts + inside

    async def system(self, key: ConversationKey, text: str | None = None, *, by: Changer) -> Answer:
        """Without text: the persona. ``default``: restore it. Anything else: set it. Both
        changes only if ``by`` may."""
        text = (text or "").strip()
        if not text:
            persona, default = await self._chat.persona(key)
            origin = "the default" if default else "set for this conversation"
            return Answer(f"Persona ({origin}):\n\n{persona}")
        await self._may_change(by, "persona")
        if text.lower() == "default":
            await self._chat.set_persona(key, None)
            return Answer(PERSONA_RESTORED)
        await self._chat.set_persona(key, text)
        return Answer(PERSONA_SET)

    async def voice(self, key: ConversationKey, arg: str | None = None, *, by: Changer) -> Answer:
        """``/voice on|off``: answers here are also spoken, or not (a change only if ``by``
        may); without an argument, the current state."""
        choice = (arg or "").strip().lower()
        if choice not in ("on", "off"):
            state = "on" if await self._chat.speaks(key) else "off"
            return Answer(f"Spoken answers are {state} here. Use /voice on or /voice off.")
        await self._may_change(by, "voice setting")
        await self._chat.set_voice(key, choice == "on")
        if choice == "on":
            return Answer("Answers here will also come as voice messages.")
        return Answer("Answers here will be text only.")

    async def usage(self, requester: Requester) -> Answer:
        return Answer(await self._gatekeeper.usage_text(requester))

    async def stats(self, requester: Requester) -> Answer:
        """Admins only (anyone else is refused with a :class:`UserFacingError`)."""
        return Answer(await self._gatekeeper.stats_text(requester))
