"""The CometAPI SDK's audio family as the core's :class:`~bot.core.media_ports.Transcriber`."""

from __future__ import annotations

from bot.adapters.chat_model import to_model_error
from bot.providers import cometapi as sdk


class CometTranscriber:
    """Speech to text through ``/v1/audio/transcriptions`` with one configured model."""

    def __init__(
        self, client: sdk.CometAPI, *, model: str = sdk.DEFAULT_TRANSCRIPTION_MODEL
    ) -> None:
        self._client = client
        self._model = model

    async def transcribe(self, audio: bytes, *, filename: str | None, mime_type: str | None) -> str:
        name = sdk.audio_filename(filename, mime_type)
        try:
            return await self._client.audio.transcribe(
                audio,
                filename=name,
                mime_type=mime_type or "application/octet-stream",
                model=self._model,
            )
        except sdk.CometAPIError as exc:
            raise to_model_error(exc, self._model) from exc
