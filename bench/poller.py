"""Benchmark: the task poller with 10,000 Midjourney tasks in flight.

Run with ``python -m bench.poller`` (``--help`` for sizes). The fake CometAPI runs in a child
process with ``--tasks`` Midjourney tasks already rendering (they advance one step per
observation and stay in progress for ``--steps`` observations), so this process runs only
the bot's side: the real :class:`~bot.core.generation.poller.TaskPoller`, the real
:class:`~bot.adapters.task_backend.CometTaskBackend` over the real SDK client (HTTP over loopback),
and the real SQLite :class:`~bot.store.Store` on a WAL file. The outbox is a no-op that
counts the status edits it is asked for (platforms are measured by ``bench.streaming``).

Two scenarios, each measured per poll cycle (``TaskPoller.run_cycle``):

- **cold**: every task is due at once (a restart after an outage, the worst case), the
  cycle repeated ``--cold-cycles`` times;
- **steady**: the poller's own loop runs for ``--seconds`` with the production schedule
  (first poll after 3 s, growing to 15 s, 10 % jitter, 1 s batch window).

Per cycle: HTTP requests to CometAPI (counted at the transport, retries included), CPU time
of this process (``time.process_time``: every thread, so the aiosqlite thread's SQL too),
store write transactions, tasks polled and status edits requested. Targets: at most 100
requests and 0.5 s CPU per cycle. Prints a table and one ``BENCH {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot.adapters.task_backend import CometTaskBackend
from bot.core.clock import SystemClock
from bot.core.generation.poller import CycleStats, PollerConfig, TaskPoller
from bot.core.generation.records import Provider, TaskStatus, TaskUpdate
from bot.core.models import (
    ConversationKey,
    MediaLimits,
    OutgoingMessage,
    Platform,
    StatusView,
)
from bot.ops import runtime
from bot.providers.cometapi import CometAPI
from bot.store import Store

T = TypeVar("T")
TARGET_REQUESTS = 100
TARGET_CPU_SECONDS = 0.5


# -- the fake CometAPI, in a child process ----------------------------------------------------


def _serve(conn: Connection, count: int, steps: int) -> None:
    asyncio.run(_serve_async(conn, count, steps))


async def _serve_async(conn: Connection, count: int, steps: int) -> None:
    from tests.fakes.cometapi import FakeCometAPI

    async with FakeCometAPI(task_steps=steps) as comet:
        ids = [comet.add_task("mj", "IMAGINE", {"prompt": f"bench {n}"}) for n in range(count)]
        conn.send({"base_url": comet.base_url, "api_key": comet.api_key, "ids": ids})
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until "stop"


# -- the bot's side ---------------------------------------------------------------------------


class CountingTransport(httpx.AsyncHTTPTransport):
    """Counts the HTTP requests that really go out (retries included)."""

    def __init__(self) -> None:
        super().__init__(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


class NullOutbox:
    """An outbox that only counts: the platforms are not what this benchmark measures."""

    limits = MediaLimits(10 * 1024 * 1024, 50 * 1024 * 1024)

    def __init__(self) -> None:
        self.edits = 0
        self.posts = 0

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        return await call()

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        self.posts += 1
        return str(self.posts)

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        self.edits += 1


class CountingStore(Store):
    """The real store, counting the poller's write transactions."""

    writes = 0

    async def update_tasks(self, updates: Iterable[TaskUpdate], *, release: bool = False) -> int:
        type(self).writes += 1
        return await super().update_tasks(updates, release=release)


@dataclass
class Cycle:
    tasks: int
    requests: int
    cpu: float
    wall: float
    writes: int
    edits: int


@dataclass
class Measured:
    cycles: list[Cycle] = field(default_factory=list)


class MeasuredPoller(TaskPoller):
    """The real poller, timing each cycle (CPU of the whole process, requests, writes)."""

    def __init__(self, *, transport: CountingTransport, outbox: NullOutbox, **kw: Any) -> None:
        super().__init__(**kw)
        self.transport = transport
        self.outbox = outbox
        self.measured = Measured()

    async def run_cycle(self) -> CycleStats:
        requests, writes = self.transport.requests, CountingStore.writes
        cpu, wall = time.process_time(), time.perf_counter()
        stats = await super().run_cycle()
        await asyncio.sleep(0)  # let the editor workers pick up this cycle's edits
        if stats.tasks:
            self.measured.cycles.append(
                Cycle(
                    tasks=stats.tasks,
                    requests=self.transport.requests - requests,
                    cpu=time.process_time() - cpu,
                    wall=time.perf_counter() - wall,
                    writes=CountingStore.writes - writes,
                    edits=stats.edits,
                )
            )
        return stats


async def _populate(store: Store, ids: list[str], key: ConversationKey) -> None:
    """One SUBMITTED row per upstream task, all due now (bulk insert in one transaction)."""
    now = time.time()
    async with store._transaction() as db:  # the bench's own shortcut for 10,000 inserts
        await db.executemany(
            "INSERT INTO tasks (provider, kind, owner_id, conversation, request, status,"
            " upstream_id, status_message_id, reply_to_id, deadline, next_poll_at,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    Provider.MIDJOURNEY.value,
                    "imagine",
                    f"tg:{n % 500}",
                    str(ConversationKey(key.platform, str(100_000 + n % 500))),
                    json.dumps({"prompt": f"bench {n}"}),
                    TaskStatus.SUBMITTED.value,
                    upstream,
                    str(n + 1),
                    None,
                    now + 3600,
                    now,
                    now,
                    now,
                )
                for n, upstream in enumerate(ids)
            ],
        )


def _summary(cycles: list[Cycle]) -> dict[str, Any]:
    if not cycles:
        return {"cycles": 0}
    cpu = [c.cpu for c in cycles]
    return {
        "cycles": len(cycles),
        "tasks_max": max(c.tasks for c in cycles),
        "tasks_p50": statistics.median(c.tasks for c in cycles),
        "requests_max": max(c.requests for c in cycles),
        "requests_p50": statistics.median(c.requests for c in cycles),
        "cpu_max_s": round(max(cpu), 4),
        "cpu_p50_s": round(statistics.median(cpu), 4),
        "wall_max_s": round(max(c.wall for c in cycles), 4),
        "writes_max": max(c.writes for c in cycles),
        "edits_max": max(c.edits for c in cycles),
        "cpu_per_1000_tasks_s": round(sum(cpu) / sum(c.tasks for c in cycles) * 1000, 4),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, args.tasks, args.steps), daemon=True)
    proc.start()
    try:
        hello: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        with tempfile.TemporaryDirectory() as folder:
            return await _measure(args, hello, Path(folder) / "bench.sqlite3")
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.kill()


async def _measure(args: argparse.Namespace, hello: dict[str, Any], path: Path) -> dict[str, Any]:
    transport = CountingTransport()
    outbox = NullOutbox()
    async with (
        CountingStore.open(path) as store,
        CometAPI(api_key=hello["api_key"], base_url=hello["base_url"], transport=transport) as api,
    ):
        assert isinstance(store, CountingStore)
        await _populate(store, hello["ids"], ConversationKey(Platform.TELEGRAM, "1"))
        runtime.settle_heap()  # as run_service does once the service is up
        poller = MeasuredPoller(
            transport=transport,
            outbox=outbox,
            store=store,
            backend=CometTaskBackend(api),
            outboxes={Platform.TELEGRAM: outbox},
            config=PollerConfig(),  # the production defaults
            clock=SystemClock(),
        )
        # cold: everything due at once, again and again
        for _ in range(args.cold_cycles):
            await store._write("UPDATE tasks SET next_poll_at = ?", (time.time(),))
            await poller.run_cycle()
        cold = list(poller.measured.cycles)
        # steady: the poller's own loop with the production schedule
        poller.measured = Measured()
        await store._write("UPDATE tasks SET next_poll_at = ?", (time.time(),))
        async with poller:
            await asyncio.sleep(args.seconds)
        steady = poller.measured.cycles
        in_flight = await store._fetchone(
            "SELECT count(*) FROM tasks WHERE status IN ('submitted', 'running')"
        )
    return {
        "cold": _summary(cold),
        "steady": _summary(steady),
        "in_flight_at_end": int(in_flight[0]) if in_flight else 0,
        "steady_requests_per_s": round(
            sum(c.requests for c in steady) / max(args.seconds, 1e-9), 1
        ),
    }


def _table(result: dict[str, Any]) -> str:
    rows = [
        ("scenario", "cycles", "tasks max", "req max", "req p50", "CPU max s", "CPU p50 s",
         "wall max s", "writes max", "edits max"),
    ]  # fmt: skip
    for name in ("cold", "steady"):
        s = result[name]
        rows.append(
            (
                name,
                str(s["cycles"]),
                str(s.get("tasks_max", "-")),
                str(s.get("requests_max", "-")),
                str(s.get("requests_p50", "-")),
                str(s.get("cpu_max_s", "-")),
                str(s.get("cpu_p50_s", "-")),
                str(s.get("wall_max_s", "-")),
                str(s.get("writes_max", "-")),
                str(s.get("edits_max", "-")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poller", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000, help="Midjourney tasks in flight")
    parser.add_argument("--steps", type=int, default=400, help="observations until done")
    parser.add_argument("--cold-cycles", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-state duration")
    args = parser.parse_args(argv)
    result = runtime.run(run(args))  # the service's event loop (uvloop where installed)
    worst_requests = max(result[s].get("requests_max", 0) for s in ("cold", "steady"))
    worst_cpu = max(result[s].get("cpu_max_s", 0.0) for s in ("cold", "steady"))
    print(
        f"poller: {args.tasks:,} Midjourney tasks in flight; machine: {os.cpu_count()} CPU, "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print(_table(result))
    line = {
        "name": "task_poller",
        "tasks": args.tasks,
        **{f"{k}_{n}": v for k in ("cold", "steady") for n, v in result[k].items()},
        "steady_requests_per_s": result["steady_requests_per_s"],
        "in_flight_at_end": result["in_flight_at_end"],
        "target_requests": TARGET_REQUESTS,
        "target_cpu_s": TARGET_CPU_SECONDS,
        "ok": worst_requests <= TARGET_REQUESTS and worst_cpu <= TARGET_CPU_SECONDS,
    }
    print("BENCH " + json.dumps(line, separators=(",", ":")))
    return 0 if line["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
