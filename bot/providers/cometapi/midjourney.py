"""Midjourney through CometAPI's mj-proxy routes (``/mj/...``).

The flow mimics Discord: submit -> poll the task -> read its ``buttons`` ->
submit an action with a button's ``customId`` -> poll the new task -> maybe
answer a modal. Every step yields a new task id. Submits are paid (see
:class:`SubmitUncertainError`); fetches are retried freely.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from bot.providers.cometapi._base import LenientModel, as_dict, parse_percent, parse_status
from bot.providers.cometapi.errors import APIResponseError, midjourney_submit_error
from bot.providers.cometapi.media import data_uri
from bot.providers.cometapi.requester import Requester

__all__ = [
    "MJButton",
    "MJTask",
    "MJTaskStatus",
    "Midjourney",
    "SubmitResult",
]

ACCEPTED_CODES = frozenset({1, 21, 22})
BLEND_DIMENSIONS = frozenset({"PORTRAIT", "SQUARE", "LANDSCAPE"})
# Describe suggestions are numbered with keycap emojis: "1️⃣ ...\n\n2️⃣ ...".
_KEYCAP = re.compile(r"[1-9]\ufe0f?\u20e3\s*")


class MJTaskStatus(StrEnum):
    """Task status; unrecognised strings read as UNKNOWN (treated as a failure)."""

    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    MODAL = "MODAL"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCEL = "CANCEL"
    UNKNOWN = "UNKNOWN"


_TERMINAL = frozenset(
    {MJTaskStatus.SUCCESS, MJTaskStatus.FAILURE, MJTaskStatus.CANCEL, MJTaskStatus.UNKNOWN}
)


class SubmitResult(LenientModel):
    """An accepted submit: poll ``task_id``.

    ``is_modal`` (code 21) means the new task waits in MODAL for
    :meth:`Midjourney.modal`; ``is_queued`` (code 22) means it is queued.
    """

    task_id: str
    code: int
    description: str = ""
    properties: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_modal(self) -> bool:
        return self.code == 21

    @property
    def is_queued(self) -> bool:
        return self.code == 22


class MJButton(LenientModel):
    """A Discord button of a finished task; submit its ``custom_id`` verbatim."""

    custom_id: str = Field(default="", alias="customId")
    emoji: str = ""
    label: str = ""
    type: int = 2
    style: int = 2


class MJTask(LenientModel):
    """A Midjourney task as ``/mj/task/{id}/fetch`` returns it.

    Survives the proxy's quirks: numeric ids, ``progress`` as ``"45%"``/``""``,
    ``buttons: null``, missing fields. Timestamps are Unix milliseconds (0 =
    not reached). ``description`` and ``fail_reason`` are localized text: show
    them, never branch on them.
    """

    id: str
    action: str = ""
    status: MJTaskStatus = MJTaskStatus.NOT_START
    progress: int = 0
    prompt: str = ""
    prompt_en: str = Field(default="", alias="promptEn")
    description: str = ""
    state: str = ""
    custom_id: str = Field(default="", alias="customId")
    bot_type: str = Field(default="", alias="botType")
    submit_time: int = Field(default=0, alias="submitTime")
    start_time: int = Field(default=0, alias="startTime")
    finish_time: int = Field(default=0, alias="finishTime")
    image_url: str = Field(default="", alias="imageUrl")
    video_url: str = Field(default="", alias="videoUrl")
    fail_reason: str = Field(default="", alias="failReason")
    buttons: list[MJButton] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> MJTaskStatus:
        return parse_status(
            value,
            MJTaskStatus,
            empty=MJTaskStatus.NOT_START,
            unknown=MJTaskStatus.UNKNOWN,
            aliases={"QUEUED": MJTaskStatus.SUBMITTED},
        )

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int:
        return parse_percent(value)

    @property
    def is_terminal(self) -> bool:
        """SUCCESS, FAILURE, CANCEL or UNKNOWN: stop polling. (MODAL waits for input.)"""
        return self.status in _TERMINAL

    @property
    def is_success(self) -> bool:
        return self.status is MJTaskStatus.SUCCESS

    @property
    def needs_modal(self) -> bool:
        """The task waits for :meth:`Midjourney.modal` (Custom Zoom, Vary Region, ...)."""
        return self.status is MJTaskStatus.MODAL

    @property
    def final_prompt(self) -> str:
        """``properties.finalPrompt`` (mj-proxy) or ``promptEn`` (CometAPI)."""
        return str(self.properties.get("finalPrompt") or "") or self.prompt_en

    @property
    def describe_prompts(self) -> list[str]:
        """A DESCRIBE result's suggestions, without their keycap numbers."""
        text = self.prompt_en if _KEYCAP.search(self.prompt_en) else self.final_prompt
        return [part.strip() for part in _KEYCAP.split(text) if part.strip()]


class Midjourney:
    """``client.midjourney``."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    async def imagine(
        self,
        prompt: str,
        *,
        base64_array: Sequence[bytes | str] | None = None,
        bot_type: str | None = None,
        state: str | None = None,
        notify_hook: str | None = None,
    ) -> SubmitResult:
        """Text (plus optional reference images, bytes or data URIs) -> a 2x2 grid."""
        body: dict[str, Any] = {"prompt": prompt}
        if base64_array:
            body["base64Array"] = [data_uri(image) for image in base64_array]
        return await self._submit(
            "imagine", body, botType=bot_type, state=state, notifyHook=notify_hook
        )

    async def action(
        self,
        task_id: str,
        custom_id: str,
        *,
        state: str | None = None,
        enable_remix: bool | None = None,
        notify_hook: str | None = None,
    ) -> SubmitResult:
        """Click a button: ``custom_id`` copied from ``task_id``'s latest ``buttons``."""
        body = {"taskId": task_id, "customId": custom_id}
        return await self._submit(
            "action", body, state=state, enableRemix=enable_remix, notifyHook=notify_hook
        )

    async def modal(
        self, task_id: str, *, prompt: str | None = None, mask_base64: str | None = None
    ) -> SubmitResult:
        """Answer a task waiting in MODAL (the id returned by the code-21 action)."""
        return await self._submit(
            "modal", {"taskId": task_id}, prompt=prompt, maskBase64=mask_base64
        )

    async def blend(
        self,
        images: Sequence[bytes | str],
        *,
        dimensions: str = "SQUARE",
        bot_type: str | None = None,
        state: str | None = None,
    ) -> SubmitResult:
        """Blend 2-5 images (bytes or data URIs); ``dimensions`` PORTRAIT/SQUARE/LANDSCAPE."""
        if not 2 <= len(images) <= 5:
            raise ValueError("blend needs 2 to 5 images")
        if dimensions not in BLEND_DIMENSIONS:
            raise ValueError(f"dimensions must be one of {sorted(BLEND_DIMENSIONS)}")
        body = {"base64Array": [data_uri(image) for image in images], "dimensions": dimensions}
        return await self._submit("blend", body, botType=bot_type, state=state)

    async def describe(
        self,
        *,
        base64: bytes | str | None = None,
        link: str | None = None,
        bot_type: str | None = None,
        state: str | None = None,
    ) -> SubmitResult:
        """Image -> four prompt suggestions (see :attr:`MJTask.describe_prompts`)."""
        if (base64 is None) == (link is None):
            raise ValueError("describe needs exactly one of base64 or link")
        body: dict[str, Any] = {"base64": data_uri(base64)} if base64 is not None else {}
        return await self._submit("describe", body, link=link, botType=bot_type, state=state)

    async def fetch(self, task_id: str) -> MJTask:
        """One task. An unknown id raises :class:`TaskNotFoundError`."""
        data = await self._client.request("GET", f"/mj/task/{task_id}/fetch")
        if not isinstance(data, dict):
            raise APIResponseError(f"mj fetch {task_id}: the answer is not an object")
        return MJTask.model_validate(data)

    async def list_by_condition(self, ids: Sequence[str]) -> list[MJTask]:
        """Many tasks at once; unknown ids are silently missing, order is not kept."""
        if not ids:
            return []
        data = await self._client.request(
            "POST", "/mj/task/list-by-condition", json={"ids": list(ids)}
        )
        if not isinstance(data, list):
            raise APIResponseError("mj list-by-condition: the answer is not a list")
        return [MJTask.model_validate(item) for item in data if isinstance(item, dict)]

    async def _submit(self, kind: str, body: dict[str, Any], **optional: Any) -> SubmitResult:
        body.update({key: value for key, value in optional.items() if value is not None})
        data = await self._client.request("POST", f"/mj/submit/{kind}", json=body, paid=True)
        if not isinstance(data, dict):
            raise APIResponseError(f"mj submit/{kind}: the answer is not an object")
        code = _as_int(data.get("code"))
        description = str(data.get("description") or "")
        properties = as_dict(data.get("properties"))
        if code is not None and code in ACCEPTED_CODES:
            result = data.get("result")
            if result in (None, ""):
                raise APIResponseError(f"mj submit/{kind}: accepted (code {code}) without an id")
            return SubmitResult(
                task_id=str(result), code=code, description=description, properties=properties
            )
        raise midjourney_submit_error(code, description, properties)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
