"""The process runtime: the event loop the service runs on and the settled heap."""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

from bot.ops.runtime import YOUNG_THRESHOLD, loop_name, run, settle_heap


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build")
def test_run_uses_uvloop_where_installed() -> None:
    # uvloop is a dependency off Windows: the service must really run on it.
    assert loop_name() == "uvloop"
    assert run(_loop_module()).startswith("uvloop")


def test_run_returns_the_result_and_raises_the_error() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert run(answer()) == 42
    with pytest.raises(ValueError, match="boom"):
        run(fails())


def test_settle_heap_freezes_what_is_alive_and_collects_garbage_first() -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle nobody holds: garbage for the collector
    del a, b
    kept = Node()
    thresholds = gc.get_threshold()
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        young = gc.get_threshold()[0]
        left = [o for o in gc.get_objects(generation=None) if type(o) is Node]
    finally:
        gc.unfreeze()  # give the test process its collector back
        gc.set_threshold(*thresholds)
    assert frozen > 0
    assert young == YOUNG_THRESHOLD
    assert all(o is kept for o in left)  # the cycle was collected before the freeze
