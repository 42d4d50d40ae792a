"""In-process fakes for the generation core on virtual time: a task store, a task backend
and an outbox. No threads and no sockets, so a FakeClock's autopilot sees exactly when
everything is idle (a real aiosqlite store answers from another thread)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.core.errors import MediaTooLarge, ResultUnavailable, RetryLater, UpstreamError
from bot.core.generation.records import (
    ACTIVE_STATUSES,
    UNSET,
    ButtonRef,
    ButtonSpec,
    NewTask,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
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


class MemoryTaskStore:
    """:class:`bot.core.ports.TaskStore` in memory, on the fake clock's time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tasks: dict[int, Task] = {}
        self.buttons: dict[str, ButtonRef] = {}
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self.writes = 0  # write calls (update_tasks counts once; claims are not counted)
        self.leases: dict[int, tuple[str, float]] = {}  # task id -> (owner, until)
        self.parts: dict[tuple[int, str], str | None] = {}  # (task, part) -> message id

    async def create_task(self, task: NewTask) -> int:
        await asyncio.sleep(0)
        now = self.clock.now()
        task_id = next(self._ids)
        self.tasks[task_id] = Task(
            id=task_id,
            provider=Provider(task.provider),
            kind=task.kind,
            owner_id=task.owner_id,
            conversation=task.conversation,
            status=TaskStatus.PENDING,
            request=dict(task.request),
            created_at=now,
            updated_at=now,
            parent_id=task.parent_id,
            reply_to_id=task.reply_to_id,
            route=task.route,
            lease_owner=task.submitter,
        )
        self.writes += 1
        return task_id

    async def get_task(self, task_id: int) -> Task | None:
        await asyncio.sleep(0)
        return self.tasks.get(task_id)

    def _apply(self, update: TaskUpdate) -> int:
        task = self.tasks.get(update.task_id)
        if task is None:
            return 0
        changes = {
            f.name: getattr(update, f.name)
            for f in dataclasses.fields(update)
            if f.name != "task_id" and getattr(update, f.name) is not UNSET
        }
        if "result" in changes and changes["result"] is not None:
            changes["result"] = dict(changes["result"])
        self.tasks[task.id] = dataclasses.replace(task, updated_at=self.clock.now(), **changes)
        return 1

    async def update_task(self, update: TaskUpdate) -> bool:
        await asyncio.sleep(0)
        self.writes += 1
        return self._apply(update) == 1

    async def update_tasks(self, updates: Iterable[TaskUpdate], *, release: bool = False) -> int:
        await asyncio.sleep(0)
        self.writes += 1
        changed = 0
        for update in updates:
            changed += self._apply(update)
            if release:
                self.leases.pop(update.task_id, None)
        return changed

    async def claim_due_tasks(
        self,
        owner: str,
        *,
        due_before: float,
        lease: float,
        limit: int,
        routes: Collection[str] | None = None,
        grace: float = 0.0,
    ) -> list[Task]:
        now = self.clock.now()
        free = [
            t
            for t in await self.due_tasks(due_before, len(self.tasks))
            if self.leases.get(t.id, ("", 0.0))[1] < now
            and (
                routes is None
                or t.route is None
                or t.route in routes
                or (t.next_poll_at or 0.0) <= now - grace
            )
        ][:limit]
        for task in free:
            self.leases[task.id] = (owner, now + lease)
        return free

    async def release_tasks(self, owner: str, task_ids: Sequence[int]) -> int:
        await asyncio.sleep(0)
        mine = [i for i in task_ids if self.leases.get(i, ("", 0.0))[0] == owner]
        for task_id in mine:
            del self.leases[task_id]
        return len(mine)

    async def release_leases(self, owner: str | None) -> int:
        await asyncio.sleep(0)
        mine = [i for i, (name, _) in self.leases.items() if owner is None or name == owner]
        for task_id in mine:
            del self.leases[task_id]
        return len(mine)

    async def claim_part(self, task_id: int, part: str, owner: str) -> bool:
        await asyncio.sleep(0)
        if (task_id, part) in self.parts:
            return False
        self.parts[task_id, part] = None
        return True

    async def part_posted(self, task_id: int, part: str, message_id: str) -> None:
        await asyncio.sleep(0)
        self.parts[task_id, part] = message_id

    async def release_part(self, task_id: int, part: str) -> None:
        await asyncio.sleep(0)
        if self.parts.get((task_id, part), "") is None:
            del self.parts[task_id, part]

    async def due_tasks(self, now: float | None = None, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        at = self.clock.now() if now is None else now
        due = [
            t
            for t in self.tasks.values()
            if t.status in ACTIVE_STATUSES and t.next_poll_at is not None and t.next_poll_at <= at
        ]
        due.sort(key=lambda t: (t.next_poll_at or 0.0, t.id))
        return due[:limit]

    async def next_due_at(
        self, routes: Collection[str] | None = None, grace: float = 0.0
    ) -> float | None:
        await asyncio.sleep(0)
        times = []
        for t in self.tasks.values():
            if t.status not in ACTIVE_STATUSES or t.next_poll_at is None:
                continue
            own = routes is None or t.route is None or t.route in routes
            due = t.next_poll_at if own else t.next_poll_at + grace
            times.append(max(due, self.leases.get(t.id, ("", 0.0))[1]))
        return min(times) if times else None

    async def undelivered_tasks(self, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        found = [t for t in self.tasks.values() if t.status.is_terminal and t.delivered_at is None]
        return found[:limit]

    async def pending_tasks(self, *, created_before: float, limit: int = 100) -> list[Task]:
        await asyncio.sleep(0)
        found = [
            t
            for t in self.tasks.values()
            if t.status is TaskStatus.PENDING and t.created_at < created_before
        ]
        return found[:limit]

    async def waiting_task(self, owner_id: str, status_message_id: str) -> Task | None:
        await asyncio.sleep(0)
        for task in reversed(self.tasks.values()):
            if (
                task.owner_id == owner_id
                and task.status is TaskStatus.WAITING
                and task.status_message_id == status_message_id
            ):
                return task
        return None

    async def mark_delivered(self, task_id: int, *, at: float | None = None) -> bool:
        await asyncio.sleep(0)
        task = self.tasks.get(task_id)
        if task is None or task.delivered_at is not None:
            return False
        when = self.clock.now() if at is None else at
        self.tasks[task_id] = dataclasses.replace(task, delivered_at=when)
        return True

    async def add_buttons(self, task_id: int, buttons: Sequence[ButtonSpec]) -> list[str]:
        await asyncio.sleep(0)
        tokens = []
        for spec in buttons:
            existing = next(
                (
                    b.token
                    for b in self.buttons.values()
                    if b.task_id == task_id and b.custom_id == spec.custom_id
                ),
                None,
            )
            if existing is None:
                existing = f"tok{next(self._tokens)}"
                self.buttons[existing] = ButtonRef(
                    existing,
                    task_id,
                    spec.custom_id,
                    spec.label,
                    spec.emoji,
                    spec.kind,
                    self.clock.now(),
                )
            tokens.append(existing)
        return tokens

    async def get_button(self, token: str) -> ButtonRef | None:
        await asyncio.sleep(0)
        return self.buttons.get(token)

    async def count_active_tasks(self, owner_id: str) -> int:
        return sum(
            1 for t in self.tasks.values() if t.owner_id == owner_id and not t.status.is_terminal
        )


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
