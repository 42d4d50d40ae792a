"""One poller process of ``bench.poller_shared``: the real TaskPoller on its own store pool.

Started with :mod:`multiprocessing` (spawn), so it has its own interpreter, event loop (the
service's: uvloop where installed) and asyncpg pool. It runs
:class:`~bot.core.generation.poller.TaskPoller` as a process of a shared deployment does
(``shared=True``, its own ``name``, an outbox owning one Discord shard's route) against the
fake CometAPI the parent serves, and reports to the parent over a one-way pipe:

- ``("ready", name)`` once the poller has started;
- ``("claimed", name, count, unix_time)`` after every claim that took tasks (the parent
  kills a process right after one, while it holds the leases);
- ``("cycle", name, {...})`` after every cycle that polled something: tasks, requests,
  this process's CPU seconds for the cycle (``time.process_time``: every thread) and wall.

Commands from the parent (another one-way pipe): ``"wake"`` (tasks were made due: look now)
and ``"stop"``. :class:`Children` is the parent's side: it starts the processes and reads
their reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import httpx

from bot.adapters.task_backend import CometTaskBackend
from bot.core.clock import SystemClock
from bot.core.generation.poller import CycleStats, PollerConfig, TaskPoller
from bot.core.generation.records import Task
from bot.core.models import ConversationKey, MediaLimits, OutgoingMessage, Platform, StatusView
from bot.ops import runtime
from bot.platforms.common import discord_route
from bot.providers.cometapi import CometAPI
from bot.store import Store

T = TypeVar("T")
HEADER = "x-bench-poller"  # the fake counts requests per process by it


class _NamedTransport(httpx.AsyncHTTPTransport):
    """Marks every request with this process's name (the fake counts per process)."""

    def __init__(self, name: str) -> None:
        super().__init__(limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))
        self.name = name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers[HEADER] = self.name
        return await super().handle_async_request(request)


class _Outbox:
    """Counts edits only; owns one route (a Discord shard), as a sharded process does."""

    limits = MediaLimits(10 * 1024 * 1024, 50 * 1024 * 1024)

    def __init__(self, route: str) -> None:
        self._routes = frozenset({route})
        self.edits = 0

    def routes(self) -> Collection[str]:
        return self._routes

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        return await call()

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        return "1"

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        self.edits += 1


class _NoHandoff:
    async def task_ready(self, task_id: int) -> None:
        return None  # no task finishes in this benchmark


def _reporting_store(out: Connection, name: str) -> type[Store]:
    class ReportingStore(Store):
        async def claim_due_tasks(self, owner: str, **kw: Any) -> list[Task]:
            tasks = await super().claim_due_tasks(owner, **kw)
            if tasks:
                out.send(("claimed", name, len(tasks), time.time()))
            return tasks

    return ReportingStore


class _MeasuredPoller(TaskPoller):
    def __init__(self, out: Connection, **kw: Any) -> None:
        super().__init__(**kw)
        self._out = out

    async def run_cycle(self) -> CycleStats:
        cpu, wall, began = time.process_time(), time.perf_counter(), time.time()
        stats = await super().run_cycle()
        if stats.tasks:
            self._out.send(
                (
                    "cycle",
                    self._name,
                    {
                        "began": began,
                        "ended": time.time(),
                        "tasks": stats.tasks,
                        "requests": stats.requests,
                        "cpu": time.process_time() - cpu,
                        "wall": time.perf_counter() - wall,
                    },
                )
            )
        return stats


class Children:
    """The poller processes and their reports (read by one thread per process)."""

    def __init__(self, args: argparse.Namespace, hello: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.cycles: list[tuple[str, dict[str, Any]]] = []
        self.procs: dict[str, Any] = {}
        self.commands: dict[str, Connection] = {}
        self.armed = ""  # the process whose claims are reported (the next to be killed)
        for n in range(args.processes):
            name = f"p{n}"
            cmd_read, cmd_write = ctx.Pipe(duplex=False)
            out_read, out_write = ctx.Pipe(duplex=False)
            options = {
                **hello,
                "name": name,
                "route": discord_route(n),
                "lease": args.lease,
                "grace": args.grace,
            }
            proc = ctx.Process(target=serve, args=(options, cmd_read, out_write), name=name)
            proc.start()
            cmd_read.close()
            out_write.close()
            self.procs[name], self.commands[name] = proc, cmd_write
            threading.Thread(target=self._read, args=(out_read,), daemon=True).start()

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                event = conn.recv()
            except (EOFError, OSError):
                return
            self.loop.call_soon_threadsafe(self._event, event)

    def _event(self, event: tuple[Any, ...]) -> None:
        if event[0] == "cycle":
            self.cycles.append((event[1], event[2]))
        elif event[0] != "claimed" or event[1] == self.armed:
            self.events.put_nowait(event)

    async def wait(self, kind: str, names: set[str], timeout: float = 120) -> list[tuple[Any, ...]]:  # noqa: ASYNC109
        """The first ``kind`` event of each of ``names`` (others are dropped)."""
        found: dict[str, tuple[Any, ...]] = {}
        async with asyncio.timeout(timeout):
            while len(found) < len(names):
                event = await self.events.get()
                if event[0] == kind and event[1] in names:
                    found.setdefault(event[1], event)
        return list(found.values())

    def wake(self) -> None:
        for name, conn in self.commands.items():
            if self.procs[name].is_alive():
                conn.send("wake")

    def stop(self) -> None:
        for name, conn in self.commands.items():
            if self.procs[name].is_alive():
                with contextlib.suppress(OSError):
                    conn.send("stop")
        for proc in self.procs.values():
            proc.join(20)
            if proc.is_alive():
                proc.kill()
                proc.join()


def serve(options: dict[str, Any], commands: Connection, out: Connection) -> None:
    """The child's entry point (``multiprocessing`` target)."""
    runtime.run(_serve(options, commands, out))


async def _serve(options: dict[str, Any], commands: Connection, out: Connection) -> None:
    name = options["name"]
    store_class = _reporting_store(out, name)
    outbox = _Outbox(options["route"])
    async with (
        store_class.open(options["url"], pool_size=options["pool_size"]) as store,
        CometAPI(
            api_key=options["api_key"],
            base_url=options["base_url"],
            transport=_NamedTransport(name),
        ) as api,
    ):
        poller = _MeasuredPoller(
            out,
            store=store,
            backend=CometTaskBackend(api),
            outboxes={Platform.DISCORD: outbox},
            config=PollerConfig(lease=options["lease"], takeover_grace=options["grace"]),
            clock=SystemClock(),
            name=name,
            shared=True,
            handoff=_NoHandoff(),
        )
        async with poller:
            runtime.settle_heap()  # as run_service does once the service is up
            out.send(("ready", name))
            loop = asyncio.get_running_loop()
            while (command := await loop.run_in_executor(None, _recv, commands)) != "stop":
                if command == "wake":
                    poller.wake()
    out.send(("stopped", name))


def _recv(conn: Connection) -> str:
    try:
        return str(conn.recv())
    except EOFError:  # the parent went away
        return "stop"
