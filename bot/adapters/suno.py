"""Suno through the SDK: a music request to a submit, SDK tasks to snapshots."""

from __future__ import annotations

from typing import Final

from bot.adapters.failures import task_failure
from bot.core.generation.records import Provider
from bot.core.generation.requests import MusicRequest
from bot.core.models import Submitted, TaskSnapshot, UpstreamState
from bot.providers import cometapi as sdk

__all__ = ["submit_music", "suno_snapshot"]

_STATES: Final = {
    sdk.SunoTaskStatus.NOT_START: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.QUEUED: UpstreamState.QUEUED,
    sdk.SunoTaskStatus.IN_PROGRESS: UpstreamState.RUNNING,
    sdk.SunoTaskStatus.SUCCESS: UpstreamState.SUCCEEDED,
}
_EMPTY: Final = "Suno finished without any song to send. Please try again."


async def submit_music(client: sdk.CometAPI, request: MusicRequest) -> Submitted:
    """One paid submit: inspiration mode (a description) or custom mode (lyrics and style)."""
    spec = request.spec
    mv = request.model or sdk.DEFAULT_SUNO_MODEL
    if not spec.custom:
        task_id = await client.suno.music(
            gpt_description_prompt=spec.description,
            make_instrumental=spec.instrumental,
            mv=mv,
        )
    else:
        task_id = await client.suno.music(
            prompt=spec.lyrics,
            tags=spec.style,
            title=spec.title or None,
            make_instrumental=spec.instrumental,
            mv=mv,
        )
    return Submitted(task_id)


def suno_snapshot(task: sdk.SunoTask) -> TaskSnapshot:
    state = _STATES.get(task.status, UpstreamState.FAILED)
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
            return TaskSnapshot(task.task_id, UpstreamState.FAILED, error=_EMPTY)
        return TaskSnapshot(task.task_id, state, 100, result={"type": "audio", "clips": clips})
    if state is UpstreamState.FAILED:
        reason = task.fail_reason or next(
            (clip.error_message for clip in task.clips if clip.error_message), ""
        )
        return TaskSnapshot(task.task_id, state, error=task_failure(Provider.SUNO, "song", reason))
    return TaskSnapshot(task.task_id, state, task.progress or None)
