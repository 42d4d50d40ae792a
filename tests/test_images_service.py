"""The ``/image`` use case with in-memory fakes: parsing, the quota reserved and given back,
the pictures posted as photos."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from bot.core.errors import PromptRefused, UserFacingError
from bot.core.generation.images import USAGE, ImagesConfig, ImageService, parse_image
from bot.core.generation.requests import Origin
from bot.core.models import (
    ConversationKey,
    ImageInput,
    MediaKind,
    MediaLimits,
    OutgoingMessage,
    Platform,
    StatusView,
)

T = TypeVar("T")
KEY = ConversationKey(Platform.TELEGRAM, "42")
ORIGIN = Origin(KEY, "tg:42", reply_to="7")
PNG = ImageInput(b"\x89PNG\r\n\x1a\nxx", "image/png")


class Painter:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    async def draw(self, **kwargs: Any) -> list[ImageInput]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return [PNG]


class Outbox:
    limits = MediaLimits(10 << 20, 50 << 20)

    def __init__(self) -> None:
        self.posts: list[tuple[OutgoingMessage, str | None]] = []

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        return await call()

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        self.posts.append((message, reply_to))
        return str(len(self.posts))

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        raise AssertionError("no edits")


class Reservation:
    def __init__(self) -> None:
        self.refunds = 0

    def recorded(self) -> None:
        return None

    async def refund(self) -> bool:
        self.refunds += 1
        return True


class Admission:
    def __init__(self) -> None:
        self.admitted: list[tuple[str, str]] = []
        self.reservation = Reservation()

    async def admit_generation(self, user: str, kind: str, *, amount: int = 1) -> Reservation:
        self.admitted.append((user, kind))
        return self.reservation


def service(painter: Painter, admission: Admission, outbox: Outbox) -> ImageService:
    return ImageService(
        model=painter,
        outboxes={Platform.TELEGRAM: outbox},
        config=ImagesConfig(quality="high"),
        admission=admission,
    )


def test_parse_reads_the_model_option_and_refuses_blank_and_unknown() -> None:
    config = ImagesConfig(models=("dall-e-3",))
    assert parse_image("--model dall-e-3 a cat", config).model == "dall-e-3"
    assert parse_image("--model=gpt-image-1  a cat ", config).prompt == "a cat"
    for blank in ("", "  ", "\u200b", "--model dall-e-3 "):
        with pytest.raises(UserFacingError, match=r"^Usage: /image"):
            parse_image(blank, config)
    with pytest.raises(UserFacingError, match="not an image model here"):
        parse_image("a cat", config, model="flux")
    with pytest.raises(UserFacingError, match="at most 10"):
        parse_image("x" * 11, ImagesConfig(max_prompt_chars=10))


async def test_a_picture_is_counted_and_posted_as_a_photo_reply() -> None:
    painter, admission, outbox = Painter(), Admission(), Outbox()
    assert await service(painter, admission, outbox).image(ORIGIN, "a cat") == 1
    assert admission.admitted == [("tg:42", "images")]
    assert painter.calls == [
        {"model": "gpt-image-1", "prompt": "a cat", "size": "1024x1024", "quality": "high",
         "image": None}
    ]  # fmt: skip
    ((message, reply_to),) = outbox.posts
    assert reply_to == "7" and message.text == "🖼 a cat"
    assert message.media is not None and message.media.kind is MediaKind.PHOTO
    assert message.media.data == PNG.data and message.media.filename == "image-1.png"
    assert admission.reservation.refunds == 0


async def test_a_failed_drawing_gives_the_quota_back() -> None:
    painter, admission, outbox = Painter(PromptRefused("no")), Admission(), Outbox()
    with pytest.raises(PromptRefused):
        await service(painter, admission, outbox).image(ORIGIN, "a cat", image=PNG)
    assert painter.calls[0]["image"] is PNG
    assert admission.reservation.refunds == 1 and not outbox.posts


async def test_a_bare_image_asks_nothing_and_counts_nothing() -> None:
    painter, admission, outbox = Painter(), Admission(), Outbox()
    with pytest.raises(UserFacingError) as caught:
        await service(painter, admission, outbox).image(ORIGIN, "   ")
    assert caught.value.message == USAGE
    assert not painter.calls and not admission.admitted and not outbox.posts
