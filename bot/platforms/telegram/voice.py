"""Voice notes and audio files on Telegram: what the core needs to know before downloading
them, and the download itself (bots get 20 MB at most through getFile)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from telegram import Audio, Message, Voice
from telegram.constants import FileSizeLimit

from bot.core.chat.voice import VoiceNote

__all__ = ["MAX_DOWNLOAD_BYTES", "download", "voice_note"]

MAX_DOWNLOAD_BYTES: Final = int(FileSizeLimit.FILESIZE_DOWNLOAD)
"""getFile refuses bigger files ("file is too big") unless a local Bot API server runs."""


def _seconds(value: int | timedelta | None) -> float | None:
    # PTB gives an int, or a timedelta with PTB_TIMEDELTA=1.
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _media(message: Message) -> Voice | Audio | None:
    return message.voice or message.audio


def voice_note(message: Message) -> VoiceNote | None:
    """The voice note (OGG/Opus, no file name) or audio file of ``message``, if any."""
    if message.voice is not None:
        voice = message.voice
        mime = voice.mime_type or "audio/ogg"
        return VoiceNote(_seconds(voice.duration), voice.file_size, "voice.ogg", mime)
    if message.audio is not None:
        audio = message.audio
        return VoiceNote(
            _seconds(audio.duration), audio.file_size, audio.file_name, audio.mime_type
        )
    return None


async def download(message: Message) -> bytes:
    """The bytes of the message's voice note or audio file, as they are."""
    media = _media(message)
    if media is None:
        raise ValueError("the message carries no voice note or audio file")
    file = await media.get_file()
    return bytes(await file.download_as_bytearray())
