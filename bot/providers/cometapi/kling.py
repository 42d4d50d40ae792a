"""Kling video in its native format under ``/kling/v1``.

Envelope: ``{"code": 0, "message", "request_id", "data": {...}}`` where 0 is
success. Status is spelled ``succeed``; ``duration`` is sent as a string;
a task is queried on the same sub-path (text2video / image2video) it was
created with; timestamps are Unix milliseconds.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from bot.providers.cometapi._base import LenientModel, as_dict, as_float
from bot.providers.cometapi.errors import APIResponseError, KlingAPIError
from bot.providers.cometapi.media import raw_base64
from bot.providers.cometapi.requester import Requester

__all__ = [
    "DEFAULT_KLING_MODEL",
    "Kling",
    "KlingImage",
    "KlingKind",
    "KlingTask",
    "KlingTaskStatus",
    "KlingVideo",
]

DEFAULT_KLING_MODEL = "kling-v2-1"
"""Always sent as ``model_name``: omitting it falls back to a legacy model."""
DURATIONS = frozenset({"5", "10"})


class KlingKind(StrEnum):
    """The sub-path a video task lives on."""

    TEXT2VIDEO = "text2video"
    IMAGE2VIDEO = "image2video"


class KlingTaskStatus(StrEnum):
    """Task status; unrecognised strings read as UNKNOWN (treated as a failure)."""

    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"
    FAILED = "failed"
    UNKNOWN = "unknown"


class KlingVideo(LenientModel):
    id: str = ""
    url: str = ""
    duration: float | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return as_float(value)


class KlingImage(LenientModel):
    index: int = 0
    url: str = ""


class KlingTask(LenientModel):
    """A Kling task (the envelope's ``data``), tagged with the ``kind`` it lives on."""

    task_id: str
    kind: KlingKind = KlingKind.TEXT2VIDEO
    status: KlingTaskStatus = KlingTaskStatus.SUBMITTED
    status_message: str = ""
    created_at: int = 0
    updated_at: int = 0
    external_task_id: str = ""
    videos: list[KlingVideo] = Field(default_factory=list)
    images: list[KlingImage] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        info = as_dict(data.get("task_info"))
        result = as_dict(data.get("task_result"))
        flat = {
            **data,
            "status": data.get("task_status") or data.get("status"),
            "status_message": data.get("task_status_msg"),
            "external_task_id": info.get("external_task_id"),
            "videos": result.get("videos"),
            "images": result.get("images"),
        }
        return {key: value for key, value in flat.items() if value is not None}

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> KlingTaskStatus:
        try:
            return KlingTaskStatus(str(value or "submitted").strip().lower())
        except ValueError:
            return KlingTaskStatus.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self.status in (
            KlingTaskStatus.SUCCEED,
            KlingTaskStatus.FAILED,
            KlingTaskStatus.UNKNOWN,
        )

    @property
    def is_success(self) -> bool:
        return self.status is KlingTaskStatus.SUCCEED

    @property
    def video_url(self) -> str:
        """The first video's URL, or ``""``."""
        return self.videos[0].url if self.videos else ""


class Kling:
    """``client.kling``: text-to-video and image-to-video."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    async def text2video(
        self,
        prompt: str,
        *,
        model_name: str = DEFAULT_KLING_MODEL,
        duration: int | str = 5,
        aspect_ratio: str | None = None,
        mode: str | None = None,
        negative_prompt: str | None = None,
        cfg_scale: float | None = None,
        sound: str | None = None,
        camera_control: dict[str, Any] | None = None,
        callback_url: str | None = None,
        external_task_id: str | None = None,
    ) -> KlingTask:
        """Submit a text-to-video task (paid); returns it in ``submitted`` state."""
        if not prompt.strip():
            raise ValueError("prompt is empty")
        body = {
            "prompt": prompt,
            "model_name": model_name,
            "duration": _duration(duration),
            "aspect_ratio": aspect_ratio,
            "mode": mode,
            "negative_prompt": negative_prompt,
            "cfg_scale": cfg_scale,
            "sound": sound,
            "camera_control": camera_control,
            "callback_url": callback_url,
            "external_task_id": external_task_id,
        }
        return await self._create(KlingKind.TEXT2VIDEO, body)

    async def image2video(
        self,
        image: bytes | str,
        prompt: str | None = None,
        *,
        model_name: str = DEFAULT_KLING_MODEL,
        duration: int | str = 5,
        image_tail: bytes | str | None = None,
        mode: str | None = None,
        negative_prompt: str | None = None,
        cfg_scale: float | None = None,
        sound: str | None = None,
        callback_url: str | None = None,
        external_task_id: str | None = None,
    ) -> KlingTask:
        """Animate an image: bytes, raw base64, a data URI (prefix stripped) or a URL."""
        body = {
            "image": raw_base64(image),
            "image_tail": raw_base64(image_tail) if image_tail is not None else None,
            "prompt": prompt,
            "model_name": model_name,
            "duration": _duration(duration),
            "mode": mode,
            "negative_prompt": negative_prompt,
            "cfg_scale": cfg_scale,
            "sound": sound,
            "callback_url": callback_url,
            "external_task_id": external_task_id,
        }
        return await self._create(KlingKind.IMAGE2VIDEO, body)

    async def query(self, task_id: str, kind: KlingKind | str) -> KlingTask:
        """Poll a task on the sub-path it was created with."""
        kind = KlingKind(kind)
        data = await self._client.request("GET", f"/kling/v1/videos/{kind.value}/{task_id}")
        return _task(_unwrap(data, f"query {kind.value}"), kind)

    async def _create(self, kind: KlingKind, fields: dict[str, Any]) -> KlingTask:
        body = {key: value for key, value in fields.items() if value is not None}
        path = f"/kling/v1/videos/{kind.value}"
        data = await self._client.request("POST", path, json=body, paid=True)
        return _task(_unwrap(data, kind.value), kind)


def _duration(value: int | str) -> str:
    text = str(value).strip()
    if text not in DURATIONS:
        raise ValueError(f"duration must be 5 or 10 seconds (got {value!r})")
    return text


def _task(data: Any, kind: KlingKind) -> KlingTask:
    if not isinstance(data, dict) or not data.get("task_id"):
        raise APIResponseError(f"kling {kind.value}: 'data' has no task_id")
    return KlingTask.model_validate({**data, "kind": kind})


def _unwrap(envelope: Any, what: str) -> Any:
    if not isinstance(envelope, dict):
        raise APIResponseError(f"kling {what}: the answer is not an object")
    code = envelope.get("code")
    if code in (0, "0"):
        return envelope.get("data")
    message = str(envelope.get("message") or "no message")
    request_id = envelope.get("request_id")
    raise KlingAPIError(
        f"Kling {what} refused [{code}]: {message}",
        code=code if isinstance(code, str | int) else None,
        request_id=str(request_id) if request_id else None,
    )
