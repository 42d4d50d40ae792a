"""Audio in the OpenAI format: ``POST /v1/audio/transcriptions`` (speech to text) and
``POST /v1/audio/speech`` (text to speech).

The bytes go up as they are, in a multipart form; the upstream takes the format from the
file name's extension, so :meth:`Audio.transcribe` keeps (or adds) an audio extension.
"""

from __future__ import annotations

from typing import Final

import httpx

from bot.providers.cometapi.errors import APIConnectionError, APIResponseError
from bot.providers.cometapi.requester import Multipart, Requester

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_SPEECH_MODEL",
    "DEFAULT_TRANSCRIPTION_MODEL",
    "MAX_SPEECH_CHARS",
    "Audio",
    "audio_filename",
]

DEFAULT_TRANSCRIPTION_MODEL: Final = "whisper-1"
DEFAULT_SPEECH_MODEL: Final = "tts-1"
MAX_SPEECH_CHARS: Final = 4096
"""The longest ``input`` the speech endpoint takes."""
AUDIO_EXTENSIONS: Final = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm")
"""What the transcription endpoint reads, by file extension."""

_BY_MIME: Final = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/m4a": "m4a",
    "audio/aac": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/webm": "webm",
    "video/webm": "webm",
    "video/mp4": "mp4",
}


def audio_filename(name: str | None, mime_type: str | None) -> str:
    """``name`` when it ends in an audio extension the endpoint reads; else a name whose
    extension comes from ``mime_type`` (Telegram voice notes have no name: ``voice.ogg``)."""
    base = (name or "").strip().replace("/", "_") or "audio"
    stem, dot, ext = base.rpartition(".")
    if dot and ext.lower() in AUDIO_EXTENSIONS:
        return base
    mime = (mime_type or "").split(";")[0].strip().lower()
    return f"{stem if dot else base}.{_BY_MIME.get(mime, 'ogg')}"


class Audio:
    """``client.audio``: speech to text and text to speech."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def transcribe(
        self,
        data: bytes,
        *,
        filename: str,
        mime_type: str = "audio/ogg",
        model: str = DEFAULT_TRANSCRIPTION_MODEL,
        language: str | None = None,
    ) -> str:
        """The text spoken in ``data`` (``""`` when nothing was heard). ``filename`` should
        end in an audio extension (see :func:`audio_filename`)."""
        form = {"model": model, "response_format": "json"}
        if language:
            form["language"] = language
        body = await self._requester.post(
            "/v1/audio/transcriptions",
            form=Multipart(form, {"file": (filename, data, mime_type)}),
            paid=True,
        )
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise APIResponseError("POST /v1/audio/transcriptions: the answer has no 'text'")
        return text.strip()

    async def speech(
        self,
        text: str,
        *,
        model: str = DEFAULT_SPEECH_MODEL,
        voice: str = "alloy",
        response_format: str = "opus",
    ) -> bytes:
        """``text`` (at most :data:`MAX_SPEECH_CHARS`) spoken; ``opus`` is OGG/Opus, what
        Telegram's voice notes need."""
        if not text.strip() or len(text) > MAX_SPEECH_CHARS:
            raise ValueError(f"speech input must be 1..{MAX_SPEECH_CHARS} characters")
        payload = {"model": model, "input": text, "voice": voice}
        payload["response_format"] = response_format
        # The answer is the audio itself, not JSON: read the raw body.
        response = await self._requester.open_stream("POST", "/v1/audio/speech", json=payload)
        try:
            return await response.aread()
        except httpx.TransportError as exc:
            raise APIConnectionError("POST /v1/audio/speech: the audio was cut off") from exc
        finally:
            await response.aclose()
