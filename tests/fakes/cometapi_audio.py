"""Audio routes of the fake CometAPI: ``POST /v1/audio/transcriptions`` (multipart, like
OpenAI's) and ``POST /v1/audio/speech`` (JSON in, audio bytes out)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.cometapi_common import CometBase, _json

SPEECH_BYTES = b"OggS\x00\x02fake-opus-speech"
TRANSCRIBED_EXTENSIONS = {"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm"}


@dataclass
class Transcription:
    """One transcription request as the fake received it."""

    filename: str
    content_type: str
    data: bytes
    fields: dict[str, str]


class AudioRoutes(CometBase):
    """Transcripts come from :attr:`transcripts` (FIFO), else :attr:`default_transcript`."""

    transcripts: deque[str]
    default_transcript: str
    transcriptions: list[Transcription]
    speeches: list[dict[str, Any]]

    def _init_audio(self) -> None:
        self.transcripts = deque()
        self.default_transcript = "what is the capital of France"
        self.transcriptions = []
        self.speeches = []

    async def _transcribe(self, request: web.Request) -> web.Response:
        fields: dict[str, str] = {}
        upload: Transcription | None = None
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                content_type = value.content_type or ""
                upload = Transcription(value.filename, content_type, value.file.read(), fields)
            else:
                fields[name] = str(value)
        if upload is None or "model" not in fields:
            return _openai_error("file and model are required", 400)
        ext = upload.filename.rpartition(".")[2].lower()
        if ext not in TRANSCRIBED_EXTENSIONS:
            return _openai_error(f"Unrecognized file format: {upload.filename}", 400)
        self.transcriptions.append(upload)
        text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        return _json({"text": text})

    async def _speech(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not body.get("input") or not body.get("model"):
            return _openai_error("model and input are required", 400)
        self.speeches.append(body)
        content_type = "audio/ogg" if body.get("response_format") == "opus" else "audio/mpeg"
        return web.Response(body=SPEECH_BYTES, content_type=content_type)


def _openai_error(message: str, status: int) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "code": ""}
    return _json({"error": error}, status)
