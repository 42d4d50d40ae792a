"""Chat on Discord, end to end: the real discord.py against the fake Discord (REST + gateway,
rate limits on), the real CometAPI client against the fake CometAPI, a real SQLite file.

The bot is pointed at the fake through ``[discord] api_base_url``/``gateway_url`` (see
``tests.world.discord_service``), not by patching discord.py.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from typing import Any

import discord
import pytest
from pydantic import SecretStr

from bot.app import run_service
from bot.core.chat.markdown import split_markdown, utf16_len
from bot.core.errors import MessageGone, RetryLater, SurfaceError
from bot.core.models import ConversationKey
from bot.launch import StartupError
from bot.platforms.discord import bot as discord_adapter
from bot.platforms.discord.messages import conversation_key
from bot.platforms.discord.surface import translate
from tests.fakes.cometapi import FakeCometAPI, tiny_png
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.discord_payloads import EVERYONE_PERMISSIONS, JSON, make_member
from tests.world import (
    DiscordService,
    chat_requests,
    discord_service,
    discord_settings_for,
    history_of,
)

pytestmark = pytest.mark.e2e

WAIT = 15.0


# -- helpers ------------------------------------------------------------------------------------


def assert_no_pings(dc: FakeDiscord) -> None:
    """Every message the bot sent or edited carried allowed_mentions {"parse": []}."""
    checked = 0
    for call in dc.calls():
        body: Any = call.body
        if "/callback" in call.path and isinstance(body, dict):
            body = body.get("data") or {}
        if isinstance(body, dict) and body.get("content"):
            checked += 1
            assert body.get("allowed_mentions", {}).get("parse") == [], call
    assert checked
    for message in dc.messages(include_deleted=True):
        assert message.pinged_user_ids() == [] and not message.pings_everyone(), message


def no_429s_except(dc: FakeDiscord, scripted: int = 0) -> None:
    assert sum(dc.ratelimit_hits.values()) == scripted, dc.ratelimit_hits


def fences_balanced(text: str) -> bool:
    return len(re.findall(r"^[ \t]*```", text, re.MULTILINE)) % 2 == 0


def original(dc: FakeDiscord, inter: FakeInteraction) -> FakeMessage:
    return dc.message(inter.original_message_id or 0)


def interaction_messages(dc: FakeDiscord, inter: FakeInteraction) -> list[FakeMessage]:
    return [original(dc, inter), *(dc.message(i) for i in inter.followup_ids)]


async def shows(dc: FakeDiscord, channel_id: int, text: str) -> FakeMessage:
    """Waits until the bot's last message in the channel reads exactly ``text``."""

    def done() -> FakeMessage | None:
        last = dc.last_message(channel_id)
        return last if last is not None and last.content == text else None

    message: FakeMessage = await dc.wait_for(done, timeout=WAIT)
    return message


async def shows_in_original(dc: FakeDiscord, inter: FakeInteraction, text: str) -> FakeMessage:
    message: FakeMessage = await dc.wait_for(
        lambda: original(dc, inter).content == text and original(dc, inter), timeout=WAIT
    )
    return message


async def stored_turns(svc: DiscordService, key: ConversationKey, count: int) -> int:
    """Waits for the answer to be stored (right after its final edit); the turns in context."""
    for _ in range(200):
        stored = len(await svc.core.store.recent_turns(key, limit=100))
        if stored >= count:
            return stored
        await asyncio.sleep(0.02)
    return len(await svc.core.store.recent_turns(key, limit=100))


def guild_with(dc: FakeDiscord, *channels: str, threads: tuple[str, ...] = ()) -> JSON:
    return dc.make_guild("Comets", channels=list(channels), threads=list(threads))


def questions(comet: FakeCometAPI) -> list[str]:
    return [str(history_of(r)[-1][1]) for r in chat_requests(comet)]


# -- streaming ----------------------------------------------------------------------------------


async def test_dm_streams_the_exact_answer_and_pings_nobody(tmp_path: Path) -> None:
    tokens = [f"word{i} " for i in range(24)] + ["**done**."]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=tokens, delay=0.06)  # ~1.5 s of streaming
        async with discord_service(tmp_path, comet, dc) as svc:
            sent = await dc.say("Count for me")
            dm = int(sent["channel_id"])
            await shows(dc, dm, answer)
            assert await stored_turns(svc, conversation_key(dm), 2) == 2
        (message,) = dc.messages(dm)
        assert message.content == answer
        assert message.edit_count >= 1 and message.history[0] != answer  # it grew while streaming
        assert message.message_reference is None  # DMs get plain messages, not replies
        assert dc.typing.get(dm, 0) == 0  # the words came at once: no typing request spent
        assert history_of(chat_requests(comet)[0])[-1] == ("user", "Count for me")
        assert_no_pings(dc)
        no_429s_except(dc, 0)
        assert dc.errors == []


async def test_typing_shows_while_the_first_words_are_slow(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=["Thinking ", "done."], delay=1.6)
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("a hard one")
            dm = int(sent["channel_id"])
            await shows(dc, dm, "Thinking done.")
            typing_before_text = dc.typing.get(dm, 0)
        assert typing_before_text == 1  # after 1 s without text, once (Discord shows it 10 s)


async def test_slash_chat_is_deferred_then_streams_into_the_original_response(
    tmp_path: Path,
) -> None:
    tokens = [f"part{i} " for i in range(20)] + ["end."]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=tokens, delay=0.06)
        async with discord_service(tmp_path, comet, dc):
            assert {"chat", "reset", "model", "system", "help"} <= {
                c["name"] for c in dc.commands()
            }
            inter = await dc.interact(dc.slash("chat", {"prompt": "Tell me a story"}))
            message = await shows_in_original(dc, inter, answer)
        # acknowledged first, as a deferred "thinking" response; the fake refuses a late ack
        # (10062), so no error means it came within Discord's 3 s
        assert dc.interaction_responses(inter.id)[0] == {"type": 5}
        paths = [c.path for c in dc.calls()]
        first_webhook = next(i for i, p in enumerate(paths) if "/webhooks/" in p)
        assert any("/callback" in p for p in paths[:first_webhook])  # acked before answering
        assert message.history[0] == "" and message.edit_count >= 2  # streamed by edits
        assert not message.loading and inter.followup_ids == []
        edits = dc.calls("PATCH", "/messages/@original")
        assert len(edits) == message.edit_count and all(c.status == 200 for c in edits)
        assert history_of(chat_requests(comet)[0])[-1] == ("user", "Tell me a story")
        assert_no_pings(dc)
        no_429s_except(dc, 0)
        assert dc.errors == []


async def test_long_answer_continues_in_followups_within_limits_and_fences(tmp_path: Path) -> None:
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 9 for i in range(12))
    code = "```python\n" + "\n".join(f"print('line {i:03}')" for i in range(150)) + "\n```"
    answer = prose[:1200] + "\n\n" + code + "\n\n" + prose[:2100]
    assert 5800 < len(answer) < 6400
    expected = split_markdown(answer, 2000)
    assert len(expected) >= 4
    assert any(  # the code block crosses a message boundary
        a.rstrip().endswith("```") and b.startswith("```python\n")
        for a, b in itertools.pairwise(expected)
    )
    chunks = [answer[i : i + 150] for i in range(0, len(answer), 150)]
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=chunks, delay=0.02)
        async with discord_service(tmp_path, comet, dc):
            inter = await dc.interact(dc.slash("chat", {"prompt": "write a lot"}))
            await dc.wait_for(
                lambda: [m.content for m in interaction_messages(dc, inter)] == expected,
                timeout=WAIT * 2,
            )
        messages = interaction_messages(dc, inter)
        assert len(messages) == len(expected) >= 4
        for message in messages:
            assert 1 <= len(message.content) <= 2000
            assert fences_balanced(message.content), message.content[-200:]
        # the code block was cut: it is closed at the end of one message and reopened after
        assert any(
            a.content.endswith("```") and b.content.startswith("```python\n")
            for a, b in itertools.pairwise(messages)
        )
        code_lines = [line for m in messages for line in m.content.splitlines() if "print(" in line]
        assert code_lines == [f"print('line {i:03}')" for i in range(150)]
        assert_no_pings(dc)
        no_429s_except(dc, 0)
        assert dc.errors == []


async def test_429_on_an_edit_is_waited_out_and_the_final_text_arrives(tmp_path: Path) -> None:
    tokens = [f"t{i} " for i in range(20)]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.script_chat(tokens=tokens, delay=0.05)
        dc.fail_next(dm, retry_after=0.5, method="PATCH")
        async with discord_service(tmp_path, comet, dc):
            await dc.say("go")
            await shows(dc, dm, answer)
        patches = dc.calls("PATCH", f"/channels/{dm}/messages/")
        assert [c.status for c in patches][:2] == [429, 200]  # discord.py slept and retried
        no_429s_except(dc, 1)
        assert dc.errors == []
        assert dc.messages(dm)[-1].content == answer


async def test_429_discord_py_gives_up_on_pauses_the_channel_then_resumes(tmp_path: Path) -> None:
    tokens = [f"t{i} " for i in range(20)]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.script_chat(tokens=tokens, delay=0.05)
        # five 429s in a row: discord.py's own retries run out and the 429 surfaces
        dc.fail_next(dm, retry_after=0.2, method="PATCH", times=5)
        async with discord_service(tmp_path, comet, dc) as svc:
            await dc.say("go")
            await shows(dc, dm, answer)
            assert svc.pacer.blocked_until(str(dm)) > float("-inf")  # the core paused the lane
        no_429s_except(dc, 5)
        assert dc.errors == []


# -- who is answered, and which conversation ----------------------------------------------------


async def test_guild_answers_mentions_and_replies_only(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = guild_with(dc, "general")
        general = dc.channel(guild, "general")
        gid = int(general["id"])
        async with discord_service(tmp_path, comet, dc):
            await dc.say("just chatting among ourselves", channel=general)
            ping = await dc.say("what do you think", channel=general, mention_bot=True)
            first = await dc.wait_for(lambda: dc.last_message(gid), timeout=WAIT)
            await shows(dc, gid, "Echo: [Alice] what do you think")  # the fake echoes
            # a reply to the bot without a ping still addresses it
            reply = dc.user_message("and a follow-up", channel=general, reply_to=first)
            reply["mentions"] = []
            await dc.push_message(reply)
            await dc.wait_for(lambda: len(dc.messages(gid)) == 2, timeout=WAIT)
            await dc.say("more idle talk", channel=general)
            await dc.say("last one", channel=general, mention_bot=True)
            await dc.wait_for(lambda: len(dc.messages(gid)) == 3, timeout=WAIT)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 3, timeout=WAIT)
        assert [q.split("] ", 1)[1] for q in questions(comet)] == [
            "what do you think",
            "and a follow-up",
            "last one",
        ]
        assert all(q.startswith("[Alice] ") for q in questions(comet))  # speakers are named
        assert first.message_reference is not None
        assert first.message_reference["message_id"] == ping["id"]  # it answers as a reply
        assert first.allowed_mentions == {"parse": [], "replied_user": False}
        assert_no_pings(dc)
        no_429s_except(dc, 0)


async def test_a_thread_is_its_own_conversation(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = guild_with(dc, "general", threads=("ideas",))
        general, ideas = dc.channel(guild, "general"), dc.channel(guild, "ideas")
        async with discord_service(tmp_path, comet, dc):
            await dc.say("channel question", channel=general, mention_bot=True)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=WAIT)
            await shows(dc, int(general["id"]), "Echo: [Alice] channel question")
            await dc.say("thread question", channel=ideas, mention_bot=True)
            await shows(dc, int(ideas["id"]), "Echo: [Alice] thread question")
            await dc.say("thread again", channel=ideas, mention_bot=True)
            await dc.wait_for(lambda: len(dc.messages(int(ideas["id"]))) == 2, timeout=WAIT)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 3, timeout=WAIT)
        roles = [[role for role, _ in history_of(r)] for r in chat_requests(comet)]
        assert roles[1] == ["system", "user"]  # nothing from the channel leaked into the thread
        assert roles[2] == ["system", "user", "assistant", "user"]
        assert "channel question" not in str(history_of(chat_requests(comet)[2]))


async def test_reset_is_per_channel(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = guild_with(dc, "general", "random")
        general, rand = dc.channel(guild, "general"), dc.channel(guild, "random")
        async with discord_service(tmp_path, comet, dc) as svc:
            for channel, text in ((general, "first here"), (rand, "first there")):
                await dc.say(text, channel=channel, mention_bot=True)
                await stored_turns(svc, conversation_key(channel["id"]), 2)
            inter = await dc.interact(dc.slash("reset", channel=general))
            await dc.wait_for(lambda: "fresh conversation" in original(dc, inter).content)
            for channel, text, in_context in (
                (general, "second here", 2),
                (rand, "second there", 4),
            ):
                await dc.say(text, channel=channel, mention_bot=True)
                await stored_turns(svc, conversation_key(channel["id"]), in_context)
            stored = await stored_turns(svc, conversation_key(general["id"]), 2)
        here, there = (history_of(r) for r in chat_requests(comet)[2:])
        assert [role for role, _ in here] == ["system", "user"]
        assert [role for role, _ in there] == ["system", "user", "assistant", "user"]
        assert stored == 2  # the turns before the reset are out of context
        assert dc.interaction_responses(inter.id)[0] == {"type": 5}


# -- commands -----------------------------------------------------------------------------------


async def test_model_autocompletes_refuses_unknown_names_and_sets_the_model(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        async with discord_service(tmp_path, comet, dc):
            typed = await dc.interact(dc.autocomplete("model", "name", "GPT-4O"))
            offered = await dc.interact(dc.autocomplete("model", "name", ""))
            await dc.wait_for(lambda: typed.choices is not None and offered.choices is not None)
            shown = await dc.interact(dc.slash("model"))
            await dc.wait_for(lambda: "gpt-4o-mini" in original(dc, shown).content)
            bad = await dc.interact(dc.slash("model", {"name": "no-such-model"}))
            await dc.wait_for(lambda: "Unknown model" in original(dc, bad).content)
            good = await dc.interact(dc.slash("model", {"name": "gpt-4o"}))
            await dc.wait_for(
                lambda: "Model set to `gpt-4o` for this conversation." in original(dc, good).content
            )
            await dc.say("which model?")
            await dc.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=WAIT)
        assert [c["value"] for c in typed.choices or []] == ["gpt-4o", "gpt-4o-mini"]
        assert all(c["name"] == c["value"] for c in typed.choices or [])
        assert 0 < len(offered.choices or []) <= 25
        assert dc.interaction_responses(typed.id)[0]["type"] == 8
        assert "Traceback" not in original(dc, bad).content
        assert chat_requests(comet)[0]["model"] == "gpt-4o"


async def test_system_shows_sets_and_restores_the_persona(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        async with discord_service(tmp_path, comet, dc, system_prompt="Default persona."):
            shown = await dc.interact(dc.slash("system"))
            await dc.wait_for(lambda: "Default persona." in original(dc, shown).content)
            pirate = await dc.interact(dc.slash("system", {"text": "You are a pirate."}))
            await dc.wait_for(lambda: "Persona set" in original(dc, pirate).content)
            await dc.say("ahoy")
            await dc.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=WAIT)
            restored = await dc.interact(dc.slash("system", {"text": "default"}))
            await dc.wait_for(lambda: "restored" in original(dc, restored).content)
            helped = await dc.interact(dc.slash("help"))
            await dc.wait_for(lambda: helped.acked)
        assert history_of(chat_requests(comet)[0])[0] == ("system", "You are a pirate.")
        help_message = original(dc, helped)
        assert help_message.ephemeral and "/reset" in help_message.content
        assert dc.errors == []


async def test_in_servers_only_members_who_manage_messages_change_model_and_persona(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        general = dc.channel(guild_with(dc, "general"), "general")
        key = conversation_key(general["id"])
        bob = dc.make_user("bob")
        plain = make_member(bob, permissions=EVERYONE_PERMISSIONS)  # no Manage Messages
        async with discord_service(tmp_path, comet, dc) as svc:
            refused = await dc.interact(
                dc.slash("model", {"name": "gpt-4o"}, user=bob, channel=general, member=plain)
            )
            await dc.wait_for(lambda: "only the admins here" in original(dc, refused).content)
            persona = await dc.interact(
                dc.slash("system", {"text": "A pirate."}, user=bob, channel=general, member=plain)
            )
            await dc.wait_for(lambda: "change the persona" in original(dc, persona).content)
            shown = await dc.interact(dc.slash("model", user=bob, channel=general, member=plain))
            await dc.wait_for(lambda: "gpt-4o-mini" in original(dc, shown).content)
            assert await svc.core.chat.current_model(key) == "gpt-4o-mini"
            # the fake gives a member every permission unless told otherwise
            allowed = await dc.interact(dc.slash("model", {"name": "gpt-4o"}, channel=general))
            await dc.wait_for(lambda: "Model set to `gpt-4o`" in original(dc, allowed).content)
            mine = await dc.interact(dc.slash("model", {"name": "gpt-4o"}, user=bob))  # a DM
            await dc.wait_for(lambda: "Model set to `gpt-4o`" in original(dc, mine).content)
            assert await svc.core.chat.current_model(key) == "gpt-4o"
            assert (await svc.core.chat.persona(key))[1] is True  # still the default


async def test_image_attachment_goes_to_the_model_and_other_files_are_refused(
    tmp_path: Path,
) -> None:
    png = tiny_png()
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        async with discord_service(tmp_path, comet, dc):
            notes = dc.add_attachment(dm, "notes.zip", b"PK\x03\x04", "application/zip")
            await dc.say("read this", attachments=[notes])
            await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
            image = dc.add_attachment(dm, "comet.png", png, "image/png")
            await dc.say("what is this?", attachments=[image])
            await dc.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=WAIT)
            await dc.wait_for(lambda: len(dc.messages(dm)) == 2, timeout=WAIT)
        refusal = dc.messages(dm)[0].content
        assert "only read text files and PDFs" in refusal and "notes.zip" in refusal
        content = chat_requests(comet)[0]["messages"][-1]["content"]
        assert content[0] == {"type": "text", "text": "what is this?"}
        assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


# -- failures -----------------------------------------------------------------------------------


async def test_upstream_401_gives_a_plain_sentence_without_the_key(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.fail_next(2, 401, path_prefix="/v1/chat", message=f"Invalid token {comet.api_key}")
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("hello?")
            dm = int(sent["channel_id"])
            message = await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
            inter = await dc.interact(dc.slash("chat", {"prompt": "and now?"}))
            await dc.wait_for(lambda: "refused" in original(dc, inter).content, timeout=WAIT)
        for text in (message.content, original(dc, inter).content):
            assert "CometAPI key was refused" in text
            assert comet.api_key not in text
            assert "Traceback" not in text and "Error" not in text
        assert len(comet.requests_to("/v1/chat")) == 2  # 401 is never retried


async def test_stream_cut_midway_leaves_the_partial_text_and_a_note(tmp_path: Path) -> None:
    tokens = ["The answer ", "is long ", "and then"]
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=[*tokens, " more"] * 2, cut_after=3)
        async with discord_service(tmp_path, comet, dc) as svc:
            sent = await dc.say("explain")
            dm = int(sent["channel_id"])
            await dc.wait_for(
                lambda: any("stopped early" in m.content for m in dc.messages(dm)), timeout=WAIT
            )
            await stored_turns(svc, conversation_key(dm), 2)
            turns = await svc.core.store.recent_turns(conversation_key(dm), limit=10)
        text = dc.messages(dm)[-1].content
        assert text.startswith("The answer is long and then\n\n⚠️")
        assert "cut off" in text
        assert [t.content for t in turns] == ["explain", "The answer is long and then"]


async def test_the_model_cannot_ping_anyone(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = guild_with(dc, "general")
        general = dc.channel(guild, "general")
        gid = int(general["id"])
        answer = f"Hey @everyone and @here, look <@{dc.user['id']}> <@&{guild['id']}>!"
        comet.script_chat(tokens=[answer[:20], answer[20:]])
        comet.script_chat(tokens=[answer])
        async with discord_service(tmp_path, comet, dc):
            await dc.say("ping them", channel=general, mention_bot=True)
            message = await shows(dc, gid, answer)
            inter = await dc.interact(dc.slash("chat", {"prompt": "again"}, channel=general))
            await shows_in_original(dc, inter, answer)
        assert message.allowed_mentions is not None
        assert message.allowed_mentions["parse"] == []
        assert not message.pings_everyone() and message.pinged_user_ids() == []
        assert_no_pings(dc)


async def test_past_the_15_minute_token_the_reply_continues_in_the_channel(
    tmp_path: Path,
) -> None:
    answer = "\n\n".join(f"Paragraph {i}: " + "words and more words " * 10 for i in range(12))
    assert 2200 < len(answer) < 3800
    expected = split_markdown(answer, 2000)
    tokens = [answer[i : i + 120] for i in range(0, len(answer), 120)]
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.script_chat(tokens=tokens, delay=0.05)
        async with discord_service(tmp_path, comet, dc):
            inter = await dc.interact(dc.slash("chat", {"prompt": "a long one"}))
            await dc.wait_for(lambda: original(dc, inter).edit_count >= 1, timeout=WAIT)
            dc.advance(15 * 60 + 1)  # the interaction token has expired
            await dc.wait_for(
                lambda: [m.content for m in dc.messages(dm)] == expected, timeout=WAIT * 2
            )
        first, second = dc.messages(dm)
        assert first.id == inter.original_message_id
        assert second.interaction_id is None  # a plain channel message, not a followup
        assert inter.followup_ids == []
        assert {(e.status, e.code) for e in dc.errors} == {(401, 50027)}
        assert dc.calls("PATCH", f"/channels/{dm}/messages/{first.id}", status=200)
        assert utf16_len(second.content) <= 2000
        assert_no_pings(dc)


async def test_a_deleted_message_mid_stream_continues_in_a_new_one(tmp_path: Path) -> None:
    tokens = [f"w{i} " for i in range(30)]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.script_chat(tokens=tokens, delay=0.05)
        async with discord_service(tmp_path, comet, dc):
            await dc.say("go on")
            first = await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
            first.deleted = True  # someone deleted the bot's message while it streamed
            await shows(dc, dm, answer)
        assert [(e.status, e.code) for e in dc.errors] == [(404, 10008)]  # one edit, then anew
        assert len(dc.messages(dm, include_deleted=True)) == 2


def test_discord_errors_become_the_cores() -> None:
    class Response:
        def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.status, self.reason, self.headers = status, "x", headers or {}

    limited = discord.HTTPException(Response(429, {"X-RateLimit-Reset-After": "2.5"}), "slow")
    waited, long_wait = translate(limited), translate(discord.RateLimited(40.0))
    assert isinstance(waited, RetryLater) and waited.retry_after == 2.5
    assert isinstance(long_wait, RetryLater) and long_wait.retry_after == 40.0
    gone = discord.NotFound(Response(404), {"code": 10008, "message": "Unknown Message"})
    assert isinstance(translate(gone, editing=True), MessageGone)
    assert type(translate(gone)) is SurfaceError
    failed = translate(discord.HTTPException(Response(400), {"code": 50035, "message": "bad"}))
    assert type(failed) is SurfaceError and "50035" in str(failed)
    assert type(translate(OSError("connection reset"))) is SurfaceError


async def test_shutdown_flushes_an_answer_in_flight(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=["A partial answer", " that never ends"], hang_after=1)
        async with discord_service(tmp_path, comet, dc, drain_timeout=0.2):
            sent = await dc.say("talk forever")
            dm = int(sent["channel_id"])
            await shows(dc, dm, "A partial answer")
        text = dc.messages(dm)[-1].content
        assert text.startswith("A partial answer\n\n⚠️") and "interrupted" in text


# -- the service ------------------------------------------------------------------------------


async def test_run_service_serves_discord_and_restores_discord_py(tmp_path: Path) -> None:
    default_base = discord.http.Route.BASE
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        settings = discord_settings_for(tmp_path, comet, dc)
        stop = asyncio.Event()
        service = asyncio.create_task(run_service(settings, stop=stop))
        await dc.wait_for(lambda: dc.connected, timeout=WAIT)
        sent = await dc.say("hi there")
        dm = int(sent["channel_id"])
        await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
        assert dc.api_base_url == discord.http.Route.BASE  # the config key reached discord.py
        stop.set()
        assert await asyncio.wait_for(service, WAIT) == 0
        assert dc.identify is not None
        assert dc.identify["intents"] & discord.Intents.message_content.flag
    assert default_base == discord.http.Route.BASE


@pytest.mark.parametrize("what", ["token", "rest", "gateway"])
async def test_startup_failures_are_one_line(
    tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord_adapter, "READY_TIMEOUT", 1.0)
    async with FakeCometAPI() as comet, FakeDiscord(token="the-right-token") as dc:
        settings = discord_settings_for(tmp_path, comet, dc)
        unused = "http://127.0.0.1:9"  # nothing listens on the discard port
        if what == "token":
            expected = "Discord refused [discord] token"
        elif what == "rest":
            settings = settings.model_copy(
                update={"discord": settings.discord.model_copy(update={"api_base_url": unused})}
            )
            expected = "cannot reach Discord at http://127.0.0.1:9"
        else:
            discord_part = settings.discord.model_copy(
                update={"token": SecretStr("the-right-token"), "gateway_url": "ws://127.0.0.1:9/gw"}
            )
            settings = settings.model_copy(update={"discord": discord_part})
            expected = "cannot connect to ws://127.0.0.1:9/gw: "
        with pytest.raises(StartupError) as info:
            await asyncio.wait_for(run_service(settings, stop=asyncio.Event()), WAIT)
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message
    assert "the-right-token" not in message and "discord-test-token" not in message
