"""Suno music through CometAPI's task routes (``/suno/...``).

Envelope: ``{"code": "success" | <error string>, "message": ..., "data": ...}``.
One music task renders two clips. Task status is upper-case (``SUCCESS``),
clip status lower-case (``complete``); timestamps are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from bot.providers.cometapi._base import (
    LenientModel,
    as_dict,
    as_float,
    parse_percent,
    parse_status,
)
from bot.providers.cometapi.errors import APIResponseError, SunoAPIError
from bot.providers.cometapi.requester import Requester

__all__ = [
    "DEFAULT_SUNO_MODEL",
    "Suno",
    "SunoClip",
    "SunoLyrics",
    "SunoTask",
    "SunoTaskStatus",
]

DEFAULT_SUNO_MODEL = "chirp-v4"
"""Always sent as ``mv``: the gateway's own default is an old model."""


class SunoTaskStatus(StrEnum):
    """Task status; unrecognised strings read as UNKNOWN (treated as a failure)."""

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    UNKNOWN = "UNKNOWN"


# How the upstream worker derives the task status from its clips.
_FROM_CLIP = {
    "submitted": SunoTaskStatus.SUBMITTED,
    "queued": SunoTaskStatus.QUEUED,
    "streaming": SunoTaskStatus.IN_PROGRESS,
    "complete": SunoTaskStatus.SUCCESS,
    "error": SunoTaskStatus.FAILURE,
}


class SunoClip(LenientModel):
    """One rendered song. ``duration`` (seconds) and ``tags`` come from ``metadata``."""

    id: str = ""
    title: str = ""
    status: str = ""
    audio_url: str = ""
    video_url: str = ""
    image_url: str = ""
    image_large_url: str = ""
    model_name: str = ""
    duration: float | None = None
    tags: str = ""
    lyrics: str = ""
    error_message: str = ""

    @model_validator(mode="before")
    @classmethod
    def _lift_metadata(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        meta = as_dict(data.get("metadata"))
        lifted = dict(data)
        # Some relays flatten metadata or call the status "state"; accept both.
        lifted["status"] = str(data.get("status") or data.get("state") or "").lower()
        lifted["duration"] = as_float(meta.get("duration", data.get("duration")))
        lifted["tags"] = meta.get("tags") or data.get("tags")
        lifted["lyrics"] = meta.get("prompt") or data.get("lyrics")
        lifted["error_message"] = meta.get("error_message") or data.get("error_message")
        return {key: value for key, value in lifted.items() if value is not None}

    @property
    def is_complete(self) -> bool:
        return self.status == "complete"


class SunoLyrics(LenientModel):
    """The result of a lyrics task."""

    id: str = ""
    status: str = ""
    title: str = ""
    text: str = ""


class SunoTask(LenientModel):
    """A Suno task as ``/suno/fetch`` returns it (``data`` of the envelope)."""

    task_id: str
    action: str = ""
    status: SunoTaskStatus = SunoTaskStatus.NOT_START
    fail_reason: str = ""
    progress: int = 0
    submit_time: int = 0
    start_time: int = 0
    finish_time: int = 0
    clips: list[SunoClip] = Field(default_factory=list)
    lyrics: SunoLyrics | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_data(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        inner = data.get("data")
        if isinstance(inner, dict) and isinstance(inner.get("clips"), list):
            inner = inner["clips"]
        if isinstance(inner, list):
            out["clips"] = [clip for clip in inner if isinstance(clip, dict)]
        elif isinstance(inner, dict):
            out["lyrics"] = inner
        out.setdefault("task_id", data.get("id"))
        if not data.get("status") and out.get("clips"):
            out["status"] = _status_from_clips(out["clips"])
        return {key: value for key, value in out.items() if value is not None}

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> SunoTaskStatus:
        return parse_status(
            value, SunoTaskStatus, empty=SunoTaskStatus.NOT_START, unknown=SunoTaskStatus.UNKNOWN
        )

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int:
        return parse_percent(value)

    @property
    def is_terminal(self) -> bool:
        return self.status in (
            SunoTaskStatus.SUCCESS,
            SunoTaskStatus.FAILURE,
            SunoTaskStatus.UNKNOWN,
        )

    @property
    def is_success(self) -> bool:
        return self.status is SunoTaskStatus.SUCCESS


def _status_from_clips(clips: list[dict[str, Any]]) -> str:
    statuses = [str(clip.get("status") or clip.get("state") or "").lower() for clip in clips]
    if "error" in statuses:
        return SunoTaskStatus.FAILURE
    if statuses and all(status == "complete" for status in statuses):
        return SunoTaskStatus.SUCCESS
    for clip_status in ("streaming", "queued", "submitted"):
        if clip_status in statuses:
            return _FROM_CLIP[clip_status]
    return SunoTaskStatus.UNKNOWN


class Suno:
    """``client.suno``."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    async def music(
        self,
        *,
        gpt_description_prompt: str | None = None,
        prompt: str | None = None,
        tags: str | None = None,
        title: str | None = None,
        negative_tags: str | None = None,
        make_instrumental: bool | None = None,
        mv: str = DEFAULT_SUNO_MODEL,
        task_id: str | None = None,
        continue_clip_id: str | None = None,
        continue_at: float | None = None,
        notify_hook: str | None = None,
    ) -> str:
        """Submit a song; returns the task id. The mode follows from the fields:

        * inspiration: ``gpt_description_prompt`` (+ ``make_instrumental``);
        * custom: ``prompt`` (lyrics), ``tags`` (style), ``title``, ``negative_tags``;
        * continue: custom fields plus ``task_id`` + ``continue_clip_id`` + ``continue_at``.
        """
        continuing = continue_clip_id is not None
        if continuing and (not task_id or continue_at is None):
            raise ValueError("continuing a clip needs task_id and continue_at too")
        if not continuing and (task_id is not None or continue_at is not None):
            raise ValueError("task_id and continue_at only apply with continue_clip_id")
        if gpt_description_prompt and (prompt or continuing):
            raise ValueError("gpt_description_prompt (inspiration mode) excludes prompt")
        if not (gpt_description_prompt or prompt or tags or continuing):
            raise ValueError("give gpt_description_prompt, or prompt/tags for custom mode")
        fields = {
            "gpt_description_prompt": gpt_description_prompt,
            "prompt": prompt,
            "tags": tags,
            "title": title,
            "negative_tags": negative_tags,
            "make_instrumental": make_instrumental,
            "mv": mv,
            "task_id": task_id,
            "continue_clip_id": continue_clip_id,
            "continue_at": continue_at,
            "notify_hook": notify_hook,
        }
        body = {key: value for key, value in fields.items() if value is not None}
        return await self._submit("music", body)

    async def lyrics(self, prompt: str, *, notify_hook: str | None = None) -> str:
        """Submit a lyrics task; returns the task id (result in :attr:`SunoTask.lyrics`)."""
        if not prompt.strip():
            raise ValueError("prompt is empty")
        body = {"prompt": prompt}
        if notify_hook:
            body["notify_hook"] = notify_hook
        return await self._submit("lyrics", body)

    async def fetch(self, task_id: str) -> SunoTask:
        """One task. An unknown id raises :class:`TaskNotFoundError`."""
        data = _unwrap(await self._client.request("GET", f"/suno/fetch/{task_id}"), "fetch")
        if not isinstance(data, dict):
            raise APIResponseError(f"suno fetch {task_id}: 'data' is not a task")
        return SunoTask.model_validate(data)

    async def fetch_many(self, ids: Sequence[str], action: str = "MUSIC") -> list[SunoTask]:
        """Many tasks of one ``action`` (MUSIC or LYRICS); unknown ids are missing."""
        if not ids:
            return []
        body = {"ids": list(ids), "action": action}
        data = _unwrap(await self._client.request("POST", "/suno/fetch", json=body), "fetch")
        if not isinstance(data, list):
            raise APIResponseError("suno fetch: 'data' is not a list")
        return [SunoTask.model_validate(item) for item in data if isinstance(item, dict)]

    async def _submit(self, kind: str, body: dict[str, Any]) -> str:
        path = f"/suno/submit/{kind}"
        data = _unwrap(await self._client.request("POST", path, json=body, paid=True), kind)
        if isinstance(data, dict):  # some relays wrap the id: {"task_id": ...}
            data = data.get("task_id") or data.get("id")
        if data in (None, "") or isinstance(data, list | dict):
            raise APIResponseError(f"suno submit/{kind}: accepted without a task id")
        return str(data)


def _unwrap(envelope: Any, what: str) -> Any:
    if not isinstance(envelope, dict):
        raise APIResponseError(f"suno {what}: the answer is not an object")
    code = envelope.get("code")
    if code == "success":
        return envelope.get("data")
    message = str(envelope.get("message") or "no message")
    raise SunoAPIError(f"Suno {what} refused [{code}]: {message}", code=code)
