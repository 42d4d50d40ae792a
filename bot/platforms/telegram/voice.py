"""Voice notes and audio files on Telegram: what the core needs to know before downloading
them, the download itself (bots get 20 MB at most through getFile), and spoken answers sent
as voice notes."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from telegram import Audio, Bot, InputFile, Message, Voice
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest, TelegramError

from bot.core.chat.voice import VoiceNote
from bot.core.errors import SurfaceError
from bot.core.pacing import Pacer
from bot.platforms.telegram.messages import download_file, thread_id
from bot.platforms.telegram.surface import surface_for, translate

__all__ = ["COMMANDS", "HELP", "MAX_DOWNLOAD_BYTES", "download", "send_voice", "voice_note"]

log = logging.getLogger(__name__)

COMMANDS: Final = (("voice", "Also send answers as voice messages (on/off)"),)
HELP: Final = "\n/voice on|off — also send this chat's answers as voice messages"
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
    return await download_file(media)  # its caps were checked before


async def send_voice(pacer: Pacer, bot: Bot, message: Message, audio: bytes) -> None:
    """A spoken answer (OGG/Opus) as a voice note in ``message``'s chat, within its budget.
    A person whose privacy settings forbid voice messages (``VOICE_MESSAGES_FORBIDDEN``)
    keeps the text answer alone; other failures are logged: the text is already there."""
    surface = surface_for(bot, message, reply=False)

    async def call() -> None:
        try:
            await bot.send_voice(
                message.chat_id,
                InputFile(audio, filename="answer.ogg"),
                message_thread_id=thread_id(message),
            )
        except BadRequest as exc:
            if "voice_messages_forbidden" in exc.message.lower():
                log.info("telegram chat %s: voice messages forbidden", message.chat_id)
                return
            raise (translate(exc) or SurfaceError("Telegram: voice")) from exc
        except TelegramError as exc:
            raise (translate(exc) or SurfaceError("Telegram: voice")) from exc

    try:
        await pacer.call(surface.lane, surface.lane_kind, call)
    except SurfaceError as exc:
        log.warning("telegram chat %s: could not send the spoken answer: %s", message.chat_id, exc)
