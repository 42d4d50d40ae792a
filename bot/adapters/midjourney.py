"""Midjourney through the SDK: typed requests to submits, SDK tasks to snapshots.

A finished grid's buttons keep their exact ``custom_id`` (a press sends it back as is) and
get a ``kind`` from :func:`button_kind`; the result shapes are the ones
:mod:`bot.core.generation.delivery` documents.
"""

from __future__ import annotations

from typing import Any, Final, assert_never

from bot.adapters.failures import is_moderation, task_failure
from bot.core.generation.records import Provider
from bot.core.generation.requests import (
    ActionRequest,
    BlendRequest,
    DescribeRequest,
    ImagineRequest,
    ModalRequest,
)
from bot.core.models import Submitted, TaskSnapshot, UpstreamState
from bot.providers import cometapi as sdk

__all__ = ["MidjourneyRequest", "button_kind", "mj_snapshot", "submit_midjourney"]

MidjourneyRequest = ImagineRequest | BlendRequest | DescribeRequest | ActionRequest | ModalRequest

_STATES: Final = {
    sdk.MJTaskStatus.NOT_START: UpstreamState.QUEUED,
    sdk.MJTaskStatus.SUBMITTED: UpstreamState.QUEUED,
    sdk.MJTaskStatus.IN_PROGRESS: UpstreamState.RUNNING,
    sdk.MJTaskStatus.MODAL: UpstreamState.WAITING,
    sdk.MJTaskStatus.SUCCESS: UpstreamState.SUCCEEDED,
}


async def submit_midjourney(client: sdk.CometAPI, request: MidjourneyRequest) -> Submitted:
    """One paid submit; SDK errors (and its ``ValueError`` argument checks) pass through."""
    mj = client.midjourney
    match request:
        case ImagineRequest(prompt=prompt, images=images):
            data = [image.data for image in images]
            result = await mj.imagine(prompt, base64_array=data or None)
        case BlendRequest(images=images, dimensions=dimensions):
            result = await mj.blend([image.data for image in images], dimensions=dimensions)
        case DescribeRequest(image=image, link=link):
            if link:
                result = await mj.describe(link=link)
            else:
                result = await mj.describe(base64=image.data if image is not None else None)
        case ActionRequest(parent=parent, custom_id=custom_id):
            result = await mj.action(parent, custom_id)
        case ModalRequest(task_id=task_id, prompt=prompt):
            result = await mj.modal(task_id, prompt=prompt)
        case _:
            assert_never(request)
    return Submitted(result.task_id, waiting=result.is_modal)


def mj_snapshot(task: sdk.MJTask) -> TaskSnapshot:
    state = _STATES.get(task.status, UpstreamState.FAILED)
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
        return TaskSnapshot(task.id, state, error=_failure(task.fail_reason))
    preview = (task.image_url or None) if state is UpstreamState.RUNNING else None
    return TaskSnapshot(task.id, state, task.progress, preview_url=preview)


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


def _failure(reason: str) -> str:
    if "banned" in reason.lower():
        return (
            "Midjourney refused the prompt: it contains a banned word. "
            "Please rephrase it and try again."
        )
    if is_moderation(reason):
        return (
            "Midjourney's moderation blocked this image (its content filters flagged the "
            "result). Please try a different prompt."
        )
    return task_failure(Provider.MIDJOURNEY, "image", reason)
