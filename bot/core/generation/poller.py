"""TaskPoller: one durable, batched poller for every generation task (design §6).

Every task is a row first (``bot.core.generation.service`` writes it before the paid submit). The
poller owns what happens after:

* **One loop.** It sleeps until the earliest ``next_poll_at`` in the store (or until
  :meth:`TaskPoller.wake` says a task was added), then runs a *cycle*: it reads the tasks
  due within ``batch_window`` seconds (so nearby tasks share requests), groups them by
  provider and polls them in batches — Midjourney ``list-by-condition`` and Suno
  ``fetch`` take up to :meth:`~bot.core.ports.TaskBackend.batch_limit` ids per request,
  Kling one task per request — at most ``max_requests`` requests per cycle (the rest stay
  due and go first in the next cycle). All row changes of a cycle are one store write.
* **Backoff per task.** A task is polled ``first_interval`` after its submit, then at
  intervals growing by ``growth`` up to ``max_interval`` (with a little jitter so
  thousands of tasks do not move in lockstep). A failed request only delays the tasks it
  carried (honouring a server's Retry-After); the loop keeps going through any error.
* **Deadlines.** A task still unfinished after its provider's deadline is marked
  ``expired`` and its user told so. (What each answer does to a row is decided in
  :mod:`bot.core.generation.transitions`.)
* **Progress.** A changed progress (or Midjourney preview) is shown in the status message,
  at most once per ``progress_edit_interval`` per task, through :class:`StatusEditor`
  (coalesced, paced by the platform's shared pacer).
* **Delivery.** Finished tasks go to :class:`Deliverer`, which records every posted part.

On start it resolves what a previous process left, and sweeps every minute
(:mod:`bot.core.generation.recovery`); tasks that were being polled are simply due again.

**Several processes** (design §9, one PostgreSQL database) each run a poller. A cycle
*claims* its due tasks with a lease (:meth:`~bot.core.ports.TaskStore.claim_due_tasks`),
so no task is polled twice in one round; the round's write ends the leases, and a dead
process's tasks are claimed by another when they run out. A process polls the tasks whose
chats it posts to first (it shows their progress) and others' once ``takeover_grace``
overdue; a finished task goes to the process posting to its chat (the deliverer hands it
over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from bot.core.clock import wait_event
from bot.core.errors import UpstreamError
from bot.core.generation.delivery import DELIVERIES, Deliverer
from bot.core.generation.progress import ProgressShown, StatusEditor
from bot.core.generation.records import Provider, Task, TaskStatus, TaskUpdate
from bot.core.generation.recovery import UNCERTAIN_AFTER_RESTART, Recovery
from bot.core.generation.rounds import batch_by_provider, poll_batches
from bot.core.generation.transitions import PollerConfig, TaskTransitions
from bot.core.models import Platform, StatusView, TaskSnapshot
from bot.core.ports import Clock, Handoff, Outbox, Refunds, TaskBackend, TaskStore, Telemetry
from bot.core.telemetry import NullTelemetry

__all__ = ["UNCERTAIN_AFTER_RESTART", "CycleStats", "PollerConfig", "TaskPoller"]

log = logging.getLogger(__name__)

LOST_REQUEST: Final = "This request was lost on its way. Please try again."
ERROR_BACKOFF: Final = 5.0
EMPTY_ROUND_PAUSE: Final = 1.0


@dataclass(slots=True)
class CycleStats:
    """What one cycle did (tests, benchmarks and the telemetry port read it)."""

    tasks: int = 0
    requests: int = 0
    edits: int = 0
    saturated: bool = False


class TaskPoller:
    """See the module docstring. ``async with poller:`` recovers, then runs the loop.

    ``clock`` drives sleeping (virtual in tests); ``wall`` is Unix time, the store's clock,
    used for ``next_poll_at`` and deadlines since they must survive a restart. ``name``
    marks this process's leases and claimed parts; ``shared`` says other processes use the
    store too (``handoff`` then reaches them).
    """

    def __init__(
        self,
        *,
        store: TaskStore,
        backend: TaskBackend,
        outboxes: Mapping[Platform, Outbox],
        config: PollerConfig,
        clock: Clock,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        telemetry: Telemetry | None = None,
        refunds: Refunds | None = None,
        delivery_concurrency: int = DELIVERIES,
        name: str = "local",
        shared: bool = False,
        handoff: Handoff | None = None,
        live: Callable[[], Awaitable[Collection[str]]] | None = None,
    ) -> None:
        self._store = store
        self._outboxes = outboxes
        self._name = name
        self._shared = shared
        self._backend = backend
        self._config = config
        self._clock = clock
        self._wall = wall
        self._transitions = TaskTransitions(config, rng or random.Random())
        self._telemetry = telemetry or NullTelemetry()
        self._refunds = refunds
        self._unpaid: list[Task] = []  # polled tasks that failed or expired this cycle
        self.editor = StatusEditor(outboxes)
        self.deliverer = Deliverer(
            store=store,
            backend=backend,
            outboxes=outboxes,
            editor=self.editor,
            clock=clock,
            concurrency=delivery_concurrency,
            refunds=refunds,
            telemetry=self._telemetry,
            name=name,
            handoff=handoff,
        )
        self.recovery = Recovery(
            store,
            self.deliverer,
            name=name,
            shared=shared,
            live=live,
            clock=clock,
            wall=wall,
        )
        self._progress = ProgressShown(self.editor, config.progress_edit_interval)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._started_at = wall()

    @property
    def config(self) -> PollerConfig:
        return self._config

    @property
    def name(self) -> str:
        """This process's name on its leases and submits."""
        return self._name

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> TaskPoller:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Resolve what a previous process left, then start polling."""
        self._started_at = self._wall()
        self._stop.clear()
        if not self._shared:
            # The only process: any lease is a previous run's, cut short.
            await self._store.release_leases(None)
        await self.recover()
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._run())
        self._sweeper = loop.create_task(self.recovery.run(self._stop))

    async def stop(self) -> None:
        """Stop polling; deliveries in flight finish their current step. Rows stay."""
        self._stop.set()
        for task in (self._loop_task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop_task = self._sweeper = None
        await self.deliverer.close()
        await self.editor.close()
        try:  # a round cut short: its tasks are free at once, not when the leases run out
            await self._store.release_leases(self._name)
        except Exception:
            log.exception("task poller: could not release this process's leases")

    def wake(self) -> None:
        """A task became due (a new submit): look at the store now."""
        self._wake.set()

    def deliver(self, task_id: int, *, announce: bool = True) -> None:
        """Deliver a task that finished outside the poller (e.g. a refused submit), or that
        another process handed over (``announce=False``: if it is not ours either, it is
        not handed on again)."""
        self._progress.forget(task_id)
        self.deliverer.schedule(task_id, announce=announce)

    def show(self, task: Task, view: StatusView) -> None:
        """Show a status view now (the use cases' first "submitted" view)."""
        self._progress.show(task, view, self._wall())

    async def recover(self) -> None:
        """Fail rows left ``pending`` by a previous process; deliver undelivered tasks."""
        await self.recovery.at_start(self._started_at)

    async def sweep(self) -> None:
        """Deliver every finished, undelivered task this process posts to."""
        await self.recovery.sweep()

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                stats = await self.run_cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task poller: a cycle failed; trying again in %.0f s", ERROR_BACKOFF)
                await wait_event(self._stop, ERROR_BACKOFF, self._clock)
                continue
            if stats.saturated:
                await asyncio.sleep(0)  # more is due right now: next cycle at once
                continue
            try:
                next_due = await self._store.next_due_at(
                    self._routes(), self._config.takeover_grace
                )
            except Exception:
                log.exception("task poller: cannot read the next due time")
                next_due = self._wall() + ERROR_BACKOFF
            delay = None if next_due is None else max(0.0, next_due - self._wall())
            if self._shared:
                # Other processes add tasks (and die holding some) without waking this one:
                # look again at least every max_interval, one small query.
                cap = self._config.max_interval
                delay = cap if delay is None else min(delay, cap)
                if stats.tasks == 0 and delay <= 0:
                    # Due, yet nothing to claim: another process took it this moment.
                    delay = EMPTY_ROUND_PAUSE
            await self._sleep(delay)

    async def _sleep(self, delay: float | None) -> None:
        """Until ``delay`` passes, a wake-up, or stop (whichever comes first)."""
        if self._wake.is_set() or self._stop.is_set():
            return
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._stop.wait()),
        ]
        if delay is not None:
            waiters.append(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run_cycle(self) -> CycleStats:
        """Poll everything due now (within the batch window); one store write."""
        started = time.perf_counter()
        config = self._config
        now = self._wall()
        stats = CycleStats()
        limit = sum(self._backend.batch_limit(p) for p in Provider) * config.max_requests
        due = await self._store.claim_due_tasks(
            self._name,
            due_before=now + config.batch_window,
            lease=config.lease,
            limit=limit,
            routes=self._routes(),
            grace=config.takeover_grace,
        )
        if not due:
            return stats
        batches = batch_by_provider(due, self._backend.batch_limit)
        if len(batches) > config.max_requests:
            unpolled = [t.id for _, tasks in batches[config.max_requests :] for t in tasks]
            batches = batches[: config.max_requests]
            stats.saturated = True
            await self._store.release_tasks(self._name, unpolled)  # due first next cycle
        elif len(due) >= limit:
            stats.saturated = True
        answers = await poll_batches(self._backend, batches)
        now = self._wall()
        updates: list[TaskUpdate] = []
        finished: list[Task] = []
        transitions = self._transitions
        for task in due:
            if task.upstream_id is None:  # cannot be polled (never happens by design): end it
                update = transitions.end(task, TaskStatus.FAILED, error=LOST_REQUEST)
                updates.append(self._track(task, update, finished))
        for (provider, tasks), answer in zip(batches, answers, strict=True):
            stats.requests += 1
            stats.tasks += len(tasks)
            if isinstance(answer, UpstreamError):
                log.warning("poll %s (%d task(s)) failed: %s", provider.value, len(tasks), answer)
                for task in tasks:
                    update = transitions.retry(task, now, answer.retry_after)
                    updates.append(self._track(task, update, finished))
                continue
            by_id = {snap.upstream_id: snap for snap in answer}
            for task in tasks:
                snap = by_id.get(task.upstream_id or "")
                if snap is None:  # not (yet) known upstream: keep looking, with backoff
                    update = transitions.retry(task, now)
                else:
                    update = transitions.apply(task, snap, now)
                    if not _ends(update):
                        self._maybe_show(task, update, snap, now, stats)
                updates.append(self._track(task, update, finished))
        await self._store.update_tasks(updates, release=True)
        await self._refund_failures()
        for task in finished:
            self.deliver(task.id)
        self._telemetry.poll_cycle(time.perf_counter() - started, stats.requests)
        return stats

    async def _refund_failures(self) -> None:
        """A task that failed or expired upstream gave the user nothing: give the quota back.
        Once per task: the row is terminal now and never polled again."""
        unpaid, self._unpaid = self._unpaid, []
        if self._refunds is None:
            return
        for task in unpaid:
            try:
                await self._refunds.refund_task(task)
            except Exception:
                log.exception("task %s: quota refund failed", task.id)

    def _routes(self) -> set[str] | None:
        """The routes this process posts to, when other processes share the work."""
        if not self._shared:
            return None  # one process: every task is its own
        return {route for outbox in self._outboxes.values() for route in outbox.routes()}

    # -- per task -------------------------------------------------------------------------------

    def _track(self, task: Task, update: TaskUpdate, finished: list[Task]) -> TaskUpdate:
        """Count a status change; an ended task goes to ``finished`` (to be delivered) and,
        if it failed or expired upstream, to this cycle's refunds."""
        status = update.status
        if isinstance(status, TaskStatus) and status is not task.status:
            self._telemetry.task_state(task.provider.value, status.value)
        if _ends(update):
            finished.append(task)
            if status in (TaskStatus.FAILED, TaskStatus.EXPIRED):
                self._unpaid.append(task)
            self._progress.forget(task.id)
        return update

    def _maybe_show(
        self, task: Task, update: TaskUpdate, snap: TaskSnapshot, now: float, stats: CycleStats
    ) -> None:
        status = update.status if isinstance(update.status, TaskStatus) else task.status
        if self._progress.update(task, status, snap, now):
            stats.edits += 1


def _ends(update: TaskUpdate) -> bool:
    return isinstance(update.status, TaskStatus) and update.status.is_terminal
