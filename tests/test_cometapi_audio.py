"""The SDK's audio family against the fake CometAPI: transcriptions (multipart upload)."""

from __future__ import annotations

import pytest

from bot.providers.cometapi import BadRequestError, CometAPI, audio_filename
from tests.fakes.cometapi import FakeCometAPI


def test_audio_filename_keeps_or_adds_an_audio_extension() -> None:
    assert audio_filename(None, "audio/ogg") == "audio.ogg"
    assert audio_filename("song.MP3", "application/octet-stream") == "song.MP3"
    assert audio_filename("memo.bin", "audio/mpeg") == "memo.mp3"
    assert audio_filename("memo", "audio/x-m4a") == "memo.m4a"
    assert audio_filename("a/b.ogg", None) == "a_b.ogg"


async def test_transcribe_uploads_the_bytes_as_they_are() -> None:
    async with FakeCometAPI() as fake:
        fake.transcripts.append("  bonjour tout le monde  ")
        async with CometAPI(api_key=fake.api_key, base_url=fake.base_url) as client:
            text = await client.audio.transcribe(
                b"OggS-voice-bytes", filename="voice.ogg", model="gpt-4o-mini-transcribe"
            )
        assert text == "bonjour tout le monde"
        [upload] = fake.transcriptions
        assert upload.filename == "voice.ogg"
        assert upload.data == b"OggS-voice-bytes"
        assert upload.content_type == "audio/ogg"
        assert upload.fields["model"] == "gpt-4o-mini-transcribe"
        [request] = fake.requests_to("/v1/audio/transcriptions")
        assert request.headers["Authorization"] == f"Bearer {fake.api_key}"


async def test_transcribe_errors_are_sdk_errors() -> None:
    async with FakeCometAPI() as fake:
        fake.fail_next(1, 400, path_prefix="/v1/audio", message="bad audio")
        async with CometAPI(api_key=fake.api_key, base_url=fake.base_url) as client:
            with pytest.raises(BadRequestError):
                await client.audio.transcribe(b"x", filename="voice.ogg")


async def test_speech_returns_the_audio_bytes() -> None:
    async with FakeCometAPI() as fake:
        async with CometAPI(api_key=fake.api_key, base_url=fake.base_url) as client:
            audio = await client.audio.speech("Hello there", model="tts-1-hd", voice="nova")
        assert audio.startswith(b"OggS")
        assert fake.speeches == [
            {
                "model": "tts-1-hd",
                "input": "Hello there",
                "voice": "nova",
                "response_format": "opus",
            }
        ]
