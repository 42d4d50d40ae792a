"""A fake CometAPI over real TCP: chat SSE, Midjourney, Suno and Kling, scripted per test.

``FakeCometAPI`` is an aiohttp server on 127.0.0.1 (port 0)::

    async with FakeCometAPI() as fake:
        client = CometAPI(api_key=fake.api_key, base_url=fake.base_url)
        fake.script_chat(tokens=["Hel", "lo"], usage=(9, 2))   # next chat request
        fake.fail_next(2, 429, path_prefix="/v1/chat", retry_after=1)

What it speaks (shapes from ``/work/shared/cometapi.md``):

* ``POST /v1/chat/completions`` (stream or not), ``GET /v1/models``, ``GET /api/models``;
  each chat request consumes one :class:`ChatScript` (default: echo the last user message);
* ``/mj/submit/{imagine,action,modal,blend,describe}``, ``/mj/task/{id}/fetch``,
  ``/mj/task/list-by-condition``, ``/mj/image/{id}`` (a real PNG);
* ``/suno/submit/{music,lyrics}``, ``GET /suno/fetch/{id}``, ``POST /suno/fetch``;
* ``/kling/v1/videos/{text2video,image2video}`` and their ``/{task_id}`` queries;
* ``/website/...`` answers HTML and ``/redirect/...`` a 301, like a wrong base URL would.

Tasks advance one step per observation (a fetch, or a list/fetch-many that includes them):
observation 1 is SUBMITTED, then ``task_steps - 1`` IN_PROGRESS steps, then the terminal
state. Set ``auto_advance = False`` and call :meth:`advance` to step them by hand.
Every request is recorded in :attr:`requests`; client disconnects seen while streaming or
hanging are counted in :attr:`disconnects`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = [
    "TEST_KEY",
    "ChatScript",
    "FakeCometAPI",
    "RecordedRequest",
    "RecordingSleep",
    "tiny_png",
]

T = TypeVar("T")

TEST_KEY = "sk-fake-cometapi-0123456789abcdef"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "deepseek-r1", "claude-sonnet-4")
MJ_GRID = {"IMAGINE", "BLEND", "REROLL", "VARIATION", "HIGH_VARIATION", "LOW_VARIATION"}
MJ_GRID |= {"ZOOM", "PAN", "CUSTOM_ZOOM", "INPAINT"}
MJ_MODAL_KINDS = {"CUSTOM_ZOOM", "INPAINT"}
KLING_KINDS = ("text2video", "image2video")


@dataclass
class ChatScript:
    """How the fake answers one chat request."""

    tokens: list[str] | None = None  # None: echo the last user message, word by word
    reasoning: list[str] = field(default_factory=list)  # sent as delta.reasoning_content first
    delay: float = 0.0  # seconds before each streamed token
    status: int = 200  # != 200: answer with an OpenAI-shaped error body
    message: str = ""  # error message for status != 200 or error_mid
    code: str = ""  # error.code, e.g. "invalid_request"
    retry_after: float | None = None  # Retry-After header on the error
    cut_after: int | None = None  # drop the TCP connection after N tokens (no [DONE])
    omit_done: bool = False  # end the stream cleanly but without data: [DONE]
    hang: bool = False  # never answer at all
    hang_after: int | None = None  # send N tokens, then go silent with the connection open
    error_mid: int | None = None  # after N tokens send {"error": {...}} and end
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted
    finish_reason: str = "stop"
    model: str | None = None  # the model name reported back (default: the requested one)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class _Failure:
    remaining: int
    status: int
    path_prefix: str
    retry_after: float | None
    message: str
    code: str
    hang: bool


@dataclass
class _MJSubmit:
    code: int
    description: str
    properties: dict[str, Any]
    status: int


@dataclass
class _Task:
    id: str
    family: str  # mj | suno | kling
    kind: str  # IMAGINE, UPSCALE, ... | MUSIC, LYRICS | text2video, image2video
    body: dict[str, Any]
    fail_reason: str | None = None
    modal: bool = False
    custom_id: str = ""
    steps: int = 0
    created: float = field(default_factory=time.time)
    hash: str = field(default_factory=lambda: str(uuid.uuid4()))


class RecordingSleep:
    """A stand-in for ``asyncio.sleep`` (``CometAPI(sleep=...)``): records, never waits."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def tiny_png(rgb: tuple[int, int, int] = (40, 90, 160), size: int = 8) -> bytes:
    """A valid ``size`` x ``size`` single-colour PNG."""
    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


_JSON: web.RequestKey[Any] = web.RequestKey("cometapi_json", object)


def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} when absent or not an object)."""
    body = request.get(_JSON)
    return body if isinstance(body, dict) else {}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(payload, status=status, headers=headers)


class FakeCometAPI:
    """The fake server. Scripting attributes may be changed at any time during a test."""

    def __init__(self, *, api_key: str = TEST_KEY, task_steps: int = 3) -> None:
        self.api_key = api_key
        self.task_steps = task_steps
        self.auto_advance = True
        self.models: list[str] = list(DEFAULT_MODELS)
        self.sse_newline = "\n"  # set "\r\n" to exercise CRLF parsing
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.chat_scripts: deque[ChatScript] = deque()
        self.mj_actions: list[tuple[str, str]] = []  # (taskId, customId) of every action
        self.mj_result_as_number = False  # submit "result" as a JSON number
        self.mj_banned_words = {"gore"}  # imagine answers code 24
        self.mj_moderated_words = {"forbidden-subject"}  # the task ends in FAILURE
        self.tasks: dict[str, _Task] = {}
        self._mj_submits: deque[_MJSubmit] = deque()
        self._task_failures: dict[str, deque[str]] = {f: deque() for f in ("mj", "suno", "kling")}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeCometAPI:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        routes = [
            ("POST", "/v1/chat/completions", self._chat),
            ("GET", "/v1/models", self._models),
            ("GET", "/api/models", self._catalog),
            ("POST", "/mj/submit/{kind}", self._mj_submit),
            ("GET", "/mj/task/{id}/fetch", self._mj_fetch),
            ("POST", "/mj/task/list-by-condition", self._mj_list),
            ("GET", "/mj/image/{id}", self._mj_image),
            ("POST", "/suno/submit/{kind}", self._suno_submit),
            ("GET", "/suno/fetch/{id}", self._suno_fetch),
            ("POST", "/suno/fetch", self._suno_fetch_many),
            ("GET", "/media/{name}", self._media),
            ("POST", "/kling/v1/videos/{kind}", self._kling_create),
            ("GET", "/kling/v1/videos/{kind}/{id}", self._kling_query),
            ("*", "/website{tail:.*}", self._website),
            ("*", "/redirect{tail:.*}", self._redirect),
            ("GET", "/", self._website),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._port = int(sock.getsockname()[1])
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeCometAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` - what the client takes as ``base_url``."""
        if self._port is None:
            raise RuntimeError("FakeCometAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def website_url(self) -> str:
        """A base URL that answers HTML for every path (a marketing site, not the API)."""
        return f"{self.base_url}/website"

    @property
    def redirect_url(self) -> str:
        """A base URL that answers 301 for every path."""
        return f"{self.base_url}/redirect"

    # -- scripting ---------------------------------------------------------------------------

    def script_chat(self, **kwargs: Any) -> ChatScript:
        """Queue a :class:`ChatScript` for the next chat request (FIFO)."""
        script = ChatScript(**kwargs)
        self.chat_scripts.append(script)
        return script

    def fail_next(
        self,
        count: int = 1,
        status: int = 429,
        *,
        path_prefix: str = "",
        retry_after: float | None = None,
        message: str = "",
        code: str = "",
        hang: bool = False,
    ) -> None:
        """Answer the next ``count`` requests under ``path_prefix`` with ``status``.

        The body has the family's error shape (OpenAI, mj-proxy, Suno, Kling). With
        ``hang`` those requests get no answer at all (a timeout for the client).
        """
        failure = _Failure(count, status, path_prefix, retry_after, message, code, hang)
        self._failures.append(failure)

    def script_mj_submit(
        self,
        code: int,
        *,
        description: str = "",
        properties: dict[str, Any] | None = None,
        status: int = 200,
    ) -> None:
        """The next MJ submit answers ``code``: 1/21/22 still create a task (21: in MODAL);
        other codes create nothing. ``status`` 400/429 sends the upstream_error body."""
        self._mj_submits.append(_MJSubmit(code, description, properties or {}, status))

    def fail_next_task(self, family: str, reason: str = "任务执行超时") -> None:
        """The next task created for ``family`` ("mj", "suno", "kling") ends in failure."""
        self._task_failures[family].append(reason)

    def advance(self, task_id: str | None = None, steps: int = 1) -> None:
        """Move one task (or every task) ``steps`` observations forward."""
        for task in [self.tasks[task_id]] if task_id else list(self.tasks.values()):
            task.steps += steps

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method)
        ]

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (re-checked on every request/disconnect)."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()  # before checking, so no change is missed
                if value := predicate():
                    return value
                await self._changed.wait()

    async def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        return await self.wait_for(lambda: self.disconnects >= count and self.disconnects, timeout)

    # -- plumbing ----------------------------------------------------------------------------

    def _bump(self) -> None:
        self._changed.set()

    def _saw_disconnect(self) -> None:
        self.disconnects += 1
        self._bump()

    def _request_id(self) -> str:
        return f"2026{next(self._ids):012d}fake"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                body = json.loads(await request.read())
        request[_JSON] = body
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.headers), body)
        )
        self._bump()
        path = request.path
        protected = path.startswith(("/v1/", "/mj/", "/suno/", "/kling/"))
        if protected and not path.startswith("/mj/image/"):
            presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if presented != self.api_key:
                # Echoes the presented key, harsher than the real gateway, so that
                # tests prove the client redacts it.
                message = f"Invalid token {presented} (request id: {self._request_id()})"
                return _json(
                    {"error": {"code": "", "message": message, "type": "comet_api_error"}}, 401
                )
        for failure in self._failures:
            if failure.remaining > 0 and path.startswith(failure.path_prefix):
                failure.remaining -= 1
                if failure.hang:
                    await self._hang(request)
                    return web.Response(status=504)
                return self._error_response(path, failure)
        return await handler(request)

    def _error_response(self, path: str, failure: _Failure) -> web.Response:
        rid = self._request_id()
        message = f"{failure.message or f'scripted failure {failure.status}'} (request id: {rid})"
        headers = {"X-Oneapi-Request-Id": rid}
        if failure.retry_after is not None:
            headers["Retry-After"] = f"{failure.retry_after:g}"
        payload: dict[str, Any]
        if path.startswith("/mj/"):
            code = 30 if failure.status == 429 else 4
            payload = {"description": message, "type": "upstream_error", "code": code}
        elif path.startswith("/suno/"):
            payload = {
                "code": failure.code or "fail_to_fetch_task",
                "message": message,
                "data": None,
            }
        elif path.startswith("/kling/"):
            payload = {"code": 5000, "message": message, "request_id": rid}
        else:
            payload = {
                "error": {
                    "message": message,
                    "type": "comet_api_error",
                    "param": "",
                    "code": failure.code,
                }
            }
        return _json(payload, failure.status, headers)

    async def _hang(self, request: web.Request) -> None:
        """Stay silent until the client goes away (counted) or the fake closes."""
        while not self._closing.is_set():
            if request.transport is None or request.transport.is_closing():
                self._saw_disconnect()
                return
            await asyncio.sleep(0.01)

    def _observe(self, task: _Task) -> tuple[str, int]:
        """Advance ``task`` one step (if auto) and return (phase, progress %)."""
        if self.auto_advance:
            task.steps += 1
        if task.modal:
            return "modal", 0
        if task.steps > self.task_steps:
            return ("failed" if task.fail_reason else "done"), 100
        if task.steps <= 1:
            return "queued", 0
        return "running", round(100 * (task.steps - 1) / self.task_steps)

    def _new_task(self, family: str, kind: str, body: dict[str, Any], **extra: Any) -> _Task:
        number = next(self._ids)
        # Realistic id shapes: MJ 16 digits, Kling 19 digits, Suno a UUID.
        first = {"mj": 1773314942177000, "kling": 2032273942220931000}.get(family)
        task_id = str(first + number) if first else str(uuid.uuid4())
        failures = self._task_failures[family]
        task = _Task(task_id, family, kind, body, failures.popleft() if failures else None, **extra)
        self.tasks[task_id] = task
        return task

    # -- chat --------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 1626777600, "owned_by": "custom"}
            for m in self.models
        ]
        return _json({"success": True, "data": data})

    async def _catalog(self, request: web.Request) -> web.Response:
        data = [
            {
                "id": m,
                "provider": "Fake",
                "model_type": "text",
                "features": ["text-to-text"],
                "pricing": {"currency": "USD / M Tokens", "input": 0.1, "output": 0.4},
            }
            for m in self.models
        ]
        return _json({"success": True, "page": 0, "page_size": 0, "total": len(data), "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = _body(request)
        script = self.chat_scripts.popleft() if self.chat_scripts else ChatScript()
        model = body.get("model")
        if not model:
            script = ChatScript(status=400, message="model name is required")
        elif model not in self.models:
            message = f"No available channel for model {model} under current group default"
            script = ChatScript(status=503, message=message)
        if script.hang:
            await self._hang(request)
            return web.Response(status=504)
        if script.status != 200:
            failure = _Failure(
                1, script.status, "", script.retry_after, script.message, script.code, False
            )
            return self._error_response(request.path, failure)
        messages = body.get("messages") or []
        tokens = script.tokens if script.tokens is not None else _echo(messages)
        prompt_tokens = sum(len(_text_of(m).split()) for m in messages if isinstance(m, dict))
        prompt, completion = script.usage or (prompt_tokens, len(tokens) + len(script.reasoning))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": len(script.reasoning)},
        }
        base = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "created": int(time.time()),
            "model": script.model or model,
        }
        if not body.get("stream"):
            if script.cut_after is not None and request.transport is not None:
                request.transport.close()
                return web.Response(status=500)
            answer = {"role": "assistant", "content": "".join(tokens)}
            if script.reasoning:
                answer["reasoning_content"] = "".join(script.reasoning)
            choice = {"index": 0, "message": answer, "finish_reason": script.finish_reason}
            return _json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._chat_stream(
            request, script, tokens, base, usage if include_usage else None
        )

    async def _chat_stream(
        self,
        request: web.Request,
        script: ChatScript,
        tokens: list[str],
        base: dict[str, Any],
        usage: dict[str, Any] | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        nl = self.sse_newline
        base = {**base, "object": "chat.completion.chunk"}

        async def send(payload: Any) -> None:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("client went away")
            data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            await response.write(f"data: {data}{nl}{nl}".encode())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        try:
            await response.write(f": keep-alive{nl}{nl}".encode())
            await send(chunk({"role": "assistant", "content": ""}))
            for piece in script.reasoning:
                await send(chunk({"reasoning_content": piece}))
            for index in range(len(tokens) + 1):
                if index == script.cut_after and request.transport is not None:
                    request.transport.close()  # chunked body left incomplete
                    return response
                if index == script.hang_after:
                    await self._hang(request)
                    return response
                if index == script.error_mid:
                    message = (
                        f"{script.message or 'upstream error'} (request id: {self._request_id()})"
                    )
                    await send(
                        {
                            "error": {
                                "message": message,
                                "type": "upstream_error",
                                "code": script.code,
                            }
                        }
                    )
                    await response.write_eof()
                    return response
                if index == len(tokens):
                    break
                if script.delay:
                    await asyncio.sleep(script.delay)
                await send(chunk({"content": tokens[index]}))
            await send(chunk({}, script.finish_reason))
            if usage is not None:
                await send({**base, "choices": [], "usage": usage})
            if not script.omit_done:
                await send("[DONE]")
            await response.write_eof()
        except ConnectionError:
            self._saw_disconnect()
        return response

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

    async def _mj_image(self, request: web.Request) -> web.Response:
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.Response(status=404, text="not found")
        digest = zlib.crc32(task.id.encode())
        rgb = (digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF)
        return web.Response(body=tiny_png(rgb), content_type="image/png")

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

    # -- a website where the API should be ---------------------------------------------------

    async def _website(self, request: web.Request) -> web.Response:
        html = "<!DOCTYPE html><html><head><title>CometAPI</title></head><body>Hi</body></html>"
        return web.Response(text=html, content_type="text/html")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(
            location=f"{self.base_url}/website{request.match_info['tail']}"
        )


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


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        texts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        return " ".join(texts) + (f" [+{images} image]" if images else "")
    return str(content or "")


def _echo(messages: list[Any]) -> list[str]:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = _text_of(users[-1]) if users else ""
    return re.findall(r"\S+\s*", f"Echo: {text}")
