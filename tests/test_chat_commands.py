"""ChatCommands: /model, /system, /reset, /usage, /stats and /help decided once, for every
platform (a scripted model, a real in-memory store; no platform library)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.limits import Limits, LimitsConfig
from bot.core.access.policy import AccessPolicy, AdminOnly, Requester
from bot.core.chat.commands import Changer, ChatCommands, Dialect, ModelChoice, Picker
from bot.core.chat.service import ChatConfig, ChatService
from bot.core.errors import UserFacingError
from bot.core.lifecycle import WorkGate
from bot.core.models import ConversationKey, Platform
from bot.core.telemetry import NullTelemetry
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.test_chat_service import ScriptedModel

KEY = ConversationKey(Platform.TELEGRAM, "42")
ALICE = Requester(Platform.TELEGRAM, "42", chat="42", is_private=True)
BY_ALICE = Changer(ALICE)
BUTTONS = Dialect(how_to_ask="Just write to me.", picker=Picker.BUTTONS)


@dataclass
class Rig:
    chat: ChatService
    gatekeeper: Gatekeeper
    store: Store

    def commands(self, dialect: Dialect = BUTTONS) -> ChatCommands:
        return ChatCommands(self.chat, self.gatekeeper, dialect)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    async with Store.open(":memory:") as store:
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="Be brief.")
        chat = ChatService(model=ScriptedModel(clock), store=store, config=config)
        gatekeeper = Gatekeeper(
            policy=AccessPolicy.build(admins=["tg:1"]),
            limits=Limits(LimitsConfig(), store),
            gate=WorkGate(),
            stats=store,
            telemetry=NullTelemetry(),
            clock=clock,
        )
        yield Rig(chat, gatekeeper, store)


async def test_model_without_a_name_offers_the_menu_with_the_current_one_marked(rig: Rig) -> None:
    answer = await rig.commands().model(KEY, by=BY_ALICE)
    assert answer.text == (
        "This conversation uses `gpt-4o-mini`.\nPick another, or send /model NAME."
    )
    assert ModelChoice("gpt-4o-mini", current=True) in answer.choices
    assert ModelChoice("gpt-4o") in answer.choices
    marked = [c.label for c in answer.choices if c.current]
    assert marked == ["✅ gpt-4o-mini"]


async def test_model_with_a_name_sets_it_and_an_unknown_one_is_refused(rig: Rig) -> None:
    commands = rig.commands()
    answer = await commands.model(KEY, " gpt-4o ", by=BY_ALICE)
    assert answer.text == "Model set to `gpt-4o` for this conversation."
    assert answer.choices == ()
    assert await rig.chat.current_model(KEY) == "gpt-4o"
    with pytest.raises(UserFacingError, match="Unknown model 'gpt-5'"):
        await commands.model(KEY, "gpt-5", by=BY_ALICE)
    shown = await commands.model(KEY, "  ", by=BY_ALICE)  # a blank name shows the model
    assert shown.text.startswith("This conversation uses `gpt-4o`.")


async def test_each_picker_says_how_to_pick_another_model(rig: Rig) -> None:
    autocomplete = Dialect("x", Picker.AUTOCOMPLETE, set_model="/model name")
    answer = await rig.commands(autocomplete).model(KEY, by=BY_ALICE)
    assert answer.text.endswith("Pick another with /model name (it autocompletes).")
    assert answer.choices == ()  # the option autocompletes; nothing to fetch
    typed = await rig.commands(Dialect("x", Picker.TYPED)).model(KEY, by=BY_ALICE)
    assert "Some choices: `gpt-4o-mini`, `gpt-4o`" in typed.text
    assert typed.choices == ()


async def test_matching_models_puts_prefix_matches_first(rig: Rig) -> None:
    commands = rig.commands()  # the model lists gpt-4o, gpt-4o-mini and some-rare-model
    assert await commands.matching_models("GPT-4O", 25) == ["gpt-4o", "gpt-4o-mini"]
    assert await commands.matching_models("o", 25) == ["gpt-4o", "gpt-4o-mini", "some-rare-model"]
    assert await commands.matching_models("", 2) == ["gpt-4o-mini", "gpt-4o"]  # the menu
    config = ChatConfig("gpt-4o-mini", "Be brief.", models=("gpt-4o-mini", "mini-max", "o3-mini"))
    listed = ChatService(model=ScriptedModel(FakeClock()), store=rig.store, config=config)
    matching = ChatCommands(listed, rig.gatekeeper, BUTTONS).matching_models("MINI", 25)
    assert await matching == ["mini-max", "gpt-4o-mini", "o3-mini"]


async def test_system_shows_sets_and_restores_the_persona(rig: Rig) -> None:
    commands = rig.commands()
    assert (await commands.system(KEY, by=BY_ALICE)).text == "Persona (the default):\n\nBe brief."
    set_answer = await commands.system(KEY, "  You are a pirate. ", by=BY_ALICE)
    assert (
        set_answer.text == "Persona set for this conversation. Use /reset to start fresh with it."
    )
    shown = await commands.system(KEY, "", by=BY_ALICE)
    assert shown.text == "Persona (set for this conversation):\n\nYou are a pirate."
    restored = await commands.system(KEY, "Default", by=BY_ALICE)
    assert restored.text == "Persona restored to the default."
    assert await rig.chat.persona(KEY) == ("Be brief.", True)


async def test_reset_starts_a_fresh_conversation(rig: Rig) -> None:
    answer = await rig.commands().reset(KEY)
    assert answer.text.startswith("Started a fresh conversation.")


async def test_usage_is_for_everyone_and_stats_for_admins(rig: Rig) -> None:
    commands = rig.commands()
    assert "today" in (await commands.usage(ALICE)).text.lower()
    with pytest.raises(AdminOnly):
        await commands.stats(ALICE)
    admin = Requester(Platform.TELEGRAM, "1", chat="1", is_private=True)
    assert "Users:" in (await commands.stats(admin)).text


def test_help_is_one_wording_with_the_platforms_own_parts(rig: Rig) -> None:
    telegram = rig.commands(
        Dialect("Mention me in groups.", Picker.BUTTONS, more_help="\n\nGenerate: /imagine")
    ).help()
    discord = rig.commands(
        Dialect(
            "Mention me in servers.",
            Picker.AUTOCOMPLETE,
            set_model="/model name",
            set_persona="/system text",
            restore_persona="/system text: default",
        )
    ).help()
    assert "Mention me in groups." in telegram.text
    assert telegram.text.endswith("Generate: /imagine")
    assert "/model — show or pick the model (/model NAME sets it)" in telegram.text
    assert "(/model name sets it; it autocompletes)" in discord.text
    assert "/system text: default restores the default" in discord.text
    common = "/reset — start a fresh conversation (history stays stored)"
    assert common in telegram.text and common in discord.text


GROUP_KEY = ConversationKey(Platform.TELEGRAM, "-100")


def member(user: str, *, admin_of_group: bool = False) -> tuple[Changer, list[str]]:
    """A group member asking, and the record of each time the platform was asked about them."""
    asked: list[str] = []

    async def place_admin() -> bool:
        asked.append(user)
        return admin_of_group

    return Changer(Requester(Platform.TELEGRAM, user, chat="-100"), place_admin), asked


async def test_in_groups_only_admins_change_the_model_and_persona(rig: Rig) -> None:
    commands = rig.commands()
    plain, asked = member("7")
    shown = await commands.model(GROUP_KEY, by=plain)  # showing stays open
    assert shown.text.startswith("This conversation uses `gpt-4o-mini`.")
    assert (await commands.system(GROUP_KEY, by=plain)).text.startswith("Persona (the default)")
    assert asked == []  # nobody was asked about a look
    with pytest.raises(UserFacingError, match="only the admins here can change the model"):
        await commands.model(GROUP_KEY, "gpt-4o", by=plain)
    with pytest.raises(UserFacingError, match="only the admins here can change the persona"):
        await commands.system(GROUP_KEY, "You are a pirate.", by=plain)
    with pytest.raises(UserFacingError, match="persona"):
        await commands.system(GROUP_KEY, "default", by=plain)
    assert asked == ["7", "7", "7"]
    assert await rig.chat.current_model(GROUP_KEY) == "gpt-4o-mini"
    group_admin, _ = member("8", admin_of_group=True)
    await commands.model(GROUP_KEY, "gpt-4o", by=group_admin)
    await commands.system(GROUP_KEY, "You are a pirate.", by=group_admin)
    bot_admin, asked_about_bot_admin = member("1")  # access.admins = ["tg:1"]
    await commands.model(GROUP_KEY, "gpt-4o-mini", by=bot_admin)
    assert asked_about_bot_admin == []
    assert await rig.chat.current_model(GROUP_KEY) == "gpt-4o-mini"
    assert await rig.chat.persona(GROUP_KEY) == ("You are a pirate.", False)


async def test_group_settings_for_everyone_lets_any_member_change_them(rig: Rig) -> None:
    policy = AccessPolicy.build(admins=["tg:1"], group_settings_open=True)
    gatekeeper = Gatekeeper(
        policy=policy,
        limits=rig.gatekeeper.limits,
        gate=WorkGate(),
        stats=rig.store,
        telemetry=NullTelemetry(),
        clock=FakeClock(),
    )
    commands = ChatCommands(rig.chat, gatekeeper, BUTTONS)
    plain, asked = member("7")
    await commands.model(GROUP_KEY, "gpt-4o", by=plain)
    assert await rig.chat.current_model(GROUP_KEY) == "gpt-4o"
    assert asked == []
