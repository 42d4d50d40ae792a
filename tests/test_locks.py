"""KeyedLocks: one holder per key, keys independent, and no lock kept for an idle key."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.locks import KeyedLocks


async def test_one_holder_per_key_in_arrival_order() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(hold("a", "first"), hold("a", "second"), hold("a", "third"))
    assert order == ["first in", "first out", "second in", "second out", "third in", "third out"]


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks = KeyedLocks()
    inside = asyncio.Event()

    async with locks.hold("a"):
        async with asyncio.timeout(1):
            async with locks.hold("b"):
                inside.set()
    assert inside.is_set()


async def test_a_key_is_forgotten_once_nobody_holds_or_waits() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("a"):
            await release.wait()

    first = asyncio.create_task(holder())
    second = asyncio.create_task(holder())
    await asyncio.sleep(0)
    assert list(locks._locks) == ["a"]
    release.set()
    await asyncio.gather(first, second)
    assert not locks._locks


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        waiter = asyncio.create_task(_enter(locks, "a"))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert locks._locks["a"][1] == 1  # only this holder is left
    assert not locks._locks
    async with asyncio.timeout(1), locks.hold("a"):
        pass  # the lock is free: the cancelled waiter did not keep it


async def test_an_error_inside_releases_the_key() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("a"):
            raise RuntimeError("boom")
    assert not locks._locks


async def _enter(locks: KeyedLocks, key: str) -> None:
    async with locks.hold(key):
        pass
