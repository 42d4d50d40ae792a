"""Kling through the SDK: a video request to a submit, SDK tasks to snapshots."""

from __future__ import annotations

from typing import Final

from bot.adapters.failures import task_failure
from bot.core.generation.records import Provider
from bot.core.generation.requests import VideoRequest
from bot.core.models import Submitted, TaskSnapshot, UpstreamState
from bot.providers import cometapi as sdk

__all__ = ["kling_snapshot", "submit_video"]

_STATES: Final = {
    sdk.KlingTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.KlingTaskStatus.PROCESSING: UpstreamState.RUNNING,
    sdk.KlingTaskStatus.SUCCEED: UpstreamState.SUCCEEDED,
}
_EMPTY: Final = "Kling finished without a video to send. Please try again."


async def submit_video(client: sdk.CometAPI, request: VideoRequest) -> Submitted:
    """One paid submit: text-to-video, or image-to-video when the request has an image."""
    spec = request.spec
    model = request.model or sdk.DEFAULT_KLING_MODEL
    if request.image is not None:
        task = await client.kling.image2video(
            request.image.data, spec.prompt or None, model_name=model, duration=spec.duration
        )
    else:
        task = await client.kling.text2video(
            spec.prompt,
            model_name=model,
            duration=spec.duration,
            aspect_ratio=spec.aspect_ratio or "16:9",
        )
    return Submitted(task.task_id)


def kling_snapshot(task: sdk.KlingTask) -> TaskSnapshot:
    state = _STATES.get(task.status, UpstreamState.FAILED)
    if state is UpstreamState.SUCCEEDED:
        if not task.video_url:
            return TaskSnapshot(task.task_id, UpstreamState.FAILED, error=_EMPTY)
        duration = task.videos[0].duration if task.videos else None
        result = {"type": "video", "video_url": task.video_url, "duration": duration}
        return TaskSnapshot(task.task_id, state, 100, result=result)
    if state is UpstreamState.FAILED:
        error = task_failure(Provider.KLING, "video", task.status_message)
        return TaskSnapshot(task.task_id, state, error=error)
    return TaskSnapshot(task.task_id, state, None)
