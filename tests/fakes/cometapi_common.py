"""Shared pieces of the fake CometAPI (see ``tests.fakes.cometapi``): constants, the scripting
and bookkeeping types, small helpers, and :class:`CometBase`, the state declarations and plumbing
(request ids, error bodies, hangs, task stepping) that every route family builds on.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

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
    # JSON with every non-ASCII character escaped (\\uXXXX), as some upstreams send it; the
    # only way a token holding half of a surrogate pair can travel.
    ascii_json: bool = False
    # send N tokens, then keep the stream warm forever: a keep-alive comment and an empty
    # delta every ``keepalive_every`` seconds, never any text (until the client goes away)
    keepalive_after: int | None = None
    keepalive_every: float = 0.2


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    at: float = 0.0  # time.monotonic() when it arrived


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


class CometBase:
    """State and plumbing shared by the route mixins; :class:`FakeCometAPI` sets it all up."""

    api_key: str
    task_steps: int
    auto_advance: bool
    models: list[str]
    sse_newline: str
    requests: list[RecordedRequest]
    disconnects: int
    chat_scripts: deque[ChatScript]
    mj_actions: list[tuple[str, str]]
    mj_result_as_number: bool
    mj_banned_words: set[str]
    mj_moderated_words: set[str]
    mj_slow_words: set[str]
    mj_missing_words: set[str]
    tasks: dict[str, _Task]
    _mj_submits: deque[_MJSubmit]
    _task_failures: dict[str, deque[str]]
    _failures: list[_Failure]
    _ids: itertools.count[int]
    _runner: web.AppRunner | None
    _port: int | None
    _closing: asyncio.Event
    _changed: asyncio.Event

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` - what the client takes as ``base_url``."""
        if self._port is None:
            raise RuntimeError("FakeCometAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- plumbing ----------------------------------------------------------------------------

    def _bump(self) -> None:
        self._changed.set()

    def _saw_disconnect(self) -> None:
        self.disconnects += 1
        self._bump()

    def _request_id(self) -> str:
        return f"2026{next(self._ids):012d}fake"

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
