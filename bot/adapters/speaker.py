"""The CometAPI SDK's text to speech as the core's :class:`~bot.core.media_ports.Speaker`."""

from __future__ import annotations

from bot.adapters.chat_model import to_model_error
from bot.providers import cometapi as sdk


class CometSpeaker:
    """Speech through ``/v1/audio/speech`` as OGG/Opus (what Telegram's voice notes need;
    Discord takes it as an audio attachment)."""

    def __init__(self, client: sdk.CometAPI, *, model: str, voice: str) -> None:
        self._client = client
        self._model = model
        self._voice = voice

    async def speak(self, text: str) -> bytes:
        try:
            return await self._client.audio.speech(
                text[: sdk.MAX_SPEECH_CHARS], model=self._model, voice=self._voice
            )
        except sdk.CometAPIError as exc:
            raise to_model_error(exc, self._model) from exc
