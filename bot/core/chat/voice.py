"""Voice in: a voice note (or audio file) checked, transcribed, shown, then answered; and
voice out: a finished answer spoken, where ``/voice on`` asked for it.

The platforms read the note (size, duration, how to fetch it) and say things; this module
decides: caps refused before any download or upload, the transcript line the person sees,
then the normal chat turn with the transcript as the question.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bot.core.chat.service import ChatResult, ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import ModelError, UserFacingError
from bot.core.media_ports import Pictures, Speaker, Transcriber
from bot.core.models import ConversationKey, Incoming
from bot.core.text import is_blank

__all__ = ["VoiceConfig", "VoiceNote", "VoiceService", "spoken_text", "transcript_line"]

log = logging.getLogger(__name__)

FAILED: Final = "I couldn't transcribe that voice message; please try again or type it."
EMPTY: Final = "I couldn't hear any words in that voice message."
TRANSCRIPT_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    max_seconds: int = 300
    max_bytes: int = 20 * 1024 * 1024
    speech_chars: int = 1000
    """Longer answers are spoken up to here (at a sentence end when there is one)."""


@dataclass(frozen=True, slots=True)
class VoiceNote:
    """What a platform knows of a voice note before downloading it (``None``: not said)."""

    duration: float | None
    size: int | None
    filename: str | None
    mime_type: str | None


def transcript_line(text: str, limit: int = TRANSCRIPT_CHARS) -> str:
    """``🎙 “…”``: the transcript quoted on one line, shortened past ``limit`` characters."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return f"🎙 “{line}”"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


class VoiceService:
    """Answers voice notes through a :class:`ChatService`."""

    def __init__(
        self,
        *,
        chat: ChatService,
        transcriber: Transcriber,
        config: VoiceConfig,
        speaker: Speaker | None = None,
    ) -> None:
        self._chat = chat
        self._transcriber = transcriber
        self._speaker = speaker
        self.config = config

    def check(self, note: VoiceNote, *, platform_max_bytes: int | None = None) -> None:
        """Refuse a note over the caps (``platform_max_bytes``: what the platform lets a bot
        download) before anything is downloaded or uploaded."""
        seconds = self.config.max_seconds
        if note.duration is not None and note.duration > seconds:
            raise UserFacingError(
                f"That voice message is too long for me ({seconds} seconds at most)."
            )
        cap = self.config.max_bytes
        if platform_max_bytes is not None:
            cap = min(cap, platform_max_bytes)
        if note.size is not None and note.size > cap:
            raise UserFacingError(
                f"That audio file is too large for me ({_megabytes(cap)} at most)."
            )

    async def answer(
        self,
        incoming: Incoming,
        note: VoiceNote,
        *,
        fetch: Callable[[], Awaitable[bytes]],
        say: Callable[[str], Awaitable[object]],
        reply: StreamingReply,
        pictures: Pictures | None = None,
    ) -> ChatResult:
        """Transcribe ``note`` (its bytes from ``fetch``), show the transcript with ``say``,
        then answer it in ``incoming``'s conversation (the answer's pictures to
        ``pictures``); ``incoming.text`` (a caption) goes before the transcript. Failures
        raise a one-sentence :class:`UserFacingError`."""
        self.check(note)
        data = await fetch()
        if len(data) > self.config.max_bytes:  # the platform did not say its size
            self.check(dataclasses.replace(note, size=len(data)))
        try:
            text = await self._transcriber.transcribe(
                data, filename=note.filename, mime_type=note.mime_type
            )
        except ModelError as exc:
            log.warning("voice: transcription failed: %s", type(exc).__name__)
            raise UserFacingError(FAILED) from exc
        if is_blank(text):
            raise UserFacingError(EMPTY)
        await say(transcript_line(text))
        caption = incoming.text.strip()
        question = f"{caption}\n\n{text}" if caption else text
        asked = dataclasses.replace(incoming, text=question)
        return await self._chat.answer(asked, reply, pictures=pictures)

    @property
    def speaks(self) -> bool:
        """Whether answers can be spoken at all (``/voice`` is offered)."""
        return self._speaker is not None

    async def speak_answer(
        self,
        key: ConversationKey,
        result: ChatResult,
        send: Callable[[bytes], Awaitable[object]],
    ) -> bool:
        """Send ``result`` spoken through ``send`` if ``key`` has ``/voice on``; a complete
        answer only. The text is already shown: a failure here is logged, never told."""
        if self._speaker is None or result.error is not None or is_blank(result.text):
            return False
        if not await self._chat.speaks(key):
            return False
        try:
            audio = await self._speaker.speak(spoken_text(result.text, self.config.speech_chars))
        except ModelError as exc:
            log.warning("voice: speech failed: %s", type(exc).__name__)
            return False
        await send(audio)
        return True


_MARKUP: Final = str.maketrans("", "", "*_`#>|~")


def spoken_text(text: str, limit: int) -> str:
    """``text`` without Markdown marks, on one line, cut to ``limit`` characters at the last
    sentence end within it (else at a word, with an ellipsis)."""
    line = " ".join(text.translate(_MARKUP).split())
    if len(line) <= limit:
        return line
    cut = line[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if end >= limit // 2:
        return cut[: end + 1]
    return cut.rsplit(" ", 1)[0].rstrip() + "…"
