"""Voice messages on Discord, end to end: the real discord.py against the fake Discord (a
message with flag 8192 and one audio/ogg attachment, or an audio attachment), the real
CometAPI client against the fake CometAPI's /v1/audio/transcriptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.world import chat_requests, discord_service

pytestmark = pytest.mark.e2e

WAIT = 15.0
VOICE_MESSAGE_FLAG = 1 << 13
NOTE = b"OggS\x00\x02discord-voice-bytes"


async def test_voice_message_is_transcribed_shown_and_answered(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.transcripts.append("tell me a joke")
        comet.script_chat(tokens=["A joke."])
        async with discord_service(tmp_path, comet, dc):
            voice = dc.voice_attachment(dm, NOTE, duration=2.5)
            await dc.say("", attachments=[voice], flags=VOICE_MESSAGE_FLAG)
            await dc.wait_for(lambda: len(dc.messages(dm)) == 2, timeout=WAIT)
            await dc.wait_for(lambda: dc.messages(dm)[1].content == "A joke.", timeout=WAIT)
        assert dc.messages(dm)[0].content == "🎙 “tell me a joke”"
        [upload] = comet.transcriptions
        assert (upload.filename, upload.data) == ("voice-message.ogg", NOTE)
        assert chat_requests(comet)[0]["messages"][-1]["content"] == "tell me a joke"


async def test_audio_attachment_failure_and_caps(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        sections = {"voice": {"max_seconds": 60, "max_mb": 1}}
        async with discord_service(tmp_path, comet, dc, sections=sections):
            too_long = dc.voice_attachment(dm, NOTE, duration=90)
            await dc.say("", attachments=[too_long], flags=VOICE_MESSAGE_FLAG)
            await dc.wait_for(lambda: len(dc.messages(dm)) == 1, timeout=WAIT)
            too_big = dc.add_attachment(dm, "talk.mp3", b"x" * (1024 * 1024 + 1), "audio/mpeg")
            await dc.say("", attachments=[too_big])
            await dc.wait_for(lambda: len(dc.messages(dm)) == 2, timeout=WAIT)
            assert comet.requests_to("/v1/audio") == []
            comet.fail_next(1, 400, path_prefix="/v1/audio/transcriptions", message="bad")
            memo = dc.add_attachment(dm, "memo.m4a", b"m4a-bytes", "audio/mp4")
            await dc.say("", attachments=[memo])
            await dc.wait_for(lambda: len(dc.messages(dm)) == 3, timeout=WAIT)
        texts = [m.content for m in dc.messages(dm)]
        assert "too long for me (60 seconds" in texts[0]
        assert "too large for me (1 MB" in texts[1]
        assert "couldn't transcribe" in texts[2]
        assert chat_requests(comet) == []


async def test_guild_voice_message_only_when_it_replies_to_the_bot(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = dc.make_guild("Comets", channels=["general"], threads=[])
        general = dc.channel(guild, "general")
        gid = int(general["id"])
        async with discord_service(tmp_path, comet, dc):
            voice = dc.voice_attachment(gid, NOTE)
            await dc.say("", channel=general, attachments=[voice], flags=VOICE_MESSAGE_FLAG)
            await dc.say("hello", channel=general, mention_bot=True)
            first = await dc.wait_for(lambda: dc.last_message(gid), timeout=WAIT)
            assert comet.transcriptions == []  # the unaddressed voice message was ignored
            again = dc.voice_attachment(gid, NOTE)
            reply = dc.user_message(
                "", channel=general, reply_to=first, attachments=[again], flags=VOICE_MESSAGE_FLAG
            )
            reply["mentions"] = []
            await dc.push_message(reply)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=WAIT)
        assert len(comet.transcriptions) == 1
        assert chat_requests(comet)[1]["messages"][-1]["content"].endswith(comet.default_transcript)


async def test_voice_on_sends_answers_also_as_an_audio_attachment(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        async with discord_service(tmp_path, comet, dc):
            inter = await dc.interact(dc.slash("voice", {"state": "on"}))
            await dc.wait_for(
                lambda: "voice messages" in dc.message(inter.original_message_id or 0).content,
                timeout=WAIT,
            )
            await dc.say("hello there")
            await dc.wait_for(lambda: comet.speeches, timeout=WAIT)
            await dc.wait_for(lambda: any(m.attachments for m in dc.messages(dm)), timeout=WAIT)
        [audio] = [m for m in dc.messages(dm) if m.attachments]
        assert audio.attachments[0]["filename"] == "answer.ogg"
        assert any(m.content == "Echo: hello there" for m in dc.messages(dm))
        assert "voice" in {c["name"] for c in dc.commands()}
