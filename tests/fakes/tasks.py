"""In-process fakes for the generation core on virtual time: a task backend and an outbox
(the task store is :mod:`tests.fakes.task_store`). No threads and no sockets, so a
FakeClock's autopilot sees exactly when everything is idle."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.core.errors import MediaTooLarge, ResultUnavailable, RetryLater, UpstreamError
from bot.core.generation.records import (
    Provider,
)
from bot.core.generation.requests import GenerationRequest
from bot.core.models import (
    ConversationKey,
    Downloaded,
    MediaLimits,
    OutgoingMessage,
    StatusView,
    Submitted,
    TaskRef,
    TaskSnapshot,
    UpstreamState,
)
from bot.core.pacing import Pacer, PacerRules
from tests.fakes.clock import FakeClock

T = TypeVar("T")


@dataclass
class Upstream:
    """A scripted upstream task: one snapshot per poll, the last one repeating."""

    snapshots: list[TaskSnapshot]
    polls: int = 0

    def next(self) -> TaskSnapshot:
        snap = self.snapshots[min(self.polls, len(self.snapshots) - 1)]
        self.polls += 1
        return snap


def image_result(url: str = "https://cdn.test/grid.png") -> dict[str, Any]:
    buttons = [
        {
            "custom_id": f"MJ::JOB::upsample::{n}::h",
            "label": f"U{n}",
            "emoji": "",
            "kind": "upscale",
        }
        for n in range(1, 5)
    ]
    return {"type": "image", "image_url": url, "prompt": "a boat", "buttons": buttons}


def audio_result(count: int = 2) -> dict[str, Any]:
    clips = [
        {
            "title": f"Song {n}",
            "audio_url": f"https://cdn.test/{n}.mp3",
            "image_url": f"https://cdn.test/{n}.jpeg",
            "duration": 120.5,
            "tags": "synth-pop",
        }
        for n in range(1, count + 1)
    ]
    return {"type": "audio", "clips": clips}


class FakeBackend:
    """:class:`bot.core.ports.TaskBackend` with scripted tasks, errors and downloads.

    Every submitted task gets the snapshots of ``script`` (default: queued, 50 %, done).
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.limits = {Provider.MIDJOURNEY: 100, Provider.SUNO: 50, Provider.KLING: 1}
        self.upstream: dict[str, Upstream] = {}
        self.submits: list[GenerationRequest] = []
        self.submit_errors: deque[Exception] = deque()
        self.submit_waiting: deque[bool] = deque()
        self.polls: list[tuple[Provider, list[str], float]] = []
        self.poll_errors: deque[Exception] = deque()
        self.poll_delay = 0.0
        self.downloads: list[tuple[str, int]] = []
        self.files: dict[str, bytes] = {}
        self.download_errors: deque[Exception] = deque()
        self.missing: set[str] = set()  # URLs that answer 404
        self.script: list[TaskSnapshot] | None = None
        self.result: dict[str, Any] = image_result()
        self._ids = itertools.count(1)

    def batch_limit(self, provider: Provider) -> int:
        return self.limits[provider]

    def add(self, upstream_id: str, snapshots: list[TaskSnapshot]) -> None:
        self.upstream[upstream_id] = Upstream(snapshots)

    def default_script(self, upstream_id: str) -> list[TaskSnapshot]:
        return [
            TaskSnapshot(upstream_id, UpstreamState.QUEUED, 0),
            TaskSnapshot(upstream_id, UpstreamState.RUNNING, 50, preview_url="https://p/1"),
            TaskSnapshot(upstream_id, UpstreamState.SUCCEEDED, 100, result=self.result),
        ]

    async def submit(self, request: GenerationRequest) -> Submitted:
        await asyncio.sleep(0)
        self.submits.append(request)
        if self.submit_errors:
            raise self.submit_errors.popleft()
        upstream_id = f"up{next(self._ids)}"
        script = self.script or self.default_script(upstream_id)
        self.add(upstream_id, [dataclasses.replace(s, upstream_id=upstream_id) for s in script])
        waiting = self.submit_waiting.popleft() if self.submit_waiting else False
        return Submitted(upstream_id, waiting=waiting)

    async def poll(self, provider: Provider, refs: Sequence[TaskRef]) -> list[TaskSnapshot]:
        assert len(refs) <= self.limits[provider]
        self.polls.append((provider, [r.upstream_id for r in refs], self.clock.now()))
        if self.poll_delay:
            await self.clock.sleep(self.poll_delay)
        else:
            await asyncio.sleep(0)
        if self.poll_errors:
            raise self.poll_errors.popleft()
        return [self.upstream[r.upstream_id].next() for r in refs if r.upstream_id in self.upstream]

    async def download(self, url: str, *, max_bytes: int) -> Downloaded:
        await asyncio.sleep(0)
        self.downloads.append((url, max_bytes))
        if self.download_errors:
            raise self.download_errors.popleft()
        if url in self.missing:
            raise ResultUnavailable(f"{url}: HTTP 404", reason="not_found")
        data = self.files.get(url, b"\x89PNG" + bytes(100))
        if len(data) > max_bytes:
            raise MediaTooLarge(f"{url} is larger than {max_bytes}")
        return Downloaded(data, "image/png" if url.endswith(".png") else "audio/mpeg")


@dataclass
class Posted:
    key: ConversationKey
    message: OutgoingMessage
    reply_to: str | None
    at: float
    id: str


@dataclass
class FakeOutbox:
    """:class:`bot.core.ports.Outbox` recording posts and edits on virtual time.

    Posts go through a real :class:`~bot.core.pacing.Pacer` without windows: only 429s
    (``post_errors``) hold a chat back. ``slot_gate`` keeps every chat's slot from coming.
    """

    clock: FakeClock
    limits: MediaLimits = field(default_factory=lambda: MediaLimits(1000, 10_000))
    posts: list[Posted] = field(default_factory=list)
    edits: list[tuple[str, StatusView, float]] = field(default_factory=list)
    post_errors: deque[Exception] = field(default_factory=deque)
    slot_gate: asyncio.Event | None = None
    post_gate: asyncio.Event | None = None
    owned: frozenset[str] = frozenset({"tg", "dc:0"})  # the task routes this process posts to
    pacer: Pacer = field(init=False)
    _ids: Any = field(default_factory=lambda: itertools.count(100))

    def __post_init__(self) -> None:
        self.pacer = Pacer(PacerRules(lanes={"chat": ()}), clock=self.clock)

    def routes(self) -> frozenset[str]:
        return self.owned

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        if self.slot_gate is not None:
            await self.slot_gate.wait()
        await asyncio.sleep(0)
        return await self.pacer.call(key.chat_id, "chat", call, attempts=attempts)

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        if self.post_gate is not None:
            await self.post_gate.wait()
        await asyncio.sleep(0)
        if self.post_errors:
            raise self.post_errors.popleft()
        posted = Posted(key, message, reply_to, self.clock.now(), str(next(self._ids)))
        self.posts.append(posted)
        return posted.id

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        await asyncio.sleep(0)
        self.edits.append((message_id, view, self.clock.now()))

    def media_posts(self) -> list[Posted]:
        return [p for p in self.posts if p.message.media is not None]


def rate_limited(seconds: float = 1.0) -> RetryLater:
    return RetryLater(seconds)


def upstream_down(retry_after: float | None = None) -> UpstreamError:
    return UpstreamError("upstream is down", retry_after=retry_after)
