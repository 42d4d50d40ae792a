"""The Protocols the core needs for pictures, voice and documents.

Adapters implement them over the CometAPI SDK (``bot.adapters``: :class:`ImageFetcher` on
the chat model, :class:`ImageModel`, :class:`Transcriber`, :class:`Speaker`) or a
third-party library (:class:`PdfText`, ``bot.adapters.pdf``); platforms implement
:class:`Pictures` over their outbox. The rest of the core's ports: :mod:`bot.core.ports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.core.models import Downloaded, ImageInput, MediaFile, PdfPages

__all__ = ["ImageFetcher", "ImageModel", "PdfText", "Pictures", "Speaker", "Transcriber"]


class ImageFetcher(Protocol):
    """Downloads an image a model's answer names, through the one safe downloader (never
    with the API key: the URL came from a model). Raises
    :class:`~bot.core.errors.MediaTooLarge` past ``max_bytes`` and
    :class:`~bot.core.errors.UpstreamError` otherwise."""

    async def fetch_image(self, url: str, *, max_bytes: int) -> Downloaded: ...


class Pictures(Protocol):
    """Where a chat answer's pictures go: beside the reply, through the platform's pacer
    (Telegram: a photo, a document when it breaks the photo rules, an album for several;
    Discord: attachments of one message). Raises :class:`~bot.core.errors.SurfaceError`."""

    async def post_pictures(self, files: Sequence[MediaFile], *, reply_to: str | None) -> None: ...


class Transcriber(Protocol):
    async def transcribe(self, audio: bytes, *, filename: str | None, mime_type: str | None) -> str:
        """The words spoken in ``audio`` (``""`` when none); raises
        :class:`bot.core.errors.ModelError` subclasses."""
        ...


class Speaker(Protocol):
    async def speak(self, text: str) -> bytes:
        """``text`` as speech (OGG/Opus); raises :class:`bot.core.errors.ModelError`
        subclasses."""
        ...


class PdfText(Protocol):
    """Text extraction from PDFs (``bot.adapters.pdf``: a third-party library, kept out of
    the core)."""

    async def extract(self, data: bytes, *, max_pages: int) -> PdfPages:
        """The text of the first ``max_pages`` pages, and the page count;
        :class:`~bot.core.errors.DocumentUnreadable` for a damaged or encrypted file."""


class ImageModel(Protocol):
    """The images API (``/image``): one synchronous, paid call, no task to poll.

    Raises :class:`~bot.core.errors.GenerationError` (a refusal, e.g. content policy:
    :class:`~bot.core.errors.PromptRefused`; busy; no clear answer) with the sentence a
    user sees.
    """

    async def draw(
        self,
        *,
        model: str,
        prompt: str,
        size: str,
        quality: str,
        image: ImageInput | None = None,
    ) -> list[ImageInput]:
        """The pictures for ``prompt``; with ``image``, that picture edited by it."""
        ...
