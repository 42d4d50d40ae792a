"""The OpenAI images API through CometAPI: ``/v1/images/generations`` and ``/v1/images/edits``.

Both answer synchronously (no task to poll) with ``{created, data: [{b64_json | url,
revised_prompt?}]}``: gpt-image-1 always sends ``b64_json``, dall-e-3 a ``url`` unless asked
otherwise, other models either. Both calls are paid: they are sent with the submit rules
(never resent after an unclear outcome); ``read_timeout`` gives a slow model the minutes it
needs instead of the client's read timeout. A timeout raises
:class:`~bot.providers.cometapi.errors.SubmitUncertainError` rather than drawing twice.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import Field

from bot.providers.cometapi._base import LenientModel
from bot.providers.cometapi.errors import APIResponseError
from bot.providers.cometapi.media import image_mime_type
from bot.providers.cometapi.requester import Multipart, Requester

__all__ = ["GeneratedImage", "Images", "ImagesResult"]

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class GeneratedImage(LenientModel):
    """One picture of an answer: inline base64 or a link to fetch (with the client's
    :meth:`~bot.providers.cometapi.client.CometAPI.download`)."""

    b64_json: str = ""
    url: str = ""
    revised_prompt: str = ""

    def decoded(self) -> bytes:
        """The bytes of ``b64_json``; :class:`APIResponseError` if it is not base64."""
        try:
            return base64.b64decode(self.b64_json, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise APIResponseError("images: b64_json is not valid base64") from exc


class ImagesResult(LenientModel):
    created: int = 0
    data: list[GeneratedImage] = Field(default_factory=list)


class Images:
    """``client.images``: draw from a prompt, or edit a picture by a prompt."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    async def generate(
        self,
        model: str,
        prompt: str,
        *,
        n: int = 1,
        size: str | None = None,
        quality: str | None = None,
        response_format: str | None = None,
        read_timeout: float | None = None,
    ) -> ImagesResult:
        payload: dict[str, object] = {"model": model, "prompt": prompt, "n": n}
        options = (("size", size), ("quality", quality), ("response_format", response_format))
        for key, value in options:
            if value:
                payload[key] = value
        body = await self._requester.post(
            "/v1/images/generations", json=payload, paid=True, read_timeout=read_timeout
        )
        return _result(body, "/v1/images/generations")

    async def edit(
        self,
        model: str,
        prompt: str,
        image: bytes,
        *,
        n: int = 1,
        size: str | None = None,
        quality: str | None = None,
        read_timeout: float | None = None,
    ) -> ImagesResult:
        """Multipart, the picture as ``image`` with a filename whose extension names its
        format (the API reads the format from it)."""
        fields = {"model": model, "prompt": prompt, "n": str(n)}
        for key, value in (("size", size), ("quality", quality)):
            if value:
                fields[key] = value
        mime = image_mime_type(image)
        files = {"image": (f"image.{_EXTENSIONS.get(mime, 'png')}", image, mime)}
        form = Multipart(fields, files)
        body = await self._requester.post(
            "/v1/images/edits", form=form, paid=True, read_timeout=read_timeout
        )
        return _result(body, "/v1/images/edits")


def _result(body: object, path: str) -> ImagesResult:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise APIResponseError(f"POST {path}: the answer has no 'data' list")
    result = ImagesResult.model_validate(body)
    if not any(item.b64_json or item.url for item in result.data):
        raise APIResponseError(f"POST {path}: the answer has no picture")
    return result
