"""Processes sharing a PostgreSQL database: the handoff notification, the role lock, and the
role keeper that takes over (design §9)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bot.core.roles import TELEGRAM, RoleKeeper, Roles
from bot.store import Store
from bot.store.coordination import LocalCoordination
from tests.fakes.clock import FakeClock


async def test_a_ready_task_is_heard_by_the_other_process(postgres_url: str) -> None:
    async with Store.open(postgres_url) as a, Store.open(postgres_url) as b:
        heard: asyncio.Queue[int] = asyncio.Queue()
        async with b.coordination().listen(heard.put_nowait):
            await asyncio.sleep(0.3)  # the listener connects
            await a.coordination().task_ready(42)
            assert await asyncio.wait_for(heard.get(), 5) == 42


async def test_the_role_lock_has_one_holder_and_passes_on_when_its_session_ends(
    postgres_url: str,
) -> None:
    async with Store.open(postgres_url) as store:
        first = store.coordination().role_lock(TELEGRAM)
        second = store.coordination().role_lock(TELEGRAM)
        assert await first.acquire()
        assert not await second.acquire()
        # The holder's session is killed (its process died, or the network was cut).
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'cometbot-role' AND pid <> pg_backend_pid()"
                " AND state IS NOT NULL AND pid IN (SELECT pid FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted)"
            )
        finally:
            await admin.close()
        await asyncio.wait_for(first.wait_lost(), 10)
        assert await second.acquire()
        await first.release()
        await second.release()


async def test_one_process_holds_every_role() -> None:
    lock = LocalCoordination().role_lock(TELEGRAM)
    assert await lock.acquire()
    assert await LocalCoordination().role_lock(TELEGRAM).acquire()


class ScriptedLock:
    """A lock that is free after ``busy`` tries and lost when ``lose`` is set."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.tries = 0
        self.lose = asyncio.Event()
        self.released = 0

    async def acquire(self) -> bool:
        self.tries += 1
        return self.tries > self.busy

    async def wait_lost(self) -> None:
        await self.lose.wait()

    async def release(self) -> None:
        self.released += 1


async def test_a_standby_takes_the_role_stops_when_it_is_lost_and_stands_by_again() -> None:
    clock = FakeClock()
    lock = ScriptedLock(busy=3)
    roles = Roles()
    events: list[str] = []

    async def start() -> None:
        events.append("start")

    async def stop() -> None:
        events.append("stop")

    keeper = RoleKeeper(TELEGRAM, lock, start=start, stop=stop, roles=roles, clock=clock, retry=2.0)
    stopping = asyncio.Event()
    run = asyncio.create_task(keeper.run(stopping))
    await clock.advance(5)  # tries at 0, 2 and 4 s find the lock held elsewhere
    assert lock.tries == 3 and events == [] and not roles.holds(TELEGRAM)
    await clock.advance(2)  # the holder is gone: the next try takes it
    assert lock.tries == 4 and events == ["start"] and roles.holds(TELEGRAM)
    lock.lose.set()
    await clock.advance(0.1)
    assert events == ["start", "stop"] and not roles.holds(TELEGRAM)
    lock.lose = asyncio.Event()
    assert events == ["start", "stop"]  # stands by a while before it tries again
    await clock.advance(2.5)
    assert events == ["start", "stop", "start"]
    stopping.set()
    await run
    assert events[-1] == "stop" and lock.released >= 1


async def test_a_failed_start_lets_the_role_go() -> None:
    clock = FakeClock()
    lock = ScriptedLock(busy=0)
    roles = Roles()

    async def start() -> None:
        raise RuntimeError("Telegram is down")

    async def stop() -> None:
        raise AssertionError("never started")

    keeper = RoleKeeper(
        TELEGRAM, lock, start=start, stop=stop, roles=roles, clock=clock, failed_start_pause=30
    )
    stopping = asyncio.Event()
    run = asyncio.create_task(keeper.run(stopping))
    await clock.advance(1)
    assert lock.released == 1 and not roles.holds(TELEGRAM)
    await clock.advance(30)
    assert lock.tries == 2
    stopping.set()
    await run


@pytest.fixture(autouse=True)
def _quiet_asyncpg_termination(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="asyncpg")
