"""Benchmark: two poller processes sharing 10,000 Midjourney tasks on one PostgreSQL database.

Run with ``python -m bench.poller_shared`` (``--help`` for sizes). This process starts a
throwaway PostgreSQL (``tests/pgserver.py``), seeds ``--tasks`` Midjourney tasks in flight
(half routed to Discord shard 0, half to shard 1), serves ONE fake CometAPI holding those
tasks (they stay in progress), and starts ``--processes`` real OS processes
(``bench/_poller_process.py``, spawned: each its own interpreter, event loop and asyncpg
pool). Process ``p<n>`` runs the real ``TaskPoller(shared=True, name="p<n>")`` owning shard
``n``'s route, so each claims its own shard's tasks first and the other's once overdue.

The fake counts every ``list-by-condition`` request (per process, by a header the bench's
transport adds) and every task it returns (per upstream id, with the time). Three phases:

- **rounds** (``--rounds``): every task made due at once and the pollers woken; a round
  ends when every task has been fetched once. Requests in the round (both processes) and
  ids fetched more than once in it; each process's CPU over its cycles of the round.
- **steady** (``--seconds``): the pollers' own loops with the production schedule. Rounds
  equivalent = task fetches / tasks; requests and CPU per round-equivalent; a fetch of an
  id within ``--twice-window`` s of its previous fetch counts as fetched twice (the
  shortest legitimate interval is 3 s less 10 % jitter less the 1 s batch window: 1.7 s).
- **takeover**: everything due, the pollers woken, and ``p0`` killed with SIGKILL right
  after a claim (while it holds leases, mid-round). The tasks still leased to it are read
  from the database; measured: the time from the kill until every one of them has been
  fetched again (by the survivor), against the lease (``--lease``, production 30 s).

Targets (issue 13): at most 100 requests per round across both processes (one process's
budget), no task fetched twice in a round. Prints a table and one ``BENCH {...}`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import web

from bench import _poller_process
from bench._poller_process import Children
from bot.core.generation.records import Provider, TaskStatus
from bot.core.models import ConversationKey, Platform
from bot.ops import runtime
from bot.platforms.common import discord_route
from bot.store import Store
from tests.fakes.cometapi import FakeCometAPI
from tests.pgserver import PostgresServer

TARGET_REQUESTS = 100


class CountingComet(FakeCometAPI):
    """FakeCometAPI counting list requests per process and task fetches per upstream id."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.auto_advance = False  # tasks stay in progress however often they are polled
        self.by_poller: Counter[str] = Counter()
        self.fetches = 0
        self.count: Counter[str] = Counter()  # fetches of each id in the current phase
        self.last: dict[str, float] = {}  # time.time() of each id's latest fetch
        self.twice = 0  # fetches within ``window`` s of the same id's previous one
        self.twice_ids: set[str] = set()
        self.window = 0.0
        # After a kill: each id's first fetch by another process than the killed one.
        self.first_after: dict[str, float] = {}
        self.killed = ""

    def phase(self, window: float = 0.0) -> None:
        self.by_poller.clear()
        self.count.clear()
        self.last.clear()
        self.fetches = self.twice = 0
        self.twice_ids.clear()
        self.window = window

    async def _mj_list(self, request: web.Request) -> web.Response:
        poller = request.headers.get(_poller_process.HEADER, "?")
        self.by_poller[poller] += 1
        response = await super()._mj_list(request)
        now = time.time()
        for upstream in json.loads(response.text or "[]"):
            uid = str(upstream["id"])
            self.fetches += 1
            self.count[uid] += 1
            previous = self.last.get(uid)
            if self.window and previous is not None and now - previous < self.window:
                self.twice += 1
                self.twice_ids.add(uid)
            self.last[uid] = now
            if self.killed and poller != self.killed and uid not in self.first_after:
                self.first_after[uid] = now
        self._bump()  # wake wait_for() now that this request's tasks are counted
        return response


async def _seed(store: Store, ids: list[str], shards: int, routed: bool) -> None:
    """One SUBMITTED row per upstream task (not due yet), routed to the shards in turn
    (or to none: any process polls it as soon as it is due, as rows from before routes)."""
    now = time.time()
    async with store._transaction() as db:  # the bench's own shortcut for 10,000 inserts
        await db.executemany(
            "INSERT INTO tasks (provider, kind, owner_id, conversation, request, status,"
            " upstream_id, status_message_id, deadline, next_poll_at, created_at,"
            " updated_at, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    Provider.MIDJOURNEY.value,
                    "imagine",
                    f"dc:{n % 500}",
                    str(ConversationKey(Platform.DISCORD, str(100_000 + n % 500))),
                    json.dumps({"prompt": f"bench {n}"}),
                    TaskStatus.SUBMITTED.value,
                    upstream,
                    str(n + 1),
                    now + 86_400,
                    now + 86_400,
                    now,
                    now,
                    discord_route(n % shards) if routed else None,
                )
                for n, upstream in enumerate(ids)
            ],
        )


async def _leases_ended(store: Store) -> None:
    # The database has nothing to wait on here (the pollers' NOTIFY is for finished tasks).
    while (await store._fetchone("SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL"))[0]:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def _all_due(store: Store) -> None:
    await _leases_ended(store)  # a round's own write would undo it
    await store._write("UPDATE tasks SET next_poll_at = ?", (time.time(),))


def _cpu_by_process(cycles: list[tuple[str, dict[str, Any]]], t0: float, t1: float) -> Counter[str]:
    cpu: Counter[str] = Counter()
    for name, cycle in cycles:
        if t0 <= cycle["began"] <= t1:
            cpu[name] += cycle["cpu"]
    return cpu


async def _rounds(
    args: argparse.Namespace, comet: CountingComet, store: Store, kids: Children
) -> list[dict[str, Any]]:
    rounds = []
    for _ in range(args.rounds):
        await _all_due(store)
        comet.phase()
        t0 = time.time()
        kids.wake()
        await comet.wait_for(lambda: len(comet.count) >= args.tasks, timeout=120)
        t1 = time.time()
        await _leases_ended(store)  # the round's writes, then its cycles' reports
        await asyncio.sleep(0.2)
        cpu = _cpu_by_process(kids.cycles, t0 - 0.1, t1)
        cycles = Counter(n for n, c in kids.cycles if t0 - 0.1 <= c["began"] <= t1)
        rounds.append(
            {
                "requests": sum(comet.by_poller.values()),
                "by_process": dict(sorted(comet.by_poller.items())),
                "fetched_twice": sum(1 for c in comet.count.values() if c > 1),
                "cpu_s": {n: round(v, 3) for n, v in sorted(cpu.items())},
                "cycles": dict(sorted(cycles.items())),
                "wall_s": round(t1 - t0, 3),
            }
        )
    return rounds


async def _steady(
    args: argparse.Namespace, comet: CountingComet, store: Store, kids: Children
) -> dict[str, Any]:
    await _all_due(store)
    comet.phase(window=args.twice_window)
    t0 = time.time()
    kids.wake()
    await asyncio.sleep(args.seconds)
    t1 = time.time()
    rounds = comet.fetches / args.tasks
    cpu = _cpu_by_process(kids.cycles, t0 - 0.1, t1)
    mine = [(n, c) for n, c in kids.cycles if t0 - 0.1 <= c["began"] <= t1]
    return {
        "seconds": args.seconds,
        "rounds": round(rounds, 2),
        "requests": sum(comet.by_poller.values()),
        "by_process": dict(sorted(comet.by_poller.items())),
        "requests_per_round": round(sum(comet.by_poller.values()) / rounds, 1) if rounds else None,
        "fetched_twice": comet.twice,
        "ids_fetched_twice": len(comet.twice_ids),
        "cpu_s": {n: round(v, 3) for n, v in sorted(cpu.items())},
        "cpu_per_round_s": {n: round(v / rounds, 3) for n, v in sorted(cpu.items())}
        if rounds
        else {},
        "cycle_cpu_max_s": {
            n: round(max(c["cpu"] for m, c in mine if m == n), 3)
            for n in sorted({m for m, _ in mine})
        },
        "cycles": dict(sorted(Counter(n for n, _ in mine).items())),
    }


async def _takeover(
    args: argparse.Namespace, comet: CountingComet, store: Store, kids: Children
) -> dict[str, Any]:
    victim = "p0"
    await _all_due(store)
    comet.phase()
    kids.armed = victim
    kids.wake()
    [(_, _, claimed, _)] = await kids.wait("claimed", {victim})
    comet.first_after.clear()
    comet.killed = victim  # its requests still in flight do not count as taken over
    os.kill(kids.procs[victim].pid, signal.SIGKILL)
    killed = time.time()
    await asyncio.get_running_loop().run_in_executor(None, kids.procs[victim].join)
    rows = await store._fetchall(
        "SELECT upstream_id, lease_until FROM tasks WHERE lease_owner = ?", (victim,)
    )
    held = {str(r[0]) for r in rows}
    lease_ends = max((float(r[1]) for r in rows), default=killed)
    with contextlib.suppress(TimeoutError):  # then reported: taken_over < held_at_kill
        await comet.wait_for(lambda: held <= comet.first_after.keys(), timeout=args.lease + 120)
    after = [comet.first_after[uid] for uid in held if uid in comet.first_after]
    return {
        "claimed_in_last_claim": claimed,
        "held_at_kill": len(held),
        "taken_over": len(after),
        "lease_s": args.lease,
        "lease_left_at_kill_s": round(lease_ends - killed, 2),
        "takeover_s": round(max(after) - killed, 2) if after else None,
        "first_refetch_s": round(min(after) - killed, 2) if after else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server = PostgresServer().start()
    try:
        url = await server.create_database("bench")
        async with (
            CountingComet(task_steps=1_000_000) as comet,
            Store.open(url) as store,
        ):
            ids = [
                comet.add_task("mj", "IMAGINE", {"prompt": f"bench {n}"}) for n in range(args.tasks)
            ]
            await _seed(store, ids, args.processes, not args.unrouted)
            hello = {
                "url": url,
                "base_url": comet.base_url,
                "api_key": comet.api_key,
                "pool_size": args.pool_size,
            }
            kids = Children(args, hello)
            try:
                await kids.wait("ready", set(kids.procs))
                result: dict[str, Any] = {"rounds": await _rounds(args, comet, store, kids)}
                result["steady"] = await _steady(args, comet, store, kids)
                if args.processes > 1 and not args.no_takeover:
                    result["takeover"] = await _takeover(args, comet, store, kids)
            finally:
                kids.stop()
        return result
    finally:
        server.stop()


def _table(result: dict[str, Any]) -> str:
    lines = ["phase     | requests (by process)        | fetched twice | CPU s by process"]
    for n, r in enumerate(result["rounds"], 1):
        requests = f"{r['requests']:>4} {r['by_process']!s:<23}"
        lines.append(f"round {n:<3} | {requests} | {r['fetched_twice']:>13} | {r['cpu_s']}")
    s = result["steady"]
    requests = f"{s['requests_per_round']!s:>4} per round ({s['rounds']} rounds, {s['requests']})"
    cpu = f"per round {s['cpu_per_round_s']}, cycle max {s['cycle_cpu_max_s']}"
    lines.append(f"steady    | {requests} | {s['fetched_twice']:>13} | {cpu}")
    if "takeover" in result:
        t = result["takeover"]
        lines.append(
            f"takeover  | {t['held_at_kill']} tasks held by the killed process; all polled"
            f" again {t['takeover_s']} s after SIGKILL (lease {t['lease_s']} s,"
            f" {t['lease_left_at_kill_s']} s left at the kill; first re-fetch"
            f" {t['first_refetch_s']} s)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poller_shared", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000, help="Midjourney tasks in flight")
    parser.add_argument("--processes", type=int, default=2, help="poller processes")
    parser.add_argument("--rounds", type=int, default=5, help="rounds with every task due")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-state duration")
    parser.add_argument("--lease", type=float, default=30.0, help="PollerConfig.lease")
    parser.add_argument("--grace", type=float, default=10.0, help="PollerConfig.takeover_grace")
    parser.add_argument("--pool-size", type=int, default=10, help="each process's pool")
    parser.add_argument("--twice-window", type=float, default=1.5)
    parser.add_argument("--no-takeover", action="store_true")
    parser.add_argument(
        "--unrouted", action="store_true", help="tasks with no route: every process competes"
    )
    args = parser.parse_args(argv)
    result = runtime.run(run(args))
    worst = max([r["requests"] for r in result["rounds"]], default=0)
    twice = sum(r["fetched_twice"] for r in result["rounds"]) + result["steady"]["fetched_twice"]
    print(
        f"poller_shared: {args.tasks:,} Midjourney tasks, {args.processes} processes on one"
        f" PostgreSQL; machine: {os.cpu_count()} CPU, {platform.machine()}, Python"
        f" {platform.python_version()}, load {os.getloadavg()[0]:.2f}"
    )
    print(_table(result))
    round_cpu = [v for r in result["rounds"] for v in r["cpu_s"].values()]
    line = {
        "name": "task_poller_shared",
        "tasks": args.tasks,
        "processes": args.processes,
        "routed": not args.unrouted,
        "lease_s": args.lease,
        "grace_s": args.grace,
        "round_requests_max": worst,
        "round_requests": [r["requests"] for r in result["rounds"]],
        "round_fetched_twice": [r["fetched_twice"] for r in result["rounds"]],
        "round_cpu_per_process_max_s": round(max(round_cpu, default=0.0), 3),
        "round_cpu_per_process_p50_s": round(statistics.median(round_cpu), 3)
        if round_cpu
        else None,
        "rounds": result["rounds"],
        "steady": result["steady"],
        "takeover": result.get("takeover"),
        "target_requests": TARGET_REQUESTS,
        "ok": worst <= TARGET_REQUESTS and twice == 0,
    }
    print("BENCH " + json.dumps(line, separators=(",", ":")))
    return 0 if line["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
