"""The process registry (design §9) on both backends, and the heartbeat that keeps this
process's row: registered at start, renewed on time and at once when the roles change,
removed on a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from bot.core.presence import STALE_AFTER, Presence
from bot.core.roles import DISCORD, POLLER, TELEGRAM, ProcessInfo, Roles
from bot.ops.wiring import process_name
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.test_limits import NOON


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(start=NOON)


@pytest.fixture
async def store(wall: FakeClock, store_location: str) -> AsyncIterator[Store]:
    async with Store.open(store_location, clock=wall) as store:
        yield store


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the heartbeat task finish its store round-trip (real I/O on PostgreSQL)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never: {what}")


async def names(store: Store) -> list[str]:
    return [p.name for p in await store.live_processes(STALE_AFTER)]


# -- the store -----------------------------------------------------------------------------------


async def test_register_list_renew_and_forget(store: Store, wall: FakeClock) -> None:
    await store.register_process("h:1", started_at=NOON - 60, roles=["poller", "telegram"])
    await wall.advance(3)
    await store.register_process("h:2", started_at=NOON + 3, roles=["discord:0,1", "poller"])
    assert await store.live_processes(15.0) == [
        ProcessInfo("h:1", NOON - 60, NOON, ("poller", "telegram")),
        ProcessInfo("h:2", NOON + 3, NOON + 3, ("discord:0,1", "poller")),
    ]
    await wall.advance(13)  # h:1 was last seen 16 s ago: gone (it died without a word)
    assert [p.name for p in await store.live_processes(15.0)] == ["h:2"]
    await store.register_process("h:1", started_at=NOON - 60, roles=[])  # a heartbeat
    renewed = {p.name: p for p in await store.live_processes(15.0)}["h:1"]
    assert (renewed.seen_at, renewed.roles) == (NOON + 16, ())
    await store.forget_process("h:2")
    await store.forget_process("nobody")
    assert [p.name for p in await store.live_processes(15.0)] == ["h:1"]


async def test_rows_of_processes_silent_for_a_day_are_deleted(
    store: Store, wall: FakeClock
) -> None:
    await store.register_process("h:dead", started_at=NOON, roles=[])
    await wall.advance(86_401)
    await store.register_process("h:new", started_at=NOON + 86_401, roles=[])
    assert [p.name for p in await store.live_processes(10 * 86_400.0)] == ["h:new"]


async def test_a_role_label_never_holds_a_space(store: Store) -> None:
    with pytest.raises(ValueError, match="no space"):
        await store.register_process("h:1", started_at=NOON, roles=["poller", "a b"])
    assert await store.live_processes(15.0) == []


# -- the heartbeat -------------------------------------------------------------------------------


async def test_presence_beats_follows_the_roles_and_forgets_on_stop(
    store: Store, wall: FakeClock
) -> None:
    clock = FakeClock()
    roles = Roles()
    roles.gain(POLLER)
    presence = Presence(store, roles, name="host:7", clock=clock, wall=wall, interval=5.0)
    async with presence:
        [row] = await store.live_processes(STALE_AFTER)
        assert (row.name, row.started_at, row.roles) == ("host:7", NOON, ("poller",))
        await wall.advance(STALE_AFTER + 1)
        assert await names(store) == []  # without its heartbeat the row is stale
        await clock.advance(5.0)
        await until(lambda: presence.beats == 2, "the heartbeat after 5 s")
        [row] = await store.live_processes(STALE_AFTER)
        assert row.seen_at == NOON + STALE_AFTER + 1
        # A change of roles is written at once, not at the next heartbeat.
        roles.gain(TELEGRAM)
        roles.gain(DISCORD, "0,1")
        await until(lambda: presence.beats == 3, "a heartbeat for the new roles")
        [row] = await store.live_processes(STALE_AFTER)
        assert row.roles == ("discord:0,1", "poller", "telegram")
    assert await names(store) == []  # a clean stop leaves no row


class FlakyRegistry:
    """A registry whose first writes fail, like a database that is briefly away."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: dict[str, tuple[str, ...]] = {}

    async def register_process(self, name: str, *, started_at: float, roles: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database away")
        self.rows[name] = tuple(roles)

    async def live_processes(self, stale_after: float) -> list[ProcessInfo]:
        return []

    async def forget_process(self, name: str) -> None:
        if self.failures:
            raise ConnectionError("database away")
        self.rows.pop(name, None)


async def test_a_failed_heartbeat_is_tried_again_and_never_stops_the_process() -> None:
    clock = FakeClock()
    registry = FlakyRegistry(failures=2)
    roles = Roles()
    presence = Presence(registry, roles, name="host:8", clock=clock, interval=5.0)
    async with presence:  # the first registration fails: start still succeeds
        assert registry.rows == {}
        await clock.advance(5.0)  # fails again
        assert registry.rows == {}
        await clock.advance(5.0)
        assert registry.rows == {"host:8": ()}
        registry.failures = 1  # the row cannot be removed: it goes stale instead
    assert registry.rows == {"host:8": ()}
    assert presence.beats == 1


def test_the_process_name_is_host_and_pid() -> None:
    import os
    import socket

    assert process_name() == f"{socket.gethostname()}:{os.getpid()}"
