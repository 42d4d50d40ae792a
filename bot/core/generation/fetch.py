"""A finished task's files, downloaded for upload (result URLs expire, so platforms get bytes).

The task backend does the downloading, by the safe-download rules of the provider's client;
these helpers decide what a download becomes: a photo too large for one goes as a document,
a file past what the platform uploads is left to a link (``None``), a missing song cover is
no failure; :func:`unfetched_view` is what the status message says when a file cannot be
fetched at all.
"""

from __future__ import annotations

from typing import Final

from bot.core.errors import MediaTooLarge, UpstreamError
from bot.core.generation.records import Task
from bot.core.generation.views import headline, provider_name
from bot.core.models import MediaFile, MediaKind, MediaLimits, StatusView
from bot.core.ports import TaskBackend

__all__ = ["THUMBNAIL_MAX_BYTES", "fetch_media", "fetch_thumbnail", "unfetched_view"]

THUMBNAIL_MAX_BYTES: Final = 200_000
_EXTENSIONS: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
}


async def fetch_media(
    backend: TaskBackend, limits: MediaLimits, url: str, kind: MediaKind, stem: str
) -> MediaFile | None:
    """The downloaded file, as ``kind`` (a photo too large for one becomes a document);
    None when it exceeds what the platform uploads (send the link instead)."""
    try:
        downloaded = await backend.download(url, max_bytes=limits.upload_max_bytes)
    except MediaTooLarge:
        return None
    if kind is MediaKind.PHOTO and len(downloaded.data) > limits.photo_max_bytes:
        kind = MediaKind.DOCUMENT
    mime = downloaded.content_type.split(";")[0].strip() or "application/octet-stream"
    extension = _EXTENSIONS.get(mime) or url.rsplit("?", 1)[0].rsplit(".", 1)[-1][:4]
    return MediaFile(kind, downloaded.data, f"{stem}.{extension or 'bin'}", mime)


async def fetch_thumbnail(backend: TaskBackend, url: str) -> bytes | None:
    """A song's cover, or None (a cover is a nicety: never fail the song for it)."""
    if not url:
        return None
    try:
        downloaded = await backend.download(url, max_bytes=THUMBNAIL_MAX_BYTES)
    except UpstreamError:
        return None
    return downloaded.data


def unfetched_view(task: Task, *, partial: bool, refunded: bool) -> StatusView:
    """The final status of a task whose result (or part of it) could not be fetched."""
    what = "Part of the result" if partial else "The result"
    text = f"{what} could not be fetched from {provider_name(task.provider)}"
    text += ", so it does not count against your quota." if refunded else "."
    return StatusView(f"{headline(task)}\n❌ {text} Please try again.", final=True)
