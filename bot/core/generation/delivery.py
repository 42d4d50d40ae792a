"""Result delivery: a finished task's result (or failure), posted exactly once across restarts.

:class:`Deliverer` (progress edits are
:class:`~bot.core.generation.progress.StatusEditor`'s; a delivery
first *settles* the task's editor so no stale progress lands after the final text):

* a delivery is a list of *parts* (the grid, clip 1, clip 2, a video, a notice); after the
  platform confirms a part, its message id is written into the row (``result["sent"]``)
  before the next part starts, and a resumed delivery skips the parts already there;
* waiting for the chat's pacer slot may be interrupted at any time; sending a part and
  recording it form one *step* that cancellation does not cut in half: on shutdown a step
  in flight finishes (within ``grace`` seconds) before the delivery stops;
* a step first writes the part's name as *being sent* (``result["sending"]``); an answer
  from the platform (a message id, or an error: then nothing went out) clears it. A step
  that never got its answer (slower than ``grace``, or the process was killed) leaves it,
  and the next start cannot tell whether that part went out: the platforms offer no
  idempotency key and no way to ask. It is not posted again (*at most once* rather than
  twice): it counts as sent, with no message id, and the final status says a part may be
  missing.
* before it is posted, a part is *claimed* in the store under its ``(task, part)`` key;
  only one claim can win, so even two processes that both think they own the chat (a
  role changing hands) post a part at most once;
* only the process that posts to the task's chat delivers it (``outbox.routes()``); any
  other hands the task over (:class:`~bot.core.ports.Handoff`) and leaves it;
* the status message then shows the final view (an idempotent edit) and the row is marked
  delivered; ``mark_delivered`` is idempotent too;
* a file that cannot be fetched is retried (a 404 or a refused URL once, soon); when given
  up, the status message says so, the quota is refunded if nothing was posted, and the
  operator gets a log line and a count (:mod:`bot.core.generation.fetch`).

The parts themselves are built and posted by
:class:`~bot.core.generation.result_post.ResultPost`.

Result shapes (``task.result``, written by the task backend): ``{"type": "image",
"image_url", "prompt", "buttons": [{custom_id, label, emoji, kind}]}``, ``{"type":
"prompts", "prompts": [...]}``, ``{"type": "audio", "clips": [{title, audio_url,
image_url, duration, tags}]}``, ``{"type": "video", "video_url", "duration"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, TypeVar

from bot.core.errors import (
    PlatformUnavailable,
    ResultUnavailable,
    SurfaceError,
    UpstreamError,
)
from bot.core.generation.progress import StatusEditor
from bot.core.generation.records import Task, TaskStatus
from bot.core.generation.result_post import ResultPost
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import (
    Platform,
)
from bot.core.ports import Clock, Handoff, Outbox, Refunds, TaskBackend, TaskStore, Telemetry
from bot.core.telemetry import NullTelemetry

__all__ = ["Deliverer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_DELAYS: Final = (5.0, 15.0, 60.0, 300.0, 900.0)
UNAVAILABLE_RETRY_DELAYS: Final = (3.0,)
"""A 404 or a refused URL: one more try (a CDN may lag behind the task's status), then give up."""
DELIVERIES: Final = 16
"""Deliveries (download, then post) under way at once. Slow servers cannot hold them for
long (the downloader's deadline and minimum rate; retries wait outside any slot), and a few
results on one leave the rest free. Memory: at most this many times the download cap."""
STEP_GRACE: Final = SHUTDOWN.flush  # a step in flight at a stop lands like a cut reply


class Deliverer:
    """Delivers finished tasks, at most ``concurrency`` at a time (see the module docstring).
    ``refunds`` gives the quota back for a result that could not be fetched; ``telemetry``
    counts those."""

    def __init__(
        self,
        *,
        store: TaskStore,
        backend: TaskBackend,
        outboxes: Mapping[Platform, Outbox],
        editor: StatusEditor,
        clock: Clock,
        concurrency: int = DELIVERIES,
        grace: float = STEP_GRACE,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        unavailable_retry_delays: tuple[float, ...] = UNAVAILABLE_RETRY_DELAYS,
        refunds: Refunds | None = None,
        telemetry: Telemetry | None = None,
        name: str = "local",
        handoff: Handoff | None = None,
    ) -> None:
        self._store = store
        self._name = name
        self._handoff = handoff
        self._backend = backend
        self._outboxes = outboxes
        self._editor = editor
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._grace = grace
        self._retry_delays = retry_delays
        self._unavailable_delays = unavailable_retry_delays
        self._refunds = refunds
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._jobs: dict[int, asyncio.Task[None]] = {}

    def owns(self, task: Task) -> bool:
        """Whether this process posts to the task's chat."""
        outbox = self._outboxes.get(task.conversation.platform)
        return outbox is not None and (task.route is None or task.route in outbox.routes())

    def schedule(self, task_id: int, *, announce: bool = True) -> None:
        """Deliver the task soon (no-op if its delivery is already under way). If another
        process posts to its chat, ``announce`` hands it over instead."""
        if task_id in self._jobs:
            return
        job = asyncio.get_running_loop().create_task(self._run(task_id, announce))
        self._jobs[task_id] = job
        job.add_done_callback(lambda _: self._jobs.pop(task_id, None))

    async def close(self) -> None:
        """Stop: queued deliveries are dropped (they resume at the next start); a step in
        flight finishes first, within the grace period."""
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def _run(self, task_id: int, announce: bool) -> None:
        attempt = 0
        while True:
            try:
                async with self._slots:
                    await self._deliver(task_id, announce)
                return
            except (PlatformUnavailable, UpstreamError) as exc:
                delays = (
                    self._unavailable_delays
                    if isinstance(exc, ResultUnavailable)
                    else self._retry_delays
                )
                if attempt >= len(delays):
                    if isinstance(exc, UpstreamError):
                        await self._give_up(task_id, exc)
                        return
                    log.error("task %d: delivery failed for good: %s", task_id, exc)  # noqa: TRY400
                    break
                delay = delays[attempt]
                log.warning("task %d: delivery failed (%s); again in %.0f s", task_id, exc, delay)
                await self._clock.sleep(delay)
                attempt += 1
            except SurfaceError as exc:
                log.warning("task %d: the platform refused the delivery: %s", task_id, exc)
                break
            except Exception:
                log.exception("task %d: delivery crashed", task_id)
                break
        # Given up: record it, so a restart does not retry a delivery that cannot succeed.
        await self._store.mark_delivered(task_id)

    async def _give_up(self, task_id: int, exc: UpstreamError) -> None:
        """The result cannot be fetched: tell the user and the operator, refund what gave
        nothing, and record the task as delivered (a restart does not try again)."""
        task = await self._store.get_task(task_id)
        outbox = self._outboxes.get(task.conversation.platform) if task is not None else None
        if task is None or task.delivered_at is not None or outbox is None or not self.owns(task):
            return  # done meanwhile, or not posted from here: its owner's sweep retries
        provider = task.provider.value
        log.error(
            "task %d (%s): the result could not be fetched, given up: %s", task.id, provider, exc
        )
        self._telemetry.result_unfetched(provider, exc.reason)
        delivery = self._post(task, outbox)
        refunded = delivery.nothing_posted and self._refunds is not None
        if refunded and self._refunds is not None:
            try:
                await self._refunds.refund_task(task)
            except Exception:
                log.exception("task %d: quota refund failed", task.id)
        try:
            await delivery.unfetched(refunded=refunded)
        except SurfaceError as error:
            log.warning("task %d: could not say the result is missing: %s", task.id, error)
        await self._store.mark_delivered(task.id)

    async def _deliver(self, task_id: int, announce: bool) -> None:
        task = await self._store.get_task(task_id)
        if task is None or task.delivered_at is not None or not task.status.is_terminal:
            return
        outbox = self._outboxes.get(task.conversation.platform)
        if outbox is None or not self.owns(task):
            if announce and self._handoff is not None:
                await self._handoff.task_ready(task.id)
                log.info("task %d: handed over to the process posting to its chat", task.id)
            else:
                log.info(
                    "task %d: %s is not posted from here; delivery waits",
                    task.id,
                    task.conversation,
                )
            return
        await self._editor.settle(task.id)
        if task.status is TaskStatus.SUCCEEDED:
            await self._post(task, outbox).result()
        else:
            await self._post(task, outbox).failure()
        await self._store.mark_delivered(task.id)

    def _post(self, task: Task, outbox: Outbox) -> ResultPost:
        return ResultPost(
            task, outbox, store=self._store, backend=self._backend, step=self.step, owner=self._name
        )

    async def step(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (a post and its record) to the end even if cancelled meanwhile."""
        inner = asyncio.ensure_future(work())
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if not inner.done():
                sleeper = asyncio.ensure_future(self._clock.sleep(self._grace))
                try:
                    await asyncio.wait((inner, sleeper), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                if not inner.done():
                    inner.cancel()
            raise
