"""Maps the CometAPI SDK's task families onto :class:`bot.core.ports.TaskBackend`.

Typed requests (:mod:`bot.core.generation.requests`) leave as SDK calls, each family in its
own module (:mod:`~bot.adapters.midjourney`, :mod:`~bot.adapters.suno`,
:mod:`~bot.adapters.kling`); SDK task objects come back as
:class:`~bot.core.models.TaskSnapshot` with the result shapes
:mod:`bot.core.generation.delivery` documents. Every SDK error is converted here, ``from exc``:
submit errors into :class:`~bot.core.errors.GenerationError` subclasses (the sentence a user
sees, :mod:`bot.adapters.failures`), poll and download errors into
:class:`~bot.core.errors.UpstreamError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from bot.adapters.failures import to_generation_error
from bot.adapters.kling import kling_snapshot, submit_video
from bot.adapters.midjourney import mj_snapshot, submit_midjourney
from bot.adapters.suno import submit_music, suno_snapshot
from bot.core import errors as core
from bot.core.generation.records import Provider
from bot.core.generation.requests import GenerationRequest, MusicRequest, VideoRequest
from bot.core.generation.views import provider_name
from bot.core.models import Downloaded, Submitted, TaskRef, TaskSnapshot
from bot.core.ports import Telemetry
from bot.core.telemetry import NullTelemetry
from bot.providers import cometapi as sdk

__all__ = ["CometTaskBackend"]

log = logging.getLogger(__name__)

MJ_BATCH: Final = 100
SUNO_BATCH: Final = 50


class CometTaskBackend:
    """:class:`bot.core.ports.TaskBackend` over :class:`CometAPI` (see the module doc)."""

    def __init__(self, client: sdk.CometAPI, *, telemetry: Telemetry | None = None) -> None:
        self._client = client
        self._telemetry: Telemetry = telemetry or NullTelemetry()

    def _count(self, exc: sdk.CometAPIError) -> None:
        self._telemetry.upstream_error(type(exc).__name__, getattr(exc, "status_code", None))

    def batch_limit(self, provider: Provider) -> int:
        return {Provider.MIDJOURNEY: MJ_BATCH, Provider.SUNO: SUNO_BATCH}.get(provider, 1)

    async def submit(self, request: GenerationRequest) -> Submitted:
        provider = request.provider
        try:
            match request:
                case MusicRequest():
                    return await submit_music(self._client, request)
                case VideoRequest():
                    return await submit_video(self._client, request)
                case _:
                    return await submit_midjourney(self._client, request)
        except sdk.CometAPIError as exc:
            self._count(exc)
            log.warning(
                "cometapi %s %s submit: %s (status %s, request id %s)",
                provider.value,
                request.kind,
                type(exc).__name__,
                getattr(exc, "status_code", "-"),
                exc.request_id,
            )
            raise to_generation_error(exc, provider, request.kind) from exc
        except ValueError as exc:  # the SDK's own argument checks
            name = provider_name(provider)
            raise core.PromptRefused(f"{name} cannot take this: {exc}") from exc

    async def poll(self, provider: Provider, refs: Sequence[TaskRef]) -> list[TaskSnapshot]:
        try:
            if provider is Provider.MIDJOURNEY:
                ids = [ref.upstream_id for ref in refs]
                tasks = await self._client.midjourney.list_by_condition(ids)
                return [mj_snapshot(task) for task in tasks]
            if provider is Provider.SUNO:
                ids = [ref.upstream_id for ref in refs]
                return [suno_snapshot(t) for t in await self._client.suno.fetch_many(ids)]
            snapshots = []
            for ref in refs:
                task = await self._client.kling.query(ref.upstream_id, ref.kind)
                snapshots.append(kling_snapshot(task))
            return snapshots
        except (sdk.TaskNotFoundError, sdk.NotFoundError):
            return []  # unknown upstream: the poller keeps looking until the deadline
        except sdk.CometAPIError as exc:
            self._count(exc)
            retry_after = getattr(exc, "retry_after", None)
            raise core.UpstreamError(
                f"{provider.value} poll: {type(exc).__name__}: {exc.message}",
                retry_after=retry_after,
            ) from exc

    async def download(self, url: str, *, max_bytes: int) -> Downloaded:
        if not url:
            raise core.UpstreamError("the result has no URL")
        try:
            downloaded = await self._client.download(url, max_bytes=max_bytes)
        except sdk.DownloadTooLargeError as exc:
            raise core.MediaTooLarge(exc.message, reason="too_large") from exc
        except sdk.CometAPIError as exc:
            self._count(exc)
            raise download_error(exc) from exc
        return Downloaded(downloaded.data, downloaded.content_type)


def download_error(exc: sdk.CometAPIError) -> core.UpstreamError:
    """A failed download as the core sees it: permanent (a 404/410 or a URL the download
    rules refuse) or worth retrying later (timeouts, 5xx, the network)."""
    message = f"download: {type(exc).__name__}: {exc.message}"
    if isinstance(exc, sdk.DownloadRefusedError):
        return core.ResultUnavailable(message, reason="refused")
    if isinstance(exc, sdk.APIStatusError) and exc.status_code in (404, 410):
        return core.ResultUnavailable(message, reason="not_found")
    if isinstance(exc, sdk.APITimeoutError):
        return core.UpstreamError(message, reason="timeout")
    return core.UpstreamError(message, retry_after=getattr(exc, "retry_after", None))
