"""Maps the SDK's images family onto :class:`bot.core.media_ports.ImageModel`.

Answers come as ``b64_json`` (decoded here) or as a ``url``, fetched through the client's
one safe downloader without the key (the link is named by upstream, not ours to trust).
Every SDK error becomes a :class:`~bot.core.errors.GenerationError` with one sentence,
``from exc``.
"""

from __future__ import annotations

import logging
from typing import Final

from bot.core import errors as core
from bot.core.models import ImageInput
from bot.core.ports import Telemetry
from bot.core.telemetry import NullTelemetry
from bot.providers import cometapi as sdk

__all__ = ["CometImageModel", "to_image_error"]

log = logging.getLogger(__name__)

MAX_PICTURE: Final = 20 * 1024 * 1024
"""A picture bigger than this is not a picture we can post (Telegram and Discord)."""


def to_image_error(exc: sdk.CometAPIError, model: str) -> core.GenerationError:
    """The sentence a person sees for a failed ``/image``."""
    rid = exc.request_id
    match exc:
        case sdk.RateLimitError():
            return core.GenerationBusy(
                "The image service is busy right now. Please try again in a minute.",
                request_id=rid,
            )
        case sdk.AuthenticationError() | sdk.PermissionDeniedError():
            return core.GenerationError(
                "The bot's CometAPI key was refused, so it cannot draw. "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case sdk.NotFoundError():
            return core.PromptRefused(
                f"The image model {model} is not available right now.", request_id=rid
            )
        case sdk.BadRequestError():
            # Content-policy refusals are 400s whose wording varies by model: one sentence.
            return core.PromptRefused(
                f"The image model {model} refused this prompt (it may break its content "
                "policy); please try a different one.",
                request_id=rid,
            )
        case sdk.SubmitUncertainError() | sdk.APITimeoutError():
            return core.GenerationError(
                "The image service took too long to answer. Please try again.", request_id=rid
            )
        case (
            sdk.DownloadRefusedError()
            | sdk.DownloadTooLargeError()
            | sdk.DownloadTooSlowError()
            | sdk.APIResponseError()
        ):
            return core.GenerationError(
                "The image service's answer held no picture I could use. Please try again.",
                request_id=rid,
            )
        case _:
            return core.GenerationError(
                "The image service is having trouble right now. Please try again later.",
                request_id=rid,
            )


class CometImageModel:
    """:class:`bot.core.media_ports.ImageModel` over ``client.images`` (see the module doc)."""

    def __init__(
        self,
        client: sdk.CometAPI,
        *,
        timeout: float | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._telemetry: Telemetry = telemetry or NullTelemetry()

    async def draw(
        self,
        *,
        model: str,
        prompt: str,
        size: str,
        quality: str,
        image: ImageInput | None = None,
    ) -> list[ImageInput]:
        images = self._client.images
        try:
            if image is not None:
                result = await images.edit(
                    model,
                    prompt,
                    image.data,
                    size=size or None,
                    quality=quality or None,
                    read_timeout=self._timeout,
                )
            else:
                result = await images.generate(
                    model,
                    prompt,
                    size=size or None,
                    quality=quality or None,
                    read_timeout=self._timeout,
                )
            return [await self._picture(item) for item in result.data if item.b64_json or item.url]
        except sdk.CometAPIError as exc:
            self._telemetry.upstream_error(type(exc).__name__, getattr(exc, "status_code", None))
            log.warning(
                "cometapi images %s: %s (status %s, request id %s)",
                model,
                type(exc).__name__,
                getattr(exc, "status_code", "-"),
                exc.request_id,
            )
            raise to_image_error(exc, model) from exc

    async def _picture(self, item: sdk.GeneratedImage) -> ImageInput:
        if item.b64_json:
            data = item.decoded()
        else:
            data = (await self._client.download(item.url, max_bytes=MAX_PICTURE, auth=False)).data
        return ImageInput(data, sdk.image_mime_type(data))
