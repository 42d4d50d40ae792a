"""An answer's images made into files to post: decoded ones as they are, URLs downloaded (all
at once, each under the downloader's deadline), and one short sentence per image that cannot
be shown (the rest of the answer is shown all the same)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.core.chat.images import MAX_IMAGE_BYTES, AnswerImage
from bot.core.errors import MediaTooLarge, ResultUnavailable, UpstreamError
from bot.core.media_ports import ImageFetcher
from bot.core.models import MediaFile, MediaKind

__all__ = ["gather_pictures", "image_size"]

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


async def gather_pictures(
    images: Sequence[AnswerImage], fetcher: ImageFetcher | None
) -> tuple[list[MediaFile], list[str]]:
    """The files to post, in order, and the sentences for those that failed."""
    results = await asyncio.gather(*(_picture(image, fetcher) for image in images))
    files = [r for r in results if isinstance(r, MediaFile)]
    problems = [r for r in results if isinstance(r, str)]
    return files, problems


async def _picture(image: AnswerImage, fetcher: ImageFetcher | None) -> MediaFile | str:
    if image.problem is None and image.url is not None:
        await _download(image, fetcher)
    if image.problem is not None:
        return f"⚠️ Image {image.number} could not be shown: {image.problem}."
    mime = image.mime_type
    data = image.data
    image.buffer = bytearray()  # one copy is enough
    name = f"image-{image.number}.{_EXTENSIONS.get(mime, mime.removeprefix('image/') or 'png')}"
    return MediaFile(kind=MediaKind.PHOTO, data=data, filename=name, mime_type=mime)


async def _download(image: AnswerImage, fetcher: ImageFetcher | None) -> None:
    assert image.url is not None
    if fetcher is None:
        image.fail("this bot cannot download images")
        return
    try:
        downloaded = await fetcher.fetch_image(image.url, max_bytes=MAX_IMAGE_BYTES)
    except MediaTooLarge:
        image.fail("it is too large")
        return
    except ResultUnavailable as exc:
        log.info("answer image %d unavailable: %s", image.number, exc.reason)
        image.fail("its address cannot be fetched" if exc.reason == "refused" else "it is gone")
        return
    except UpstreamError as exc:
        log.info("answer image %d not downloaded: %s", image.number, exc.reason)
        image.fail("the download failed")
        return
    mime = downloaded.content_type.split(";")[0].strip().lower()
    if not mime.startswith("image/"):
        image.fail("it is not an image")
        return
    image.mime_type = mime
    image.buffer = bytearray(downloaded.data)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG from its header; None when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                data[i + 5 : i + 7], "big"
            )
        i += 2 + length
    return None
