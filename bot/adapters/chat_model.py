"""Maps the CometAPI SDK onto the core's ports, converting its errors at the boundary."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from bot.adapters.task_backend import download_error
from bot.core import errors as core
from bot.core.models import ChatDelta, ChatMessage, Downloaded, Usage
from bot.core.ports import Telemetry
from bot.core.telemetry import NullTelemetry
from bot.providers import cometapi as sdk

log = logging.getLogger(__name__)

MODEL_LIST_TTL = 600.0


def to_model_error(exc: sdk.CometAPIError, model: str) -> core.ModelError:
    """The core's (user-presentable) view of a provider error."""
    rid = exc.request_id
    match exc:
        case sdk.AuthenticationError() | sdk.PermissionDeniedError():
            return core.ModelAuthError(request_id=rid)
        case sdk.RateLimitError():
            return core.ModelRateLimited(request_id=rid)
        case sdk.APITimeoutError():
            return core.ModelTimeout(request_id=rid)
        case sdk.StreamTruncatedError():
            return core.StreamCut(request_id=rid)
        case sdk.RequestTooLargeError():
            return core.ModelBadRequest(
                "That request is too large for the model; try /reset or a shorter message.",
                request_id=rid,
            )
        case sdk.NotFoundError():
            return core.ModelBadRequest(
                f"The model {model} is not available. Pick another with /model.", request_id=rid
            )
        case sdk.BadRequestError():
            return core.ModelBadRequest(f"The model {model} refused this request.", request_id=rid)
        case sdk.WrongBaseURLError():
            return core.ModelUnavailable(
                "The bot cannot reach CometAPI (its base URL looks wrong). "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case _:
            return core.ModelUnavailable(request_id=rid)


def to_openai(message: ChatMessage) -> dict[str, Any]:
    if not message.images:
        return {"role": message.role.value, "content": message.content}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [sdk.image_part(i.data, mime_type=i.mime_type) for i in message.images]
    return {"role": message.role.value, "content": parts}


class CometChatModel:
    """:class:`bot.core.ports.ChatModel` over :class:`CometAPI` chat completions."""

    def __init__(
        self,
        client: sdk.CometAPI,
        *,
        list_ttl: float = MODEL_LIST_TTL,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
        read_interval: float = 0.0,
    ) -> None:
        self._client = client
        self._read_interval = read_interval
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._ttl = list_ttl
        self._clock = clock
        self._models: list[str] = []
        self._fetched_at = float("-inf")

    async def stream(
        self, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[ChatDelta, None]:
        payload = [to_openai(m) for m in messages]
        try:
            async with self._client.chat.stream(
                model, payload, read_interval=self._read_interval
            ) as stream:
                async for delta in stream:
                    usage = None
                    if delta.usage is not None:
                        usage = Usage(delta.usage.prompt_tokens, delta.usage.completion_tokens)
                    yield ChatDelta(
                        text=delta.content,
                        reasoning=delta.reasoning_content,
                        usage=usage,
                        finish_reason=delta.finish_reason,
                    )
        except sdk.CometAPIError as exc:
            self._telemetry.upstream_error(type(exc).__name__, getattr(exc, "status_code", None))
            log.warning(
                "cometapi chat %s: %s (status %s, request id %s)",
                model,
                type(exc).__name__,
                getattr(exc, "status_code", "-"),
                exc.request_id,
            )
            raise to_model_error(exc, model) from exc

    async def fetch_image(self, url: str, *, max_bytes: int) -> Downloaded:
        """:class:`bot.core.media_ports.ImageFetcher`: an image an answer names, through the
        SDK's one safe downloader, never with the key (the URL came from a model)."""
        try:
            downloaded = await self._client.download(url, max_bytes=max_bytes, auth=False)
        except sdk.DownloadTooLargeError as exc:
            raise core.MediaTooLarge(exc.message, reason="too_large") from exc
        except sdk.CometAPIError as exc:
            raise download_error(exc) from exc
        return Downloaded(downloaded.data, downloaded.content_type)

    async def list_models(self) -> list[str]:
        """CometAPI's model list, cached for a while (model ids churn, but not by the second)."""
        if self._models and self._clock() - self._fetched_at < self._ttl:
            return list(self._models)
        try:
            self._models = await self._client.list_models()
        except sdk.CometAPIError as exc:
            if self._models:  # a stale list beats no list
                log.warning("cometapi: model list refresh failed: %s", type(exc).__name__)
                return list(self._models)
            raise to_model_error(exc, "list") from exc
        self._fetched_at = self._clock()
        return list(self._models)
