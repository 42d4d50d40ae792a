"""Maps the CometAPI SDK's task families onto :class:`bot.core.ports.TaskBackend`.

Requests arrive in the core's own shape (the task row's ``request``) and leave as SDK
calls; SDK task objects come back as :class:`~bot.core.models.TaskSnapshot` with the result
shapes :mod:`bot.core.generation.delivery` documents. Every SDK error is converted here,
``from exc``:
submit errors into :class:`~bot.core.errors.GenerationError` subclasses (the sentence a
user sees), poll and download errors into :class:`~bot.core.errors.UpstreamError`.

Failure texts from the providers are localized and never branched on, with one exception:
Midjourney and Kling report content moderation only in their free-text reason, so a few
keywords decide between "moderation blocked it" and "could not finish it" (the reason is
shown either way).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bot.core import errors as core
from bot.core.generation.records import Provider
from bot.core.generation.views import excerpt
from bot.core.models import (
    Downloaded,
    ImageInput,
    Submitted,
    TaskRef,
    TaskSnapshot,
    UpstreamState,
)
from bot.core.ports import Telemetry
from bot.core.telemetry import NullTelemetry
from bot.providers import cometapi as sdk

__all__ = ["CometTaskBackend", "button_kind", "to_generation_error"]

log = logging.getLogger(__name__)

MJ_BATCH: Final = 100
SUNO_BATCH: Final = 50
_NAMES: Final = {Provider.MIDJOURNEY: "Midjourney", Provider.SUNO: "Suno", Provider.KLING: "Kling"}
_MODERATION: Final = (
    "filter",
    "moderat",
    "inappropriate",
    "nsfw",
    "safety",
    "sensitive",
    "violat",
    "敏感",
    "违规",
    "审核",
)
_MJ_STATES: Final = {
    sdk.MJTaskStatus.NOT_START: UpstreamState.QUEUED,
    sdk.MJTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.MJTaskStatus.IN_PROGRESS: UpstreamState.RUNNING,
    sdk.MJTaskStatus.MODAL: UpstreamState.WAITING,
    sdk.MJTaskStatus.SUCCESS: UpstreamState.SUCCEEDED,
}
_SUNO_STATES: Final = {
    sdk.SunoTaskStatus.NOT_START: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.QUEUED: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.IN_PROGRESS: UpstreamState.RUNNING,
    sdk.SunoTaskStatus.SUCCESS: UpstreamState.SUCCEEDED,
}
_KLING_STATES: Final = {
    sdk.KlingTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.KlingTaskStatus.PROCESSING: UpstreamState.RUNNING,
    sdk.KlingTaskStatus.SUCCEED: UpstreamState.SUCCEEDED,
}


class CometTaskBackend:
    """:class:`bot.core.ports.TaskBackend` over :class:`CometAPI` (see the module doc)."""

    def __init__(self, client: sdk.CometAPI, *, telemetry: Telemetry | None = None) -> None:
        self._client = client
        self._telemetry: Telemetry = telemetry or NullTelemetry()

    def _count(self, exc: sdk.CometAPIError) -> None:
        self._telemetry.upstream_error(type(exc).__name__, getattr(exc, "status_code", None))

    def batch_limit(self, provider: Provider) -> int:
        return {Provider.MIDJOURNEY: MJ_BATCH, Provider.SUNO: SUNO_BATCH}.get(provider, 1)

    # -- submit ---------------------------------------------------------------------------------

    async def submit(
        self,
        provider: Provider,
        kind: str,
        request: Mapping[str, Any],
        *,
        images: Sequence[ImageInput] = (),
    ) -> Submitted:
        try:
            if provider is Provider.MIDJOURNEY:
                return await self._mj_submit(kind, request, images)
            if provider is Provider.SUNO:
                return Submitted(await self._suno_submit(request))
            task = await self._kling_submit(kind, request, images)
            return Submitted(task.task_id)
        except sdk.CometAPIError as exc:
            self._count(exc)
            log.warning(
                "cometapi %s %s submit: %s (status %s, request id %s)",
                provider.value,
                kind,
                type(exc).__name__,
                getattr(exc, "status_code", "-"),
                exc.request_id,
            )
            raise to_generation_error(exc, provider, kind) from exc
        except ValueError as exc:  # the SDK's own argument checks
            raise core.PromptRefused(f"{_NAMES[provider]} cannot take this: {exc}") from exc

    async def _mj_submit(
        self, kind: str, request: Mapping[str, Any], images: Sequence[ImageInput]
    ) -> Submitted:
        mj = self._client.midjourney
        data = [image.data for image in images]
        if kind == "imagine":
            result = await mj.imagine(str(request["prompt"]), base64_array=data or None)
        elif kind == "blend":
            result = await mj.blend(data, dimensions=str(request.get("dimensions", "SQUARE")))
        elif kind == "describe":
            link = request.get("link")
            if link:
                result = await mj.describe(link=str(link))
            else:
                result = await mj.describe(base64=data[0])
        elif kind == "action":
            result = await mj.action(str(request["parent"]), str(request["custom_id"]))
        elif kind == "modal":
            result = await mj.modal(str(request["task_id"]), prompt=str(request["prompt"]))
        else:
            raise ValueError(f"unknown Midjourney submit {kind!r}")
        return Submitted(result.task_id, waiting=result.is_modal)

    async def _suno_submit(self, request: Mapping[str, Any]) -> str:
        mv = str(request.get("mv") or sdk.DEFAULT_SUNO_MODEL)
        instrumental = bool(request.get("instrumental"))
        if request.get("description"):
            return await self._client.suno.music(
                gpt_description_prompt=str(request["description"]),
                make_instrumental=instrumental,
                mv=mv,
            )
        return await self._client.suno.music(
            prompt=str(request.get("lyrics") or ""),
            tags=str(request.get("style") or ""),
            title=str(request.get("title") or "") or None,
            make_instrumental=instrumental,
            mv=mv,
        )

    async def _kling_submit(
        self, kind: str, request: Mapping[str, Any], images: Sequence[ImageInput]
    ) -> sdk.KlingTask:
        model = str(request.get("model") or sdk.DEFAULT_KLING_MODEL)
        duration = int(request.get("duration") or 5)
        prompt = str(request.get("prompt") or "")
        if kind == "image2video":
            return await self._client.kling.image2video(
                images[0].data, prompt or None, model_name=model, duration=duration
            )
        return await self._client.kling.text2video(
            prompt,
            model_name=model,
            duration=duration,
            aspect_ratio=str(request.get("aspect_ratio") or "16:9"),
        )

    # -- poll -----------------------------------------------------------------------------------

    async def poll(self, provider: Provider, refs: Sequence[TaskRef]) -> list[TaskSnapshot]:
        try:
            if provider is Provider.MIDJOURNEY:
                ids = [ref.upstream_id for ref in refs]
                return [mj_snapshot(t) for t in await self._client.midjourney.list_by_condition(ids)]
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
        except sdk.APIResponseError as exc:
            # The SDK's only size refusal (no dedicated class): "download larger than N bytes".
            if "larger than" in exc.message:
                raise core.MediaTooLarge(exc.message) from exc
            raise core.UpstreamError(f"download: {exc.message}") from exc
        except sdk.CometAPIError as exc:
            raise core.UpstreamError(f"download: {type(exc).__name__}: {exc.message}") from exc
        return Downloaded(downloaded.data, downloaded.content_type)


# -- SDK objects -> snapshots ---------------------------------------------------------------------


def mj_snapshot(task: sdk.MJTask) -> TaskSnapshot:
    state = _MJ_STATES.get(task.status, UpstreamState.FAILED)
    if state is UpstreamState.SUCCEEDED:
        result: dict[str, Any]
        if task.action.upper() == "DESCRIBE":
            result = {"type": "prompts", "prompts": task.describe_prompts}
        else:
            result = {
                "type": "image",
                "image_url": task.image_url,
                "prompt": task.final_prompt or task.prompt,
                "buttons": [
                    {"custom_id": b.custom_id, "label": b.label, "emoji": b.emoji, "kind": kind}
                    for b in task.buttons
                    if b.custom_id and (kind := button_kind(b.custom_id)) is not None
                ],
            }
        return TaskSnapshot(task.id, state, 100, result=result)
    if state is UpstreamState.FAILED:
        return TaskSnapshot(task.id, state, error=_mj_failure(task.fail_reason))
    preview = (task.image_url or None) if state is UpstreamState.RUNNING else None
    return TaskSnapshot(task.id, state, task.progress, preview_url=preview)


def suno_snapshot(task: sdk.SunoTask) -> TaskSnapshot:
    state = _SUNO_STATES.get(task.status, UpstreamState.FAILED)
    if state is UpstreamState.SUCCEEDED:
        clips = [
            {
                "title": clip.title,
                "audio_url": clip.audio_url,
                "image_url": clip.image_url or clip.image_large_url,
                "duration": clip.duration,
                "tags": clip.tags,
            }
            for clip in task.clips
            if clip.audio_url
        ]
        if not clips:
            return TaskSnapshot(task.task_id, UpstreamState.FAILED, error=_SUNO_EMPTY)
        return TaskSnapshot(task.task_id, state, 100, result={"type": "audio", "clips": clips})
    if state is UpstreamState.FAILED:
        reason = task.fail_reason or next(
            (clip.error_message for clip in task.clips if clip.error_message), ""
        )
        return TaskSnapshot(task.task_id, state, error=_failure(Provider.SUNO, "song", reason))
    return TaskSnapshot(task.task_id, state, task.progress or None)


def kling_snapshot(task: sdk.KlingTask) -> TaskSnapshot:
    state = _KLING_STATES.get(task.status, UpstreamState.FAILED)
    if state is UpstreamState.SUCCEEDED:
        if not task.video_url:
            return TaskSnapshot(task.task_id, UpstreamState.FAILED, error=_KLING_EMPTY)
        duration = task.videos[0].duration if task.videos else None
        result = {"type": "video", "video_url": task.video_url, "duration": duration}
        return TaskSnapshot(task.task_id, state, 100, result=result)
    if state is UpstreamState.FAILED:
        error = _failure(Provider.KLING, "video", task.status_message)
        return TaskSnapshot(task.task_id, state, error=error)
    return TaskSnapshot(task.task_id, state, None)


def button_kind(custom_id: str) -> str | None:
    """What a Midjourney button does (cometapi.md §2.7); None for buttons the bot leaves out:
    Vary (Region) needs a mask a chat cannot draw, and bookmarks are not actions."""
    if "::Inpaint::" in custom_id or custom_id.startswith("MJ::BOOKMARK"):
        return None
    if "::CustomZoom::" in custom_id:
        return "custom_zoom"
    if "::Outpaint::" in custom_id:
        return "zoom"
    parts = custom_id.split("::")
    name = parts[2] if len(parts) > 2 else ""
    for prefix, kind in (
        ("upsample", "upscale"),
        ("high_variation", "vary"),
        ("low_variation", "vary"),
        ("variation", "variation"),
        ("reroll", "reroll"),
        ("pan_", "pan"),
        ("animate", "animate"),
    ):
        if name.startswith(prefix):
            return kind
    return "action"


# -- errors ---------------------------------------------------------------------------------------

_SUNO_EMPTY: Final = "Suno finished without any song to send. Please try again."
_KLING_EMPTY: Final = "Kling finished without a video to send. Please try again."


def _mj_failure(reason: str) -> str:
    lowered = reason.lower()
    if "banned" in lowered:
        return (
            "Midjourney refused the prompt: it contains a banned word. "
            "Please rephrase it and try again."
        )
    if any(word in lowered for word in _MODERATION):
        return (
            "Midjourney's moderation blocked this image (its content filters flagged the "
            "result). Please try a different prompt."
        )
    return _failure(Provider.MIDJOURNEY, "image", reason)


def _failure(provider: Provider, what: str, reason: str) -> str:
    name = _NAMES[provider]
    lowered = reason.lower()
    if provider is not Provider.MIDJOURNEY and any(w in lowered for w in _MODERATION):
        return f"{name}'s content moderation refused this {what}. Please try a different prompt."
    detail = f" (it said: {excerpt(reason, 200)})" if reason.strip() else ""
    return f"{name} could not finish this {what}{detail}. Please try again."


def to_generation_error(
    exc: sdk.CometAPIError, provider: Provider, kind: str
) -> core.GenerationError:
    """The user's view of a failed submit (the caller raises it ``from exc``)."""
    name = _NAMES[provider]
    rid = exc.request_id
    match exc:
        case sdk.SubmitUncertainError():
            return core.SubmitUncertain(request_id=rid)
        case sdk.BannedPromptError():
            word = f" (“{exc.banned_word}”)" if exc.banned_word else ""
            return core.PromptRefused(
                f"Midjourney refused the prompt: it contains a banned word{word}. "
                "Please rephrase it and try again.",
                request_id=rid,
            )
        case sdk.SubmitValidationError() if kind == "action":
            return core.PromptRefused(
                "Midjourney refused this button; the image may have expired "
                f"(it said: {excerpt(exc.description, 200)}).",
                request_id=rid,
            )
        case sdk.SubmitValidationError():
            return core.PromptRefused(
                f"Midjourney refused the request (it said: {excerpt(exc.description, 200)}).",
                request_id=rid,
            )
        case sdk.QueueFullError() | sdk.NoAccountAvailableError() | sdk.RateLimitError():
            return core.GenerationBusy(
                f"{name} is busy right now. Please try again in a minute.", request_id=rid
            )
        case sdk.AuthenticationError() | sdk.PermissionDeniedError():
            return core.GenerationError(
                "The bot's CometAPI key was refused, so it cannot generate. "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case sdk.WrongBaseURLError():
            return core.GenerationError(
                "The bot cannot reach CometAPI (its base URL looks wrong). "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case sdk.SunoAPIError() | sdk.KlingAPIError() | sdk.BadRequestError():
            return core.PromptRefused(f"{name} refused this request.", request_id=rid)
        case _:
            return core.GenerationError(
                f"{name} is having trouble right now. Please try again later.", request_id=rid
            )
