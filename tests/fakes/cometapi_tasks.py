"""Suno and Kling routes of the fake CometAPI, plus the ``/media/{name}`` files they point at."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from tests.fakes.cometapi_common import KLING_KINDS, CometBase, _body, _json, _Task, tiny_png


class TaskRoutes(CometBase):
    """``/suno/submit/*``, ``/suno/fetch``, ``/media/*`` and ``/kling/v1/videos/*``."""

    # -- suno --------------------------------------------------------------------------------

    def _suno_error(self, code: str, status: int = 400) -> web.Response:
        return _json({"code": code, "message": code, "data": None}, status)

    async def _suno_submit(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = _body(request)
        if kind == "lyrics":
            if not body.get("prompt"):
                return self._suno_error("prompt_empty")
            return _json(
                {
                    "code": "success",
                    "message": "",
                    "data": self._new_task("suno", "LYRICS", body).id,
                }
            )
        if kind != "music":
            return self._suno_error("invalid_action")
        if body.get("continue_clip_id") and not body.get("task_id"):
            return self._suno_error("task id is empty")
        if not (body.get("gpt_description_prompt") or body.get("prompt") or body.get("tags")):
            return self._suno_error("prompt_empty")
        return _json(
            {"code": "success", "message": "", "data": self._new_task("suno", "MUSIC", body).id}
        )

    def _suno_json(self, task: _Task) -> dict[str, Any]:
        phase, progress = self._observe(task)
        status = {
            "queued": "SUBMITTED",
            "running": "IN_PROGRESS",
            "done": "SUCCESS",
            "failed": "FAILURE",
        }[phase]
        start = int(task.created)
        out: dict[str, Any] = {
            "task_id": task.id,
            "notify_hook": "",
            "action": task.kind,
            "status": status,
            "fail_reason": task.fail_reason if phase == "failed" else "",
            "submit_time": start,
            "start_time": start + 2 if phase != "queued" else 0,
            "finish_time": start + 60 if phase in ("done", "failed") else 0,
            "progress": f"{progress}%",
            "data": None,
        }
        if task.kind == "LYRICS":
            if phase == "done":
                text = f"[Verse]\n{task.body.get('prompt')}\n\n[Chorus]\nla la la"
                out["data"] = {
                    "id": task.hash,
                    "status": "complete",
                    "title": "Fake Song",
                    "text": text,
                }
            return out
        clip_status = {
            "queued": "submitted",
            "running": "streaming",
            "done": "complete",
            "failed": "error",
        }[phase]
        out["data"] = [self._suno_clip(task, n, clip_status) for n in (1, 2)]
        return out

    def _suno_clip(self, task: _Task, n: int, status: str) -> dict[str, Any]:
        clip_id = str(uuid.uuid5(uuid.UUID(task.hash), str(n)))
        media = f"{self.base_url}/media/{clip_id}"
        streaming = status in ("streaming", "complete")
        body = task.body
        return {
            "id": clip_id,
            "title": body.get("title") or "Fake Song",
            "status": status,
            "model_name": body.get("mv") or "chirp-v3",
            "major_model_version": "v4",
            "audio_url": f"{media}.mp3" if streaming else "",
            "video_url": f"{media}.mp4" if status == "complete" else "",
            "image_url": f"{media}.jpeg" if streaming else "",
            "image_large_url": f"{media}.jpeg" if status == "complete" else "",
            "is_video_pending": status != "complete",
            "metadata": {
                "tags": body.get("tags") or "synth-pop",
                "prompt": body.get("prompt") or "[Verse]\n...",
                "duration": 128.92 + n if status == "complete" else None,
                "type": "gen",
                "error_type": None,
                "error_message": task.fail_reason if status == "error" else None,
                "gpt_description_prompt": body.get("gpt_description_prompt"),
            },
        }

    async def _suno_fetch(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.family != "suno":
            return self._suno_error("task_not_exist")
        return _json({"code": "success", "message": "", "data": self._suno_json(task)})

    async def _suno_fetch_many(self, request: web.Request) -> web.Response:
        body = _body(request)
        action = body.get("action")
        found = [self.tasks.get(str(i)) for i in body.get("ids") or []]
        data = [
            self._suno_json(t)
            for t in found
            if t is not None and t.family == "suno" and (not action or t.kind == action)
        ]
        return _json({"code": "success", "message": "", "data": data})

    async def _media(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name.endswith(".png") and not name.startswith("missing"):  # a CDN's picture
            return web.Response(body=tiny_png(), content_type="image/png")
        types = {
            ".mp3": ("audio/mpeg", b"ID3\x04\x00\x00"),
            ".jpeg": ("image/jpeg", b"\xff\xd8\xff\xe0"),
            ".mp4": ("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
        }
        for suffix, (content_type, magic) in types.items():
            if name.endswith(suffix):
                return web.Response(body=magic + bytes(512), content_type=content_type)
        return web.Response(status=404, text="not found")

    # -- kling -------------------------------------------------------------------------------

    def _kling_error(self, code: int, message: str, status: int = 400) -> web.Response:
        return _json({"code": code, "message": message, "request_id": self._request_id()}, status)

    async def _kling_create(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = _body(request)
        if kind not in KLING_KINDS:
            return self._kling_error(1203, f"unsupported: {kind}", 404)
        if kind == "text2video" and not body.get("prompt"):
            return self._kling_error(1201, "prompt is required")
        image = body.get("image")
        if kind == "image2video" and (
            not isinstance(image, str) or not image or image.startswith("data:")
        ):
            return self._kling_error(1201, "image must be a URL or raw base64")
        if "duration" in body and body["duration"] not in ("5", "10"):
            return self._kling_error(1201, "duration must be the string '5' or '10'")
        task = self._new_task("kling", kind, body)
        return _json(
            {
                "code": 0,
                "message": "success",
                "request_id": self._request_id(),
                "data": self._kling_data(task, "submitted"),
            }
        )

    def _kling_data(self, task: _Task, status: str) -> dict[str, Any]:
        ms = int(task.created * 1000)
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_status_msg": "",
            "task_info": {"external_task_id": task.body.get("external_task_id")},
            "created_at": ms,
            "updated_at": ms + 1000 * task.steps,
        }
        if status == "succeed":
            url = f"{self.base_url}/media/{task.hash}.mp4"
            data["task_result"] = {
                "videos": [
                    {
                        "id": task.hash,
                        "url": url,
                        "duration": str(task.body.get("duration", "5")) + ".1",
                    }
                ]
            }
        elif status == "failed":
            data["task_status_msg"] = task.fail_reason
        return data

    async def _kling_query(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.family != "kling" or task.kind != request.match_info["kind"]:
            return self._kling_error(1203, "task not found", 404)
        phase, _ = self._observe(task)
        status = {
            "queued": "submitted",
            "running": "processing",
            "done": "succeed",
            "failed": "failed",
        }[phase]
        return _json(
            {
                "code": 0,
                "message": "SUCCEED",
                "request_id": self._request_id(),
                "data": self._kling_data(task, status),
            }
        )
