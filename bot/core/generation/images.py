"""``/image``: a picture from the OpenAI images API, on every platform.

Unlike the task generations (:mod:`bot.core.generation.service`) this is one synchronous
call: no task row, no poller. The use case checks the request (a bare ``/image`` gets the
usage line and nothing goes upstream), asks :class:`~bot.core.ports.Admission` (the
``images`` daily quota, cooldowns), draws through :class:`~bot.core.media_ports.ImageModel`,
gives the quota back when the drawing failed, and posts the pictures as photos through the
platform's :class:`~bot.core.ports.Outbox` (paced like every other post).

Telegram passes the command's text with its options (``--model dall-e-3 a cat``); Discord
passes the model option as ``model``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.core.errors import UserFacingError
from bot.core.generation.progress import post_paced
from bot.core.generation.requests import Origin
from bot.core.generation.views import excerpt
from bot.core.media_ports import ImageModel
from bot.core.models import ImageInput, MediaFile, MediaKind, OutgoingMessage, Platform
from bot.core.ports import Admission, Outbox
from bot.core.text import is_blank

__all__ = ["USAGE", "ImageRequest", "ImageService", "ImagesConfig", "parse_image"]

log = logging.getLogger(__name__)

QUOTA: Final = "images"
USAGE: Final = (
    "Usage: /image PROMPT — a picture from the prompt (attach or reply to a photo to edit "
    "it; --model NAME picks another image model)."
)
_MODEL_OPTION = re.compile(r"^--model(?:=|\s+)(\S+)\s*", re.IGNORECASE)
_EXTENSIONS: Final = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True, slots=True)
class ImagesConfig:
    """``[images]``: the default model, size and quality, and the models one may pick."""

    model: str = "gpt-image-1"
    size: str = "1024x1024"
    quality: str = ""
    models: tuple[str, ...] = ("gpt-image-1", "dall-e-3")
    max_prompt_chars: int = 4000
    allowed: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", frozenset((self.model, *self.models)))


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    model: str


def parse_image(text: str, config: ImagesConfig, *, model: str | None = None) -> ImageRequest:
    """``[--model NAME] PROMPT`` (or ``model`` given apart) -> a checked request; a
    :class:`UserFacingError` with the usage line or the reason otherwise."""
    text = text.strip()
    option = _MODEL_OPTION.match(text)
    if option is not None:
        model = option[1]
        text = text[option.end() :]
    if is_blank(text):
        raise UserFacingError(USAGE)
    chosen = model or config.model
    if chosen not in config.allowed:
        names = ", ".join(sorted(config.allowed))
        raise UserFacingError(
            f"{excerpt(chosen, 60)} is not an image model here; pick one of {names}."
        )
    if len(text) > config.max_prompt_chars:
        raise UserFacingError(
            f"That prompt is {len(text):,} characters; /image takes at most "
            f"{config.max_prompt_chars:,}."
        )
    return ImageRequest(text.strip(), chosen)


class _Open:
    """The admission when no limits are configured."""

    def recorded(self) -> None:
        return None

    async def refund(self) -> bool:
        return False


class ImageService:
    """The ``/image`` use case (see the module docstring)."""

    def __init__(
        self,
        *,
        model: ImageModel,
        outboxes: Mapping[Platform, Outbox],
        config: ImagesConfig,
        admission: Admission | None = None,
    ) -> None:
        self._model = model
        self._outboxes = outboxes
        self.config = config
        self._admission = admission

    def check(self, text: str, *, model: str | None = None) -> ImageRequest:
        """The checks of :meth:`image`, for platforms to run before downloading a photo."""
        return parse_image(text, self.config, model=model)

    async def image(
        self,
        origin: Origin,
        text: str,
        *,
        model: str | None = None,
        image: ImageInput | None = None,
    ) -> int:
        """Draw ``text`` (edit ``image`` by it, when given) and post the pictures as replies
        to ``origin``; returns how many were posted."""
        request = parse_image(text, self.config, model=model)
        outbox = self._outboxes.get(origin.key.platform)
        if outbox is None:
            raise UserFacingError("Pictures are not available here.")
        admitted = (
            await self._admission.admit_generation(origin.user_id, QUOTA)
            if self._admission is not None
            else _Open()
        )
        admitted.recorded()
        try:
            pictures = await self._model.draw(
                model=request.model,
                prompt=request.prompt,
                size=self.config.size,
                quality=self.config.quality,
                image=image,
            )
        except Exception:
            # Nothing was drawn for the person (a refusal, or no clear answer): the day's
            # quota is theirs again.
            await admitted.refund()
            raise
        return await self._post(outbox, origin, request, pictures)

    async def _post(
        self, outbox: Outbox, origin: Origin, request: ImageRequest, pictures: Sequence[ImageInput]
    ) -> int:
        caption = excerpt(f"🖼 {request.prompt}", 1000)
        for number, picture in enumerate(pictures, 1):
            extension = _EXTENSIONS.get(picture.mime_type, "png")
            media = MediaFile(
                MediaKind.PHOTO,
                picture.data,
                f"image-{number}.{extension}",
                mime_type=picture.mime_type,
            )
            await post_paced(
                outbox,
                origin.key,
                OutgoingMessage(caption if number == 1 else "", media=media),
                reply_to=origin.reply_to,
            )
        return len(pictures)
