"""The image scanner: image markup split from a streamed answer, whatever the chunking."""

from __future__ import annotations

import base64
import random

import pytest

from bot.core.chat.images import MAX_IMAGE_BYTES, ImageScanner
from bot.core.chat.pictures import gather_pictures, image_size
from bot.core.errors import MediaTooLarge, ResultUnavailable, UpstreamError
from bot.core.models import Downloaded, MediaKind
from tests.fakes.cometapi_common import tiny_png

PNG = tiny_png()
B64 = base64.b64encode(PNG).decode()
ANSWER = f"Here you go: ![a cat](data:image/png;base64,{B64}) Enjoy! Really!"


def scan(chunks: list[str], scanner: ImageScanner | None = None) -> tuple[ImageScanner, list[str]]:
    scanner = scanner or ImageScanner()
    shown = [scanner.feed(c) for c in chunks]
    shown.append(scanner.finish())
    return scanner, shown


def split_randomly(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    chunks, i = [], 0
    while i < len(text):
        step = rng.randint(1, 9)
        chunks.append(text[i : i + step])
        i += step
    return chunks


@pytest.mark.parametrize("seed", range(30))
def test_a_data_uri_split_anywhere_never_shows_and_decodes(seed: int) -> None:
    scanner, shown = scan(split_randomly(ANSWER, seed))
    so_far = ""
    for piece in shown:
        so_far += piece
        assert "base64" not in so_far and "![" not in so_far and B64[:8] not in so_far
    assert so_far == "Here you go:  Enjoy! Really!"
    (image,) = scanner.images
    assert image.problem is None and image.data == PNG and image.mime_type == "image/png"
    assert scanner.stored_text() == "Here you go: [image 1] Enjoy! Really!"


def test_progress_lines_show_and_the_url_is_kept() -> None:
    text = ">🕐 Queuing.\n>🏃 Progress 14...37..\n\n![gen_01](https://cdn.example/x.png)\nDone."
    scanner, shown = scan(split_randomly(text, 3))
    assert "".join(shown) == ">🕐 Queuing.\n>🏃 Progress 14...37..\n\n\nDone."
    assert [i.url for i in scanner.images] == ["https://cdn.example/x.png"]
    assert "[image 1]" in scanner.stored_text()


def test_markup_that_is_not_an_image_is_text_again() -> None:
    text = "Wow! ![not closed and [a](link) ![x](relative.png) ![y] z !"
    _, shown = scan(split_randomly(text, 5))
    assert "".join(shown) == text


def test_an_unfinished_bang_bracket_is_held_until_it_resolves() -> None:
    scanner = ImageScanner()
    assert scanner.feed("Look ![ca") == "Look "
    assert scanner.feed("t](htt") == ""
    assert scanner.feed("ps://x/y.png) ok") == " ok"


@pytest.mark.parametrize(
    ("markup", "problem"),
    [
        ("![x](data:image/png;base64,@@@@)", "not valid base64"),
        ("![x](data:text/plain;base64,QUJD)", "not a base64 image"),
        ("![x](data:image/png;base64,QUJDR)", "not valid base64"),
        ("![x](data:image/png;base64,QUJD", "ended in the middle"),
    ],
)
def test_bad_data_uris_are_hidden_and_named(markup: str, problem: str) -> None:
    scanner, shown = scan(split_randomly(f"A {markup} B", 1))
    assert "".join(shown).replace(" ", "") in ("AB", "A")
    (image,) = scanner.images
    assert image.problem is not None and problem in image.problem


def test_an_image_over_the_cap_is_refused_and_its_bytes_dropped() -> None:
    big = base64.b64encode(bytes(4000)).decode()
    scanner, _ = scan([f"![x](data:image/png;base64,{big})"], ImageScanner(max_bytes=1000))
    (image,) = scanner.images
    assert image.problem == "it is too large" and image.data == b""


def test_two_images_get_two_placeholders() -> None:
    text = f"one ![a](data:image/png;base64,{B64}) two ![b](http://h/b.png)"
    scanner, _ = scan([text])
    assert scanner.stored_text() == "one [image 1] two [image 2]"


def test_image_size_reads_png_headers() -> None:
    assert image_size(tiny_png(size=8)) == (8, 8)
    assert image_size(b"nope") is None


class _Fetcher:
    def __init__(self, error: Exception | None = None, content_type: str = "image/png") -> None:
        self.error = error
        self.content_type = content_type
        self.asked: list[tuple[str, int]] = []

    async def fetch_image(self, url: str, *, max_bytes: int) -> Downloaded:
        self.asked.append((url, max_bytes))
        if self.error is not None:
            raise self.error
        return Downloaded(PNG, self.content_type)


def _url_image() -> ImageScanner:
    scanner, _ = scan(["a ![x](https://cdn.example/x.png) b"])
    return scanner


@pytest.mark.parametrize(
    ("fetcher", "sentence"),
    [
        (_Fetcher(MediaTooLarge("big", reason="too_large")), "it is too large"),
        (_Fetcher(UpstreamError("slow", reason="timeout")), "the download failed"),
        (_Fetcher(ResultUnavailable("404", reason="not_found")), "it is gone"),
        (_Fetcher(ResultUnavailable("private", reason="refused")), "cannot be fetched"),
        (_Fetcher(content_type="text/html"), "it is not an image"),
        (None, "cannot download"),
    ],
)
async def test_a_url_that_fails_is_one_sentence(fetcher: _Fetcher | None, sentence: str) -> None:
    files, problems = await gather_pictures(_url_image().images, fetcher)
    assert files == []
    (problem,) = problems
    assert problem.startswith("⚠️ Image 1 could not be shown:") and sentence in problem


async def test_a_url_is_fetched_under_the_cap_and_a_data_uri_decoded() -> None:
    scanner, _ = scan([f"![a](data:image/png;base64,{B64}) ![b](https://cdn.example/b.png)"])
    fetcher = _Fetcher()
    files, problems = await gather_pictures(scanner.images, fetcher)
    assert problems == [] and fetcher.asked == [("https://cdn.example/b.png", MAX_IMAGE_BYTES)]
    assert [(f.filename, f.data, f.kind) for f in files] == [
        ("image-1.png", PNG, MediaKind.PHOTO),
        ("image-2.png", PNG, MediaKind.PHOTO),
    ]
