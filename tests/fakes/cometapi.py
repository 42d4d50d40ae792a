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
  ``/mj/task/list-by-condition``, ``/mj/image/{id}`` (a real PNG; trickled at 1 byte/s when
  the prompt has a word of ``mj_slow_words``, 404 for one of ``mj_missing_words``);
* ``/suno/submit/{music,lyrics}``, ``GET /suno/fetch/{id}``, ``POST /suno/fetch``;
* ``/kling/v1/videos/{text2video,image2video}`` and their ``/{task_id}`` queries;
* ``/v1/images/{generations,edits}`` and ``/cdn/{name}`` (``cometapi_images``);
* ``POST /v1/audio/transcriptions`` (multipart; :attr:`transcripts`) and ``/v1/audio/speech``;
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
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fakes.cometapi_audio import AudioRoutes
from tests.fakes.cometapi_chat import ChatRoutes, message_text
from tests.fakes.cometapi_common import (
    _JSON,
    DEFAULT_MODELS,
    TEST_KEY,
    ChatScript,
    RecordedRequest,
    RecordingSleep,
    T,
    _Failure,
    _json,
    _MJSubmit,
    _Task,
    tiny_png,
)
from tests.fakes.cometapi_images import ImagesRoutes
from tests.fakes.cometapi_mj import MidjourneyRoutes
from tests.fakes.cometapi_tasks import TaskRoutes

__all__ = [
    "TEST_KEY",
    "ChatScript",
    "FakeCometAPI",
    "RecordedRequest",
    "RecordingSleep",
    "message_text",
    "tiny_png",
]


class FakeCometAPI(ChatRoutes, MidjourneyRoutes, TaskRoutes, ImagesRoutes, AudioRoutes):
    """The fake server. Scripting attributes may be changed at any time during a test."""

    # Route handlers live in the mixins (cometapi_chat, cometapi_mj, cometapi_tasks); state
    # declarations, ``base_url`` and the shared plumbing in ``cometapi_common.CometBase``.

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
        self.mj_slow_words = {"slowpoke"}  # the image is served at 1 byte/s
        self.mj_missing_words = {"vanished"}  # the image answers 404
        self.tasks: dict[str, _Task] = {}
        self._mj_submits: deque[_MJSubmit] = deque()
        self._task_failures: dict[str, deque[str]] = {f: deque() for f in ("mj", "suno", "kling")}
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._images_state()
        self._init_audio()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeCometAPI:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        routes = [
            ("POST", "/v1/chat/completions", self._chat),
            ("GET", "/v1/models", self._models),
            ("POST", "/v1/audio/transcriptions", self._transcribe),
            ("POST", "/v1/audio/speech", self._speech),
            ("GET", "/api/models", self._catalog),
            ("POST", "/mj/submit/{kind}", self._mj_submit),
            ("GET", "/mj/task/{id}/fetch", self._mj_fetch),
            ("POST", "/mj/task/list-by-condition", self._mj_list),
            ("GET", "/mj/image/{id}", self._mj_image),
            ("POST", "/suno/submit/{kind}", self._suno_submit),
            ("GET", "/suno/fetch/{id}", self._suno_fetch),
            ("POST", "/suno/fetch", self._suno_fetch_many),
            ("GET", "/media/{name}", self._media),
            ("POST", "/v1/images/generations", self._images_generate),
            ("POST", "/v1/images/edits", self._images_edit),
            ("GET", "/cdn/{name}", self._cdn_file),
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

    def add_task(self, family: str, kind: str, body: dict[str, Any]) -> str:
        """Create a task as if ``body`` had just been submitted (no request); its id.
        ``bench.poller`` starts with thousands of tasks rendering this way."""
        return self._new_task(family, kind, body).id

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

    # -- plumbing (the shared helpers live in CometBase) --------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Any = None
        # A multipart upload is left unread: its route parses the form itself.
        if request.can_read_body and not request.content_type.startswith("multipart/"):
            with contextlib.suppress(ValueError):
                body = json.loads(await request.read())
        request[_JSON] = body
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.headers), body, time.monotonic()
            )
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

    # -- a website where the API should be ---------------------------------------------------

    async def _website(self, request: web.Request) -> web.Response:
        html = "<!DOCTYPE html><html><head><title>CometAPI</title></head><body>Hi</body></html>"
        return web.Response(text=html, content_type="text/html")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(
            location=f"{self.base_url}/website{request.match_info['tail']}"
        )
