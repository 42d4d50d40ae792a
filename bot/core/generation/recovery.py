"""What the poller's start, and a sweep every minute, resolve (design §6, §9).

* **Submits cut short.** A row still ``pending`` was written before a paid submit whose
  outcome nobody recorded: its process died during the submit, so whether CometAPI
  accepted it is unknown. It is marked failed with a sentence saying so, never resubmitted
  (submits are paid). One process fails every such row at its start. With several
  processes, a row is only failed once the process that made the submit (its
  ``submitter``) is gone from the registry — a younger row of a live process is a submit
  under way — and a row of unknown submitter once ``PENDING_GRACE`` old.
* **Results not delivered.** Finished tasks not yet delivered are delivered (parts already
  posted are skipped), by the process that posts to their chat; the others leave them.
  The sweep catches what a lost handoff notification missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Final

from bot.core.clock import wait_event
from bot.core.generation.delivery import Deliverer
from bot.core.generation.records import Task, TaskStatus, TaskUpdate
from bot.core.ports import Clock, TaskStore

__all__ = ["PENDING_GRACE", "SWEEP_INTERVAL", "UNCERTAIN_AFTER_RESTART", "Recovery"]

log = logging.getLogger(__name__)

UNCERTAIN_AFTER_RESTART: Final = (
    "The bot restarted while sending this request, so I cannot tell whether it was "
    "accepted. To avoid paying twice I did not send it again; please try again if no "
    "result arrives."
)
SWEEP_INTERVAL: Final = 60.0
PENDING_GRACE: Final = 600.0
"""Longer than any submit can take (the client's timeout and retries)."""
_PAGE: Final = 500


class Recovery:
    """See the module docstring. ``name`` is this process's; ``live`` names the processes
    on the database now (with ``shared``: other processes use it too)."""

    def __init__(
        self,
        store: TaskStore,
        deliverer: Deliverer,
        *,
        name: str,
        shared: bool,
        live: Callable[[], Awaitable[Collection[str]]] | None,
        clock: Clock,
        wall: Callable[[], float],
    ) -> None:
        self._store = store
        self._deliverer = deliverer
        self._name = name
        self._shared = shared
        self._live = live
        self._clock = clock
        self._wall = wall

    async def at_start(self, started_at: float) -> None:
        await self._fail_interrupted(started_at, starting=True)
        await self.sweep()

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every ``SWEEP_INTERVAL`` until ``stop``."""
        while not await wait_event(stop, SWEEP_INTERVAL, self._clock):
            try:
                if self._shared:
                    await self._fail_interrupted(self._wall(), starting=False)
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task poller: the sweep failed")

    async def sweep(self) -> None:
        """Deliver every finished, undelivered task this process posts to (the others are
        left to their owners, not handed on)."""
        seen: set[int] = set()
        while True:
            page = [t for t in await self._store.undelivered_tasks(limit=_PAGE) if t.id not in seen]
            if not page:
                break
            for task in page:
                seen.add(task.id)
                if self._deliverer.owns(task):
                    self._deliverer.schedule(task.id, announce=False)
            if len(page) < _PAGE:
                break

    async def _fail_interrupted(self, before: float, *, starting: bool) -> None:
        """Fail ``pending`` rows created before ``before`` whose submit was cut short. At
        the start this process's own name counts as gone (a row with it is a previous
        run's); later it is alive (its submits are under way)."""
        alive: set[str] = set()
        if self._shared and self._live is not None:
            alive = set(await self._live())
            (alive.discard if starting else alive.add)(self._name)
        while True:
            page = await self._store.pending_tasks(created_before=before, limit=_PAGE)
            pending = [t for t in page if self._interrupted(t, alive, before)]
            if not pending:
                return
            await self._store.update_tasks(
                TaskUpdate(
                    t.id,
                    status=TaskStatus.FAILED,
                    error=UNCERTAIN_AFTER_RESTART,
                    next_poll_at=None,
                )
                for t in pending
            )
            log.warning("%d task(s) were mid-submit at the last stop; marked failed", len(pending))

    def _interrupted(self, task: Task, alive: set[str], before: float) -> bool:
        if not self._shared:
            return True  # the only process, and it just started: every pending row is old
        if task.lease_owner is not None and self._live is not None:
            return task.lease_owner not in alive
        return task.created_at < before - PENDING_GRACE
