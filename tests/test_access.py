"""Access policy: allow-lists of users and places, the block list, admins, polite refusals."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.core.access.policy import AccessDenied, AccessPolicy, AdminOnly, RefusalNotices, Requester
from bot.core.errors import UserFacingError
from bot.core.models import Platform, qualify

TG, DC = Platform.TELEGRAM, Platform.DISCORD


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("BOT_"):
            monkeypatch.delenv(key)


def allows(policy: AccessPolicy, requester: Requester) -> bool:
    """``policy.check`` as a boolean."""
    try:
        policy.check(requester)
    except AccessDenied:
        return False
    return True


def tg_dm(user: str) -> Requester:
    return Requester(TG, user, chat=user, is_private=True)


def tg_group(user: str, chat: str = "-100") -> Requester:
    return Requester(TG, user, chat=chat)


def dc_channel(
    user: str, channel: str = "10", guild: str = "1", parent: str | None = None
) -> Requester:
    return Requester(DC, user, chat=channel, guild=guild, parent=parent)


def dc_dm(user: str) -> Requester:
    return Requester(DC, user, chat="999", is_private=True)


def test_everything_is_open_by_default() -> None:
    policy = AccessPolicy()
    for requester in (tg_dm("1"), tg_group("1"), dc_channel("2"), dc_dm("2")):
        policy.check(requester)


def test_user_ids_are_platform_qualified() -> None:
    assert qualify(TG, 42) == "tg:42"
    assert qualify(DC, "dc:7") == "dc:7"  # already qualified: as is
    assert qualify(Platform.CONSOLE, "operator") == "console:operator"
    assert Requester(TG, "42", chat="42").user == "tg:42"
    assert Requester(TG, "tg:42", chat="42").user == "tg:42"
    # A Telegram id never matches a Discord entry with the same digits.
    policy = AccessPolicy.build(users=["dc:42"])
    assert not allows(policy, tg_dm("42"))
    assert allows(policy, dc_dm("42"))


def test_users_alone_make_the_bot_private_everywhere() -> None:
    policy = AccessPolicy.build(users=["tg:1", "dc:2"])
    assert allows(policy, tg_dm("1"))
    assert allows(policy, tg_group("1"))
    assert allows(policy, dc_channel("2"))
    assert not allows(policy, tg_dm("3"))
    assert not allows(policy, tg_group("3"))
    assert not allows(policy, dc_channel("3"))
    assert not allows(policy, dc_dm("3"))


def test_a_listed_telegram_chat_is_open_to_everyone_in_it() -> None:
    policy = AccessPolicy.build(telegram_chats=[-100])
    assert allows(policy, tg_group("7", chat="-100"))
    assert not allows(policy, tg_group("7", chat="-200"))
    # No user list: private chats stay open; Discord has no place lists, so it is open too.
    assert allows(policy, tg_dm("7"))
    assert allows(policy, dc_channel("8"))


def test_group_for_everyone_and_dms_for_listed_users() -> None:
    policy = AccessPolicy.build(users=["tg:1"], telegram_chats=["-100"])
    assert allows(policy, tg_group("5", chat="-100"))
    assert allows(policy, tg_dm("1"))
    assert not allows(policy, tg_dm("5"))
    # A listed user does not open an unlisted group.
    assert not allows(policy, tg_group("1", chat="-200"))


def test_discord_place_lists_must_all_match() -> None:
    guilds = AccessPolicy.build(discord_guilds=["1"])
    assert allows(guilds, dc_channel("5", guild="1"))
    assert not allows(guilds, dc_channel("5", guild="2"))

    channels = AccessPolicy.build(discord_channels=["10"])
    assert allows(channels, dc_channel("5", channel="10", guild="7"))
    assert not allows(channels, dc_channel("5", channel="11"))
    # A thread matches through its parent channel.
    assert allows(channels, dc_channel("5", channel="555", parent="10"))

    both = AccessPolicy.build(discord_guilds=["1"], discord_channels=["10"])
    assert allows(both, dc_channel("5", channel="10", guild="1"))
    assert not allows(both, dc_channel("5", channel="11", guild="1"))
    assert not allows(both, dc_channel("5", channel="10", guild="2"))
    # Telegram has no place lists here: open.
    assert allows(both, tg_group("5"))


def test_admins_always_pass_and_blocked_users_never_do() -> None:
    policy = AccessPolicy.build(
        users=["tg:1"],
        telegram_chats=["-100"],
        discord_guilds=["1"],
        blocked_users=["tg:6", "tg:9"],
        admins=["tg:9"],
    )
    assert allows(policy, tg_group("9", chat="-555"))
    assert allows(policy, dc_channel("9", guild="2")) is False  # dc:9 is not tg:9
    assert allows(policy, tg_dm("9"))  # admin beats the block list
    with pytest.raises(AccessDenied) as info:
        policy.check(tg_group("6", chat="-100"))
    assert info.value.reason == "blocked"
    assert allows(AccessPolicy.build(blocked_users=["dc:3"]), dc_dm("3")) is False


def test_the_console_is_always_allowed_and_admin() -> None:
    policy = AccessPolicy.build(users=["tg:1"], telegram_chats=["-1"])
    console = Requester(Platform.CONSOLE, "console", chat="local", is_private=True)
    policy.check(console)
    policy.require_admin(console, "/stats")


def test_refusals_are_one_polite_line_with_the_id_to_send() -> None:
    policy = AccessPolicy.build(users=["tg:1"], telegram_chats=["-100"])
    with pytest.raises(UserFacingError) as user_info:
        policy.check(tg_dm("77"))
    assert isinstance(user_info.value, AccessDenied)
    assert user_info.value.reason == "user"
    assert "tg:77" in user_info.value.message
    with pytest.raises(AccessDenied) as place_info:
        policy.check(tg_group("77", chat="-300"))
    assert place_info.value.reason == "place"
    assert "-300" in place_info.value.message
    for message in (user_info.value.message, place_info.value.message):
        assert "\n" not in message
        assert message.startswith("Sorry")


def test_admin_only_commands() -> None:
    policy = AccessPolicy.build(admins=["dc:5"])
    policy.require_admin(dc_channel("5"), "/stats")
    with pytest.raises(AdminOnly, match=r"only the bot's admins can use /stats"):
        policy.require_admin(dc_channel("6"), "/stats")
    assert policy.is_admin("dc:5")
    assert not policy.is_admin("tg:5")


def test_policy_from_settings_accepts_ints_and_env_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_ACCESS__USERS", "tg:1, dc:2")
    settings = Settings(access={"telegram_chats": [-1001234567890], "admins": ["tg:9"]})
    access = settings.access
    assert access.users == ["tg:1", "dc:2"]
    assert access.telegram_chats == ["-1001234567890"]
    policy = AccessPolicy.build(
        users=access.users, telegram_chats=access.telegram_chats, admins=access.admins
    )
    assert allows(policy, tg_group("5", chat="-1001234567890"))


@pytest.mark.parametrize(
    ("key", "value"),
    [("users", ["123"]), ("admins", ["telegram:1"]), ("discord_guilds", ["abc"])],
)
def test_malformed_ids_are_refused_at_start(key: str, value: list[str]) -> None:
    with pytest.raises(ValidationError, match="entries look like"):
        Settings(access={key: value})


def test_refusal_notices_are_rate_limited_per_user_and_place() -> None:
    notices = RefusalNotices(interval=60.0)
    spammer = tg_group("6", chat="-100")
    assert notices.should_notify(spammer, 0.0)
    assert not notices.should_notify(spammer, 30.0)
    assert notices.should_notify(tg_group("6", chat="-200"), 30.0)  # another place
    assert notices.should_notify(tg_group("7", chat="-100"), 30.0)  # another user
    assert notices.should_notify(spammer, 60.0)
