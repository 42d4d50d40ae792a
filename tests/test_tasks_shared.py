"""TaskPoller with other processes on the same database (design §9), on virtual time:
claims and their release, the preference for a process's own chats, and the handoff of a
finished task to the process that posts to its chat."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from bot.core.generation.poller import PollerConfig, TaskPoller
from bot.core.generation.records import NewTask, Provider, TaskStatus, TaskUpdate
from bot.core.models import ConversationKey, Platform, TaskSnapshot, UpstreamState
from tests.fakes.clock import FakeClock
from tests.fakes.task_store import MemoryTaskStore
from tests.fakes.tasks import FakeBackend, FakeOutbox, image_result

KEY = ConversationKey(Platform.DISCORD, "9")
T0 = 1000.0


class Handoffs:
    def __init__(self) -> None:
        self.ready: list[int] = []

    async def task_ready(self, task_id: int) -> None:
        self.ready.append(task_id)


@dataclasses.dataclass
class Rig:
    clock: FakeClock
    store: MemoryTaskStore
    backend: FakeBackend
    config: PollerConfig

    def poller(
        self, name: str, owned: set[str], handoff: Handoffs
    ) -> tuple[TaskPoller, FakeOutbox]:
        outbox = FakeOutbox(self.clock, owned=frozenset(owned))
        poller = TaskPoller(
            store=self.store,
            backend=self.backend,
            outboxes={Platform.DISCORD: outbox},
            config=self.config,
            clock=self.clock,
            wall=self.clock.now,
            name=name,
            shared=True,
            handoff=handoff,
        )
        return poller, outbox

    async def task(self, upstream: str, route: str, *, steps: int = 1) -> int:
        self.backend.add(
            upstream,
            [TaskSnapshot(upstream, UpstreamState.RUNNING, 50)] * (steps - 1)
            + [TaskSnapshot(upstream, UpstreamState.SUCCEEDED, 100, result=image_result())],
        )
        task_id = await self.store.create_task(
            NewTask(Provider.MIDJOURNEY, "imagine", "dc:1", KEY, {"prompt": "x"}, route=route)
        )
        await self.store.update_task(
            TaskUpdate(
                task_id,
                status=TaskStatus.SUBMITTED,
                upstream_id=upstream,
                deadline=T0 + 600,
                next_poll_at=self.clock.now() + 2,
            )
        )
        return task_id


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock(start=T0)
    config = PollerConfig(
        first_interval=2.0,
        max_interval=10.0,
        jitter=0.0,
        batch_window=0.0,
        lease=30.0,
        takeover_grace=10.0,
    )
    async with clock.auto():
        yield Rig(clock, MemoryTaskStore(clock), FakeBackend(clock), config)


def polled_at(rig: Rig, upstream: str) -> list[float]:
    return [t - T0 for _, ids, t in rig.backend.polls if upstream in ids]


async def test_a_finished_task_is_handed_to_the_process_posting_to_its_chat(rig: Rig) -> None:
    handoffs = Handoffs()
    poller, outbox = rig.poller("B", {"dc:1"}, handoffs)
    task_id = await rig.task("u1", "dc:0")
    async with poller:
        await rig.clock.sleep(20)  # overdue past the grace: B polls it, as nobody else did
        assert rig.store.tasks[task_id].status is TaskStatus.SUCCEEDED
        assert handoffs.ready == [task_id]
        assert outbox.posts == [] and rig.store.tasks[task_id].delivered_at is None
        # B hears its own notification (or a sweep finds the task): never handed on again.
        poller.deliver(task_id, announce=False)
        await rig.clock.sleep(1)
        assert handoffs.ready == [task_id] and outbox.posts == []
    owner, owner_outbox = rig.poller("A", {"dc:0"}, Handoffs())
    async with owner:  # the owner's start (or its listener) delivers it, once
        await rig.clock.sleep(1)
    assert len(owner_outbox.posts) == 1
    assert rig.store.tasks[task_id].delivered_at is not None
    assert rig.store.parts == {(task_id, "image"): owner_outbox.posts[0].id}


async def test_a_process_polls_its_own_chats_tasks_and_others_only_once_overdue(rig: Rig) -> None:
    poller, _ = rig.poller("B", {"dc:1"}, Handoffs())
    await rig.task("mine", "dc:1", steps=3)
    await rig.task("theirs", "dc:0", steps=3)
    async with poller:
        await rig.clock.sleep(30)
    assert polled_at(rig, "mine")[0] == 2  # on time
    assert polled_at(rig, "theirs")[0] >= 12  # left to its owner for the grace period


async def test_tasks_claimed_beyond_the_request_budget_are_given_back(rig: Rig) -> None:
    rig.config = dataclasses.replace(rig.config, max_requests=1)
    rig.backend.limits[Provider.MIDJOURNEY] = 1  # one task per request
    poller, _ = rig.poller("B", {"dc:1"}, Handoffs())
    first = await rig.task("a", "dc:1", steps=5)
    second = await rig.task("b", "dc:1", steps=5)
    async with poller:
        await rig.clock.sleep(2.5)
        # One request this round: "a" was polled and its lease ended with the round's
        # write; "b" was claimed but not polled, and was given back at once.
        assert polled_at(rig, "a") == [2] and polled_at(rig, "b") == [2]
    assert first not in rig.store.leases and second not in rig.store.leases


async def test_only_pending_submits_of_processes_that_are_gone_are_failed_at_start(
    rig: Rig,
) -> None:
    ids = {}
    for submitter in ("alive", "gone", "B", None):
        ids[submitter] = await rig.store.create_task(
            NewTask(Provider.MIDJOURNEY, "imagine", "dc:1", KEY, submitter=submitter)
        )
    await rig.clock.sleep(5)

    async def live() -> set[str]:
        return {"alive", "B"}  # "B" is this process's name: a previous run of it

    poller, _ = rig.poller("B", {"dc:1"}, Handoffs())
    poller.recovery._live = live  # the registry app.py passes
    async with poller:
        await rig.clock.sleep(1)
        status = {k: rig.store.tasks[v].status for k, v in ids.items()}
        # A live process's submit may be under way: left alone. An unknown submitter's
        # row waits for the grace period (the sweep fails it later).
        assert status == {
            "alive": TaskStatus.PENDING,
            "gone": TaskStatus.FAILED,
            "B": TaskStatus.FAILED,
            None: TaskStatus.PENDING,
        }


async def test_a_part_claimed_elsewhere_is_not_posted_and_the_status_says_so(rig: Rig) -> None:
    poller, outbox = rig.poller("B", {"dc:1"}, Handoffs())
    task_id = await rig.task("u1", "dc:1")
    await rig.store.update_task(TaskUpdate(task_id, status_message_id="7"))
    assert await rig.store.claim_part(task_id, "image", "A")  # A claimed it, then died
    async with poller:
        await rig.clock.sleep(5)
    assert outbox.posts == []
    assert rig.store.tasks[task_id].delivered_at is not None
    assert "a part may be missing" in outbox.edits[-1][1].text
