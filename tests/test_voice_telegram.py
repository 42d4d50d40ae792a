"""Voice notes on Telegram, end to end: the real python-telegram-bot against the fake Bot API
(voice notes from people, getFile and the file download), the real CometAPI client against
the fake CometAPI's /v1/audio/transcriptions."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.cometapi_audio import SPEECH_BYTES
from tests.fakes.cometapi_common import tiny_png
from tests.fakes.telegram import FakeTelegram
from tests.world import chat_requests, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
GROUP = -100555
NOTE = b"OggS\x00\x02voice-note-bytes"


async def test_voice_note_is_transcribed_shown_and_answered(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.transcripts.append("what is the capital of France")
        comet.script_chat(tokens=["Paris", "."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_voice(USER, NOTE, duration=4)
            await tg.wait_for_message(USER, "🎙 “what is the capital of France”", timeout=10)
            await tg.wait_for_message(USER, lambda m: m.text == "Paris.", timeout=10)
            await tg.wait_idle(quiet=0.3)
        [upload] = comet.transcriptions
        assert upload.data == NOTE  # the bytes as they are
        assert upload.filename == "voice.ogg"
        assert upload.fields["model"] == "whisper-1"
        [request] = chat_requests(comet)
        assert request["messages"][-1] == {
            "role": "user",
            "content": "what is the capital of France",
        }
        texts = [m.text for m in tg.messages(USER)]
        assert texts == ["🎙 “what is the capital of France”", "Paris."]


async def test_a_picture_in_the_answer_to_a_voice_note_is_posted(tmp_path: Path) -> None:
    png = tiny_png(size=32)
    answer = f"A cat: ![cat](data:image/png;base64,{base64.b64encode(png).decode()})"
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.transcripts.append("draw me a cat")
        comet.script_chat(tokens=[answer[i : i + 9] for i in range(0, len(answer), 9)])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_voice(USER, NOTE, duration=2)
            await tg.wait_for(lambda: any(m.media_type for m in tg.messages(USER)), timeout=10)
            await tg.wait_idle(quiet=0.3)
        photos = [m for m in tg.messages(USER) if m.media_type == "photo"]
        assert len(photos) == 1 and photos[0].upload is not None and photos[0].upload.data == png
        assert all("base64" not in (m.text or "") for m in tg.messages(USER))


async def test_audio_file_keeps_its_name_and_model_comes_from_config(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        sections = {"voice": {"transcription_model": "gpt-4o-mini-transcribe"}}
        async with telegram_service(tmp_path, comet, tg, sections=sections):
            tg.inject_voice(USER, b"ID3mp3", audio_file="memo.mp3", content_type="audio/mpeg")
            await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
        [upload] = comet.transcriptions
        assert (upload.filename, upload.fields["model"]) == ("memo.mp3", "gpt-4o-mini-transcribe")


async def test_transcription_error_is_one_sentence(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.fail_next(1, 400, path_prefix="/v1/audio/transcriptions", message="bad audio")
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_voice(USER, NOTE)
            await tg.wait_for_message(USER, "couldn't transcribe", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert len(tg.messages(USER)) == 1
        assert chat_requests(comet) == []


async def test_empty_transcript_is_one_sentence(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.transcripts.append("   ")
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_voice(USER, NOTE)
            await tg.wait_for_message(USER, "couldn't hear any words", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert len(tg.messages(USER)) == 1
        assert chat_requests(comet) == []


async def test_over_cap_notes_are_refused_before_any_download_or_upload(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        sections = {"voice": {"max_seconds": 60, "max_mb": 1}}
        async with telegram_service(tmp_path, comet, tg, sections=sections):
            tg.inject_voice(USER, NOTE, duration=61)
            await tg.wait_for_message(USER, "too long for me (60 seconds", timeout=10)
            tg.inject_voice(USER, NOTE, file_size=2 * 1024 * 1024)
            await tg.wait_for_message(USER, "too large for me (1 MB", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert comet.requests_to("/v1/audio") == []
        assert tg.calls("getFile") == []


async def test_group_voice_note_only_when_addressed(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_voice(GROUP, NOTE, user_id=7)  # to nobody in particular
            await tg.wait_idle(quiet=0.5)
            assert comet.transcriptions == []
            assert tg.messages(GROUP) == []
            tg.inject_voice(GROUP, NOTE, user_id=7, caption="@comet_test_bot")
            await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert len(comet.transcriptions) == 1
        content = chat_requests(comet)[0]["messages"][-1]["content"]
        assert content == f"[Alice] {comet.default_transcript}"  # a group turn names its author


def test_transcript_line_is_quoted_on_one_short_line() -> None:
    from bot.core.chat.voice import transcript_line

    assert transcript_line("  hello\nworld ") == "🎙 “hello world”"
    long = transcript_line("word " * 200, limit=20)
    assert long.endswith("…”") and len(long) <= 20 + 4


async def test_voice_on_sends_answers_also_as_voice_notes(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        sections = {"voice": {"speech_max_chars": 30}}
        async with telegram_service(tmp_path, comet, tg, sections=sections):
            tg.inject_private_message("/help", user_id=USER)
            await tg.wait_for_message(USER, "/voice on|off", timeout=10)
            tg.inject_private_message("/voice on", user_id=USER)
            await tg.wait_for_message(USER, "also come as voice messages", timeout=10)
            comet.script_chat(tokens=["**First** sentence here. ", "Second sentence is long."])
            tg.inject_private_message("talk to me", user_id=USER)
            await tg.wait_for(lambda: tg.calls("sendVoice"), timeout=10)
            await tg.wait_idle(quiet=0.3)
            tg.inject_private_message("/voice off", user_id=USER)
            await tg.wait_for_message(USER, "text only", timeout=10)
            tg.inject_private_message("and now?", user_id=USER)
            await tg.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=10)
            await tg.wait_idle(quiet=0.3)
        [speech] = comet.speeches
        assert speech["input"] == "First sentence here."  # no markup, cut at a sentence
        assert speech["response_format"] == "opus"
        [voice] = [m for m in tg.messages(USER) if m.media_type == "voice"]
        assert voice.upload is not None and voice.upload.data == SPEECH_BYTES
        assert voice.upload is not None
        assert any(
            m.text == "First sentence here. Second sentence is long." for m in tg.messages(USER)
        )
        assert len(tg.calls("sendVoice")) == 1
        assert "voice" in {c["command"] for c in tg.my_commands()}


async def test_voice_messages_forbidden_leaves_the_text_alone(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("/voice on", user_id=USER)
            await tg.wait_for_message(USER, "also come as voice messages", timeout=10)
            tg.fail_next_error(
                USER, "sendVoice", description="Bad Request: VOICE_MESSAGES_FORBIDDEN"
            )
            tg.inject_private_message("hello", user_id=USER)
            await tg.wait_for(lambda: tg.calls("sendVoice"), timeout=10)
            await tg.wait_idle(quiet=0.5)
        texts = [m.text for m in tg.messages(USER)]
        assert texts[-1] == "Echo: hello" or texts[-1].endswith("hello")
        assert len(texts) == 2  # the /voice answer and the text answer; no error sentence
