"""The process's event loop and heap: uvloop where it is installed, and a frozen start-up heap.

Both cut the CPU a busy bot spends outside its own code (see docs/benchmarks.md, "Streaming"):

- uvloop runs the event loop, sockets and timers in C. python-telegram-bot, discord.py,
  aiohttp and aiosqlite all run on it unchanged. It is a dependency on Linux and macOS; where it
  is missing (Windows) the standard loop is used.
- ``settle_heap`` moves everything alive once the service has started (modules, the libraries'
  classes, the configuration) out of the cyclic garbage collector's view, so its periodic full
  collections walk only what the running service allocated since; and it lets the youngest
  generation grow to ``YOUNG_THRESHOLD`` allocations before a collection, instead of 700. A
  streaming bot allocates a few container objects per token (JSON dicts, deltas), nearly all
  freed by reference counting at once; collecting every 700 allocations walked the replies in
  flight again and again for almost no garbage.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

YOUNG_THRESHOLD = 10_000
"""Allocations (minus deallocations) of container objects between young collections."""


def loop_name() -> str:
    """``"uvloop"`` when it is installed (and so used by :func:`run`), else ``"asyncio"``."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def settle_heap() -> None:
    """Collect start-up garbage once, then freeze what is left (``gc.freeze``), and collect
    the youngest generation every ``YOUNG_THRESHOLD`` allocations.

    Frozen objects are never collected; that is right for what lives as long as the process.
    Call it once the service is up, not per request.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    log.debug("heap settled: %d objects frozen", gc.get_freeze_count())
