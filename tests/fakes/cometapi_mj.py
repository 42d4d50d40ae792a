"""Midjourney routes of the fake CometAPI: ``/mj/submit/*``, task fetch/list and images."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from aiohttp import web

from tests.fakes.cometapi_common import (
    MJ_GRID,
    MJ_MODAL_KINDS,
    CometBase,
    _body,
    _json,
    _Task,
    tiny_png,
)


class MidjourneyRoutes(CometBase):
    """mj-proxy shaped submits (imagine, action, modal, blend, describe) and task queries."""

    # -- midjourney --------------------------------------------------------------------------

    async def _mj_submit(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = _body(request)
        scripted = self._mj_submits.popleft() if self._mj_submits else None
        if scripted and scripted.status != 200:
            payload = {
                "description": scripted.description or "upstream error",
                "type": "upstream_error",
                "code": scripted.code,
            }
            return _json(payload, scripted.status)
        if scripted and scripted.code not in (1, 21, 22):
            return self._mj_answer(
                scripted.code, scripted.description or "scripted failure", None, scripted.properties
            )
        try:
            task, code = self._mj_create(kind, body)
        except _Refused as refused:
            return self._mj_answer(refused.code, refused.description, None, refused.properties)
        if scripted:
            code = scripted.code
            task.modal = task.modal or code == 21
        properties = {
            "discordInstanceId": "5e6ca8e1f40e4de6",
            **(scripted.properties if scripted else {}),
        }
        if code == 22:
            properties.setdefault("numberOfQueues", 3)
        return self._mj_answer(code, "提交成功" if code == 1 else "已提交", task.id, properties)

    def _mj_answer(
        self, code: int, description: str, task_id: str | None, properties: dict[str, Any]
    ) -> web.Response:
        result: Any = task_id
        if task_id is not None and self.mj_result_as_number:
            result = int(task_id)
        return _json(
            {"code": code, "description": description, "result": result, "properties": properties}
        )

    def _mj_create(self, kind: str, body: dict[str, Any]) -> tuple[_Task, int]:
        if kind == "imagine":
            prompt = str(body.get("prompt") or "")
            if not prompt.strip():
                raise _Refused(4, "prompt不能为空")
            for word in self.mj_banned_words:
                if word in prompt.lower():
                    raise _Refused(24, "可能包含敏感词", {"promptEn": prompt, "bannedWord": word})
            task = self._new_task("mj", "IMAGINE", body)
            if any(word in prompt.lower() for word in self.mj_moderated_words):
                task.fail_reason = task.fail_reason or "Request cancelled due to image filters"
            return task, 1
        if kind == "blend":
            images = body.get("base64Array") or []
            if not 2 <= len(images) <= 5 or body.get("dimensions", "SQUARE") not in (
                "PORTRAIT",
                "SQUARE",
                "LANDSCAPE",
            ):
                raise _Refused(4, "base64List参数错误")
            return self._new_task("mj", "BLEND", body), 1
        if kind == "describe":
            if not (body.get("base64") or body.get("link")):
                raise _Refused(4, "base64不能为空")
            return self._new_task("mj", "DESCRIBE", body), 1
        if kind == "action":
            return self._mj_action(body)
        if kind == "modal":
            parent = self.tasks.get(str(body.get("taskId") or ""))
            if parent is None or not parent.modal:
                raise _Refused(4, "task status is not MODAL")
            if parent.kind == "INPAINT" and not body.get("maskBase64"):
                raise _Refused(4, "maskBase64不能为空")
            merged = {**parent.body, **{k: v for k, v in body.items() if v}}
            return self._new_task("mj", parent.kind, merged, custom_id=parent.custom_id), 1
        raise _Refused(4, f"unsupported submit {kind}")

    def _mj_action(self, body: dict[str, Any]) -> tuple[_Task, int]:
        parent = self.tasks.get(str(body.get("taskId") or ""))
        custom_id = str(body.get("customId") or "")
        if parent is None or parent.family != "mj":
            raise _Refused(4, "关联任务不存在或已失效")
        if parent.modal or parent.fail_reason or parent.steps <= self.task_steps:
            raise _Refused(4, "关联任务状态错误")
        if custom_id not in {b["customId"] for b in _mj_buttons(parent)}:
            raise _Refused(4, "customId不存在")
        self.mj_actions.append((parent.id, custom_id))
        kind = _mj_action_kind(custom_id)
        modal = kind in MJ_MODAL_KINDS
        task = self._new_task("mj", kind, {**parent.body, **body}, modal=modal, custom_id=custom_id)
        return task, 21 if modal else 1

    def _mj_json(self, task: _Task) -> dict[str, Any]:
        phase, progress = self._observe(task)
        prompt = str(task.body.get("prompt") or "")
        image = f"{self.base_url}/mj/image/{task.id}"
        ms = int(task.created * 1000)
        out: dict[str, Any] = {
            "id": task.id,
            "action": task.kind,
            "customId": task.custom_id,
            "botType": "MID_JOURNEY",
            "prompt": prompt,
            "promptEn": prompt,
            "description": f"/imagine {prompt}".strip(),
            "state": task.body.get("state", ""),
            "submitTime": ms,
            "startTime": 0,
            "finishTime": 0,
            "imageUrl": "",
            "videoUrl": "",
            "status": "SUBMITTED",
            "progress": "0%",
            "failReason": "",
            "buttons": None,
            "properties": {"finalPrompt": prompt, "discordInstanceId": "5e6ca8e1f40e4de6"},
        }
        if phase == "modal":
            out.update(status="MODAL")
        elif phase == "running":
            out.update(
                status="IN_PROGRESS",
                progress=f"{progress}%",
                startTime=ms + 2000,
                imageUrl=f"{image}?rand={task.steps}",
            )
        elif phase == "failed":
            # midjourney-proxy leaves progress empty on failure; new-api says "100%".
            out.update(
                status="FAILURE", progress="", startTime=ms + 2000, failReason=task.fail_reason
            )
        elif phase == "done":
            out.update(
                status="SUCCESS",
                progress="100%",
                startTime=ms + 2000,
                finishTime=ms + 9000,
                imageUrl=image,
                buttons=_mj_buttons(task),
            )
            if task.kind == "DESCRIBE":
                prompts = "\n\n".join(
                    f"{n}\ufe0f\u20e3 a paper boat, variant {n} --ar 5:4" for n in range(1, 5)
                )
                out.update(promptEn=prompts, prompt="")
                out["properties"]["finalPrompt"] = prompts
        return out

    async def _mj_fetch(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.family != "mj":
            return _json(
                {"description": "task_no_found ", "type": "upstream_error", "code": 4}, 400
            )
        return _json(self._mj_json(task))

    async def _mj_list(self, request: web.Request) -> web.Response:
        body = _body(request)
        found = [self.tasks.get(str(i)) for i in body.get("ids") or []]
        return _json([self._mj_json(t) for t in found if t is not None and t.family == "mj"])

    async def _mj_image(self, request: web.Request) -> web.StreamResponse:
        task = self.tasks.get(request.match_info["id"])
        prompt = str(task.body.get("prompt") or "") if task is not None else ""
        if task is None or any(word in prompt for word in self.mj_missing_words):
            return web.Response(status=404, text="not found")
        digest = zlib.crc32(task.id.encode())
        rgb = (digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF)
        if any(word in prompt for word in self.mj_slow_words):
            return await self._trickle(request, tiny_png(rgb))
        return web.Response(body=tiny_png(rgb), content_type="image/png")

    async def _trickle(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """``body`` at one byte a second (a hostile or broken CDN), until done or dropped."""
        response = web.StreamResponse(
            headers={"Content-Type": "image/png", "Content-Length": str(len(body))}
        )
        await response.prepare(request)
        try:
            for byte in body:
                if self._closing.is_set():
                    break
                await response.write(bytes([byte]))
                await asyncio.sleep(1.0)
        except ConnectionError:
            self._saw_disconnect()
        return response


class _Refused(Exception):
    """An mj-proxy refusal: answered as HTTP 200 with a failure code."""

    def __init__(
        self, code: int, description: str, properties: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.properties = properties or {}


def _mj_buttons(task: _Task) -> list[dict[str, Any]]:
    h = task.hash

    def button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
        return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}

    if task.kind in MJ_GRID:
        return [
            *(button(f"MJ::JOB::upsample::{n}::{h}", f"U{n}") for n in range(1, 5)),
            button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄"),
            *(button(f"MJ::JOB::variation::{n}::{h}", f"V{n}") for n in range(1, 5)),
        ]
    if task.kind == "UPSCALE":
        return [
            button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)"),
            button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", "Upscale (Creative)"),
            button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
            button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
            button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
            button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
            button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
            button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
            *(
                button(f"MJ::JOB::pan_{d}::1::{h}::SOLO", "", e)
                for d, e in (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️"))
            ),
        ]
    return []


def _mj_action_kind(custom_id: str) -> str:
    for marker, kind in (
        ("::CustomZoom::", "CUSTOM_ZOOM"),
        ("::Inpaint::", "INPAINT"),
        ("::Outpaint::", "ZOOM"),
    ):
        if marker in custom_id:
            return kind
    name = custom_id.split("::")[2] if custom_id.count("::") >= 2 else ""
    for prefix, kind in (
        ("upsample", "UPSCALE"),
        ("high_variation", "HIGH_VARIATION"),
        ("low_variation", "LOW_VARIATION"),
        ("variation", "VARIATION"),
        ("reroll", "REROLL"),
        ("pan_", "PAN"),
    ):
        if name.startswith(prefix):
            return kind
    return "UNKNOWN"
