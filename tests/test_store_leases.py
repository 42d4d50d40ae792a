"""Tasks and result parts shared between processes (design §9), on both backends.

Two processes are two :class:`Store` instances on one database: for PostgreSQL two pools,
for SQLite two connections to one file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bot.core.models import ConversationKey, Platform
from bot.store import NewTask, Provider, Store, TaskStatus, TaskUpdate
from tests.fakes.clock import FakeClock

T0 = 1_700_000_000.0
KEY = ConversationKey(Platform.TELEGRAM, "5")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@contextlib.asynccontextmanager
async def two_stores(location: str, clock: FakeClock) -> AsyncIterator[tuple[Store, Store]]:
    async with Store.open(location, clock=clock) as a, Store.open(location, clock=clock) as b:
        yield a, b


async def _due(store: Store, count: int, *, route: str | None = None, at: float = T0) -> list[int]:
    ids = []
    for _ in range(count):
        task_id = await store.create_task(
            NewTask(Provider.MIDJOURNEY, "imagine", "tg:1", KEY, route=route)
        )
        await store.update_task(
            TaskUpdate(
                task_id, status=TaskStatus.RUNNING, upstream_id=f"u{task_id}", next_poll_at=at
            )
        )
        ids.append(task_id)
    return ids


async def test_a_claimed_task_is_no_one_elses_until_its_lease_ends(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        ids = await _due(a, 3)
        claimed = await a.claim_due_tasks("A", due_before=T0, lease=30, limit=10)
        assert [t.id for t in claimed] == ids
        assert await b.claim_due_tasks("B", due_before=T0 + 20, lease=30, limit=10) == []
        # A died without writing: its leases run out, and B takes the tasks.
        await clock.advance(31)
        taken = await b.claim_due_tasks("B", due_before=T0 + 31, lease=30, limit=10)
        assert [t.id for t in taken] == ids


async def test_the_write_after_a_round_ends_the_leases(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        (task_id,) = await _due(a, 1)
        await a.claim_due_tasks("A", due_before=T0, lease=30, limit=10)
        # Leased: not due for anyone before the lease ends (a poller does not spin on it).
        assert await b.next_due_at() == pytest.approx(T0 + 30)
        await a.update_tasks([TaskUpdate(task_id, attempts=1, next_poll_at=T0 + 5)], release=True)
        assert await b.next_due_at() == pytest.approx(T0 + 5)
        await clock.advance(5)
        assert [
            t.id for t in await b.claim_due_tasks("B", due_before=T0 + 5, lease=30, limit=5)
        ] == [task_id]


async def test_unpolled_claims_are_given_back(durable_location: str, clock: FakeClock) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        ids = await _due(a, 4)
        await a.claim_due_tasks("A", due_before=T0, lease=30, limit=10)
        assert await b.release_tasks("B", ids) == 0  # not B's to give back
        assert await a.release_tasks("A", ids[2:]) == 2
        taken = await b.claim_due_tasks("B", due_before=T0, lease=30, limit=10)
        assert [t.id for t in taken] == ids[2:]


async def test_a_process_takes_other_chats_tasks_only_when_overdue(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        mine = await _due(a, 2, route="dc:1")
        theirs = await _due(a, 2, route="tg")
        anyones = await _due(a, 1, route=None)
        got = await b.claim_due_tasks(
            "B", due_before=T0, lease=30, limit=10, routes={"dc:1"}, grace=10
        )
        assert sorted(t.id for t in got) == sorted(mine + anyones)
        await clock.advance(11)  # Telegram's process has not polled them: they are overdue now
        got = await b.claim_due_tasks(
            "B", due_before=T0 + 11, lease=30, limit=10, routes={"dc:1"}, grace=10
        )
        assert sorted(t.id for t in got) == theirs


async def test_concurrent_claims_never_share_a_task(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        ids = await _due(a, 300)
        rounds = await asyncio.gather(
            *(
                store.claim_due_tasks(name, due_before=T0, lease=30, limit=40)
                for _ in range(5)
                for name, store in (("A", a), ("B", b))
            )
        )
        claimed = [t.id for tasks in rounds for t in tasks]
        assert len(claimed) == len(set(claimed)) == 300
        assert sorted(claimed) == ids


async def test_a_result_part_is_claimed_once(durable_location: str, clock: FakeClock) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        (task_id,) = await _due(a, 1)
        assert await a.claim_part(task_id, "image", "A")
        assert not await b.claim_part(task_id, "image", "B")
        assert await b.claim_part(task_id, "notice", "B")  # another part is another key
        # The platform refused it: nothing went out, so it may be claimed again.
        await a.release_part(task_id, "image")
        assert await b.claim_part(task_id, "image", "B")
        await b.part_posted(task_id, "image", "77")
        await b.release_part(task_id, "image")  # posted parts stay claimed
        assert not await a.claim_part(task_id, "image", "A")


async def test_a_stopping_process_gives_back_its_leases(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, b):
        ids = await _due(a, 3)
        await a.claim_due_tasks("A", due_before=T0, lease=30, limit=2)
        await b.claim_due_tasks("B", due_before=T0, lease=30, limit=2)
        assert await a.release_leases("A") == 2
        assert [
            t.id for t in await b.claim_due_tasks("C", due_before=T0, lease=30, limit=5)
        ] == ids[:2]
        assert await a.release_leases(None) == 3  # a lone process starting: all are stale


async def test_another_chats_task_is_due_here_only_after_the_grace(
    durable_location: str, clock: FakeClock
) -> None:
    async with two_stores(durable_location, clock) as (a, _):
        await _due(a, 1, route="tg", at=T0 + 5)
        await _due(a, 1, route="dc:1", at=T0 + 8)
        assert await a.next_due_at() == pytest.approx(T0 + 5)
        assert await a.next_due_at({"dc:1"}, 10) == pytest.approx(T0 + 8)
        assert await a.next_due_at({"dc:0"}, 10) == pytest.approx(T0 + 15)
