"""Stopping an answer on Discord, end to end: the ⏹ button and /stop through the real
discord.py against the fake Discord (rate limits on), the real CometAPI client against the
fake CometAPI, a real SQLite file."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.discord.messages import conversation_key
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.test_discord_chat import stored_turns
from tests.world import discord_service

pytestmark = pytest.mark.e2e

WAIT = 15.0
WORDS = [f"word{i} " for i in range(80)]  # 0.15 s apart: 12 s unless stopped
NOTE = "⏹ Stopped."


def stop_id(message: FakeMessage) -> str | None:
    return next((c for c in message.custom_ids() if c.startswith("stop:")), None)


def private_answers(dc: FakeDiscord, inter: FakeInteraction) -> list[str]:
    """What an interaction was told privately (ephemeral responses)."""
    return [
        str(r["data"].get("content"))
        for r in dc.interaction_responses(inter.id)
        if r.get("type") == 4 and int(r["data"].get("flags") or 0) & 64
    ]


def channel_writes(dc: FakeDiscord, channel_id: int, message_id: int) -> list[Any]:
    """The channel-route sends and edits of one message (what the channel's budget counts)."""
    base = f"/channels/{channel_id}/messages"
    out = []
    for call in dc.calls():
        if call.status != 200:
            continue
        if call.method == "POST" and call.path.endswith(base):
            body = call.body if isinstance(call.body, dict) else {}
            if int((call.response or {}).get("id", 0)) == message_id:
                out.append(body)
        elif call.method == "PATCH" and call.path.endswith(f"{base}/{message_id}"):
            out.append(call.body if isinstance(call.body, dict) else {})
    return out


async def test_the_stop_button_stops_a_channel_answer_and_only_the_asker_may_press_it(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        bob = dc.make_user("bob")
        guild = dc.make_guild("Comets", channels=["general"], members=[bob])
        general = dc.channel(guild, "general")
        gid = int(general["id"])
        comet.script_chat(tokens=WORDS, delay=0.15)
        async with discord_service(tmp_path, comet, dc) as svc:
            await dc.say("talk a lot", channel=general, mention_bot=True)
            reply: FakeMessage = await dc.wait_for(
                lambda: next((m for m in dc.messages(gid) if stop_id(m)), None), timeout=WAIT
            )
            custom_id = stop_id(reply)
            assert custom_id is not None and len(custom_id) <= 100
            # someone else's press is refused privately, and the answer goes on
            refused = await dc.interact(dc.click(reply, custom_id, user=bob))
            await dc.wait_for(lambda: private_answers(dc, refused), timeout=WAIT)
            assert "Only the person who asked" in private_answers(dc, refused)[0]
            # the button stays on while the reply grows
            await dc.wait_for(lambda: reply.edit_count >= 1, timeout=WAIT)
            assert stop_id(reply) == custom_id
            # the asker's press stops it: the upstream stream is closed early
            pressed = await dc.interact(dc.click(reply, custom_id))
            await dc.wait_for(lambda: pressed.acked, timeout=WAIT)
            await comet.wait_for_disconnects(1, timeout=WAIT)
            await dc.wait_for(lambda: NOTE in reply.content, timeout=WAIT)
            assert await stored_turns(svc, conversation_key(gid), 2) == 2
            turns = await svc.core.store.recent_turns(conversation_key(gid), limit=10)
            # the channel is free: the next question is answered
            await dc.say("and now?", channel=general, mention_bot=True)
            await dc.wait_for(
                lambda: any("and now?" in m.content for m in dc.messages(gid)), timeout=WAIT
            )
        assert dc.interaction_responses(pressed.id) == [{"type": 6}]  # silent: the edit shows it
        shown, _, note = reply.content.partition("\n\n")
        assert note == NOTE
        assert 0 < len(shown.split()) < len(WORDS)
        assert stop_id(reply) is None and reply.components == []
        assert turns[1].content.strip() == shown.strip()  # the text so far, without the note
        # the button rode on the reply's own writes: each changed the text, the edits carried
        # it (not the first send: a short answer never needs it) but the final one, and the
        # presses' answers cost the channel nothing
        writes = channel_writes(dc, gid, reply.id)
        assert all(a.get("content") != b.get("content") for a, b in itertools.pairwise(writes))
        carried = [bool(w.get("components")) for w in writes]
        assert len(carried) >= 3 and carried == [False] + [True] * (len(carried) - 2) + [False]
        assert sum(dc.ratelimit_hits.values()) == 0
        assert dc.errors == []


async def test_slash_stop_stops_a_slash_chat_and_answers_privately(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=WORDS, delay=0.15)
        async with discord_service(tmp_path, comet, dc):
            assert "stop" in {c["name"] for c in dc.commands()}
            chat = await dc.interact(dc.slash("chat", {"prompt": "talk a lot"}))
            answer: FakeMessage = await dc.wait_for(
                lambda: (m := dc.message(chat.original_message_id or 0)) and stop_id(m) and m,
                timeout=WAIT,
            )
            stop = await dc.interact(dc.slash("stop"))
            await dc.wait_for(lambda: private_answers(dc, stop), timeout=WAIT)
            await comet.wait_for_disconnects(1, timeout=WAIT)
            await dc.wait_for(lambda: NOTE in answer.content, timeout=WAIT)
            again = await dc.interact(dc.slash("stop"))
            await dc.wait_for(lambda: private_answers(dc, again), timeout=WAIT)
            # the button of an answer from before a restart (a crash left it there)
            button = {"type": 2, "style": 2, "label": "⏹ Stop", "custom_id": "stop:gone1234"}
            old = dc.seed_bot_message(
                chat.channel_id, "an old answer", components=[{"type": 1, "components": [button]}]
            )
            late = await dc.interact(dc.click(old, "stop:gone1234"))
            await dc.wait_for(lambda: private_answers(dc, late), timeout=WAIT)
        assert private_answers(dc, stop) == ["Stopped."]
        assert private_answers(dc, again) == ["Nothing to stop: no answer is being written here."]
        assert private_answers(dc, late) == ["This answer has already ended."]
        assert stop_id(answer) is None and answer.components == []
        assert dc.errors == []
