"""Hostile and unlucky input, end to end (issue 12): Midjourney parameter injection, invisible
prompts, buttons pressed out of place or twice, captions for other bots, albums out of order.

The real python-telegram-bot and discord.py against the fakes, the real CometAPI client
against the fake CometAPI, a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.generation_world import (
    button_data,
    discord_custom_id,
    discord_generation_service,
    generation_service,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
OTHER = 43
GROUP = -100555
ONE_IMAGINE = {"limits": {"daily_imagine": 1}}


def submits(comet: FakeCometAPI) -> list[str]:
    return [r.path for r in comet.requests if "/submit" in r.path]


def photos(tg: FakeTelegram, chat: int) -> list[StoredMessage]:
    return [m for m in tg.messages(chat) if m.media_type == "photo"]


async def test_injected_midjourney_parameters_are_refused_before_any_quota(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, sections=ONE_IMAGINE):
            for text, reply in [
                ("/imagine a cat \u2014turbo --repeat 40 --q 4", "Please remove --turbo"),
                ("/imagine a cat \u2013fast", "Please remove --fast"),
                ("/imagine a cat --repeat 40", "Please remove --repeat"),
                ("/imagine a cat \u2014r 40", "Please remove --r"),
                ("/imagine a cat --q 4", "--q must be .25, .5 or 1"),
            ]:
                tg.inject_private_message(text, user_id=USER)
                await tg.wait_for_message(USER, reply, timeout=10)
            assert submits(comet) == []
            tg.inject_private_message("/imagine a cat \u2014ar 16:9", user_id=USER)
            await tg.wait_for(lambda: photos(tg, USER), timeout=15)  # the quota of 1 is intact
        assert comet.requests_to("/mj/submit/imagine")[0].json == {"prompt": "a cat --ar 16:9"}


async def test_speed_flags_pass_when_the_operator_allows_them(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, mj_allow_speed_flags=True):
            tg.inject_private_message("/imagine a cat \u2014turbo", user_id=USER)
            await tg.wait_for(lambda: photos(tg, USER), timeout=15)
        assert comet.requests_to("/mj/submit/imagine")[0].json == {"prompt": "a cat --turbo"}


async def test_invisible_prompts_and_messages_are_empty(tmp_path: Path) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg, sections=ONE_IMAGINE),
    ):
        tg.inject_private_message("/imagine \u200b\u200b \u2060\ufeff", user_id=USER)
        await tg.wait_for_message(USER, "Tell me what to imagine", timeout=10)
        tg.inject_private_message("/music \u200c\u200d", user_id=USER)
        await tg.wait_for_message(USER, "Describe the song", timeout=10)
        tg.inject_private_message("\u200b\u200c\u200d\u2060\ufeff", user_id=USER)
        await tg.wait_for_message(USER, "Send me some text", timeout=10)
        assert submits(comet) == [] and comet.requests_to("/v1/chat") == []
        tg.inject_private_message("/imagine a cat", user_id=USER)
        await tg.wait_for(lambda: photos(tg, USER), timeout=15)  # the quota of 1 is intact


# -- buttons: their place, their owner, one submit per press (finding 8) --------------------------


async def test_telegram_buttons_work_only_in_their_chat_for_their_owner_once(
    tmp_path: Path,
) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg),
    ):
        tg.inject_group_message(GROUP, "/imagine a paper boat", user_id=USER)
        (grid,) = await tg.wait_for(lambda: photos(tg, GROUP), timeout=15)
        tg.inject_private_message("/imagine a dog", user_id=OTHER)
        (own,) = await tg.wait_for(lambda: photos(tg, OTHER), timeout=15)
        u1 = button_data(grid, "U1")
        # another chat's token sent as callback data on a message in the forger's own chat
        forged = tg.inject_callback_query(OTHER, own.message_id, u1, user_id=OTHER)
        stranger = tg.inject_callback_query(GROUP, grid.message_id, u1, user_id=OTHER)
        await tg.wait_for(
            lambda: tg.callback(forged).answered and tg.callback(stranger).answered, timeout=10
        )
        first = tg.inject_callback_query(GROUP, grid.message_id, u1, user_id=USER)
        again = tg.inject_callback_query(GROUP, grid.message_id, u1, user_id=USER)
        await tg.wait_for(lambda: len(photos(tg, GROUP)) == 2, timeout=15)
        await tg.wait_for(
            lambda: tg.callback(first).answered and tg.callback(again).answered, timeout=10
        )
    assert tg.callback(forged).answer == {
        "text": "This button does not work here.",
        "show_alert": True,
    }
    assert tg.callback(stranger).answer == {
        "text": "Only the person who started this task can use its buttons.",
        "show_alert": True,
    }
    # the two presses are handled concurrently: either may be the one that submits
    answers = [tg.callback(first).answer or {}, tg.callback(again).answer or {}]
    assert sorted(a.get("text", "") for a in answers) == ["Already on it.", "U1: on it…"]
    assert {"text": "Already on it.", "show_alert": False} in answers
    assert len(comet.requests_to("/mj/submit/action")) == 1  # one paid submit
    assert len(photos(tg, OTHER)) == 1  # nothing posted into the forger's chat


def ephemeral(dc: FakeDiscord, inter: FakeInteraction) -> list[str]:
    return [dc.message(i).content for i in inter.followup_ids if dc.message(i).ephemeral]


async def discord_grid(dc: FakeDiscord, channel: dict[str, object]) -> FakeMessage:
    await dc.interact(dc.slash("imagine", {"prompt": "a paper boat"}, channel=channel))

    def grid() -> FakeMessage | None:
        found = [m for m in dc.messages(int(str(channel["id"]))) if m.files]
        return found[0] if found else None

    found: FakeMessage = await dc.wait_for(grid, timeout=15)
    return found


async def test_discord_buttons_work_only_in_their_channel_for_their_owner_once(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        bob = dc.make_user("bob")
        guild = dc.make_guild("Comets", channels=["art", "lounge"], members=[bob])
        async with discord_generation_service(tmp_path, comet, dc):
            await dc.guild_create(guild)
            art, lounge = dc.channel(guild, "art"), dc.channel(guild, "lounge")
            grid = await discord_grid(dc, art)
            u1 = discord_custom_id(grid, "U1")
            row = {
                "type": 1,
                "components": [{"type": 2, "style": 2, "label": "U1", "custom_id": u1}],
            }
            elsewhere = dc.seed_bot_message(int(lounge["id"]), "a copy", components=[row])
            forged = await dc.interact(dc.click(elsewhere, u1))
            stranger = await dc.interact(dc.click(grid, u1, user=bob))
            await dc.wait_for(lambda: ephemeral(dc, forged) and ephemeral(dc, stranger), 15)
            first = await dc.interact(dc.click(grid, u1))
            again = await dc.interact(dc.click(grid, u1))
            await dc.wait_for(
                lambda: len([m for m in dc.messages(int(art["id"])) if m.files]) == 2, timeout=15
            )
            await dc.wait_for(lambda: ephemeral(dc, first) or ephemeral(dc, again), timeout=15)
        assert ephemeral(dc, forged) == ["This button does not work here."]
        assert ephemeral(dc, stranger) == [
            "Only the person who started this task can use its buttons."
        ]
        # handled concurrently: either press may be the one that submits
        assert sorted([ephemeral(dc, first), ephemeral(dc, again)]) == [[], ["Already on it."]]
        assert len(comet.requests_to("/mj/submit/action")) == 1  # one paid submit
        assert [m for m in dc.messages(int(lounge["id"])) if m.files] == []


async def test_anyone_in_the_chat_may_press_when_configured(tmp_path: Path) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg, buttons_owner_only=False),
    ):
        tg.inject_group_message(GROUP, "/imagine a paper boat", user_id=USER)
        (grid,) = await tg.wait_for(lambda: photos(tg, GROUP), timeout=15)
        tg.inject_callback_query(GROUP, grid.message_id, button_data(grid, "U2"), user_id=OTHER)
        await tg.wait_for(lambda: len(photos(tg, GROUP)) == 2, timeout=15)


# -- captions for other bots (finding 9) and albums in any order (finding 12) ---------------------


async def test_a_photo_captioned_for_another_bot_is_ignored_in_a_group(tmp_path: Path) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg),
    ):
        tg.inject_photo(GROUP, b"\xff\xd8dog", caption="/imagine@otherbot a dog", user_id=USER)
        tg.inject_photo(GROUP, b"\xff\xd8two", caption="/describe@OtherBot", user_id=USER)
        mine = f"/imagine@{tg.bot_user['username']} a cat"
        tg.inject_photo(GROUP, b"\xff\xd8cat", caption=mine, user_id=USER)
        await tg.wait_for(lambda: photos(tg, GROUP), timeout=15)
    assert [r.json["prompt"] for r in comet.requests_to("/mj/submit/imagine")] == ["a cat"]
    assert comet.requests_to("/mj/submit/describe") == []
    assert all("dog" not in (m.text or m.caption or "") for m in tg.messages(GROUP))


async def test_an_album_captioned_blend_on_its_last_photo_is_blended_whole(
    tmp_path: Path,
) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg),
    ):
        album = {"media_group_id": "album-2"}
        tg.inject_photo(USER, b"\xff\xd8one", extra=album)
        tg.inject_photo(USER, b"\xff\xd8two", extra=album)
        tg.inject_photo(USER, b"\xff\xd8three", caption="/blend portrait", extra=album)
        await tg.wait_for(lambda: photos(tg, USER), timeout=15)
    (blend,) = [r.json for r in comet.requests_to("/mj/submit/blend")]
    assert blend["dimensions"] == "PORTRAIT" and len(blend["base64Array"]) == 3
    assert comet.requests_to("/v1/chat") == []  # no photo of the album answered as chat


async def test_an_album_that_is_not_a_blend_still_reaches_the_chat(tmp_path: Path) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg),
    ):
        album = {"media_group_id": "album-3"}
        tg.inject_photo(USER, b"\xff\xd8one", extra=album)
        tg.inject_photo(USER, b"\xff\xd8two", caption="what is in these?", extra=album)
        await tg.wait_for(lambda: len(comet.requests_to("/v1/chat")) == 2, timeout=15)
    assert comet.requests_to("/mj/submit/blend") == []


async def test_a_refused_users_album_is_let_go(tmp_path: Path) -> None:
    access = {"access": {"users": ["tg:1"]}}
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg, sections=access) as world,
    ):
        album = {"media_group_id": "album-4"}
        tg.inject_photo(USER, b"\xff\xd8one", caption="/blend", extra=album)
        tg.inject_photo(USER, b"\xff\xd8two", extra=album)
        await tg.wait_for_message(USER, "Sorry, this bot is private", timeout=10)
        albums = world.bot._generation._albums  # type: ignore[union-attr]
        await tg.wait_for(lambda: len(albums) == 0, timeout=5)
    assert submits(comet) == [] and len(tg.messages(USER)) == 1  # one refusal, no more
