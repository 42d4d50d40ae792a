"""Benchmark: latency of ``Store.recent_turns`` on a large file database.

Run with ``python -m bench.store_context`` (``--help`` for sizes). It builds a
WAL file database in a temporary directory: one conversation of 100,000 turns
plus 50 others of 1,000 turns each, their turns interleaved as in a busy
deployment and never reset, so all 100,000 turns are candidates. Then it
times ``recent_turns`` through the real ``Store`` (aiosqlite thread hop
included) and prints a table and one ``BENCH {...}`` JSON line. The target is
p99 under 5 ms for ``limit=50``.

``--backend postgresql`` does the same on a throwaway PostgreSQL server
(``tests/pgserver.py``), the same rows loaded with COPY and then ANALYZEd, timed
through the real ``Store`` over its asyncpg pool; ``--backend both`` runs SQLite,
then PostgreSQL, and prints a line for each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.core.models import ConversationKey, Platform, Role, Turn
from bot.store import Store

TARGET_P99_MS = 5.0
BIG = ConversationKey(Platform.TELEGRAM, "-1000")
WORDS = (
    *("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"),
    *("while", "models", "stream", "tokens", "to", "busy", "chats"),
)


def _other(n: int) -> ConversationKey:
    return ConversationKey(Platform.DISCORD, str(10_000 + n))


def _rows(
    big_turns: int, others: int, other_turns: int, seed: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The conversations' and the turns' rows (the same for both backends)."""
    rng = random.Random(seed)
    keys = [BIG] + [_other(n) for n in range(others)]
    # Every turn goes to a random conversation with turns left, so ids interleave.
    remaining = [big_turns] + [other_turns] * others
    order = [i for i, count in enumerate(remaining) for _ in range(count)]
    rng.shuffle(order)
    conversations = [(i + 1, str(k), k.platform.value, 0.0) for i, k in enumerate(keys)]
    start = time.time() - len(order)
    turns = []
    for n, index in enumerate(order):
        words = rng.choices(WORDS, k=rng.randint(5, 60))
        role = Role.USER.value if n % 2 == 0 else Role.ASSISTANT.value
        turns.append((index + 1, role, " ".join(words), "Ann", len(words), start + n))
    return conversations, turns


_TURN_COLUMNS = ("conversation_id", "role", "content", "speaker", "tokens", "created_at")


def _populate(path: Path, args: argparse.Namespace) -> None:
    """Bulk-load turns with plain sqlite3 (the store's own schema, already migrated)."""
    conversations, turns = _rows(args.turns, args.others, args.other_turns, args.seed)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO conversations (id, key, platform, created_at) VALUES (?, ?, ?, ?)",
            conversations,
        )
        conn.executemany(
            f"INSERT INTO turns ({', '.join(_TURN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)", turns
        )
    conn.close()


async def _populate_postgres(url: str, args: argparse.Namespace) -> None:
    """Bulk-load with COPY (the store's schema, already migrated), then ANALYZE, as
    autovacuum would soon after such a load (the throwaway server runs without it)."""
    import asyncpg

    conversations, turns = _rows(args.turns, args.others, args.other_turns, args.seed)
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "conversations",
            records=conversations,
            columns=("id", "key", "platform", "created_at"),
        )
        await conn.copy_records_to_table("turns", records=turns, columns=_TURN_COLUMNS)
        for table in ("conversations", "turns"):  # ids given explicitly or not: move on
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 4),
        "p90_ms": round(cuts[89], 4),
        "p99_ms": round(cuts[98], 4),
        "max_ms": round(ms[-1], 4),
    }


async def _time(calls: int, call: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    for n in range(min(100, calls)):  # warm the page cache and the thread
        await call(n)
    samples: list[int] = []
    for n in range(calls):
        began = time.perf_counter_ns()
        await call(n)
        samples.append(time.perf_counter_ns() - began)
    return _percentiles(samples)


async def _create(location: str | Path) -> None:
    async with Store.open(location):
        pass  # the store's own migrations build the schema


async def _measure(args: argparse.Namespace, location: str | Path) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    async with Store.open(location) as store:
        assert len(await store.recent_turns(BIG, limit=50)) == 50
        for limit in (50, 200):
            results[f"recent_turns big limit={limit}"] = await _time(
                args.calls, lambda _n, limit=limit: store.recent_turns(BIG, limit=limit)
            )
        results["recent_turns other limit=50"] = await _time(
            args.calls, lambda n: store.recent_turns(_other(n % args.others), limit=50)
        )
        scratch = ConversationKey(Platform.DISCORD, "scratch")
        results["add_turn"] = await _time(
            args.calls, lambda n: store.add_turn(scratch, Turn(Role.USER, f"message {n}"))
        )
        # After a reset the range scan is empty however long the history is.
        await store.reset(BIG)
        results["recent_turns big after reset"] = await _time(
            args.calls, lambda _n: store.recent_turns(BIG, limit=50)
        )
    return results


def _run_sqlite(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        path = Path(tmp) / "bench.sqlite3"
        asyncio.run(_create(path))
        began = time.perf_counter()
        _populate(path, args)
        size_mb = path.stat().st_size / 1e6
        print(f"sqlite: built {size_mb:.1f} MB in {time.perf_counter() - began:.1f} s")
        return asyncio.run(_measure(args, path))


def _run_postgres(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], str]:
    from tests.pgserver import PostgresServer

    with PostgresServer() as server:

        async def run() -> tuple[dict[str, dict[str, float]], str]:
            url = await server.create_database("bench")
            await _create(url)
            began = time.perf_counter()
            await _populate_postgres(url, args)
            print(f"postgresql: loaded in {time.perf_counter() - began:.1f} s")
            import asyncpg

            conn = await asyncpg.connect(url)
            version = str(await conn.fetchval("SHOW server_version"))
            await conn.close()
            return await _measure(args, url), version

        return asyncio.run(run())


def _print(
    backend: str, args: argparse.Namespace, results: dict[str, dict[str, float]], version: str
) -> None:
    print(f"\n{backend:<32} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<32} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['p99_ms']:>8.3f}"
            f" {r['max_ms']:>8.3f}"
        )
    headline = results["recent_turns big limit=50"]
    line = {
        "name": "store_recent_context",
        "backend": backend,
        "turns": args.turns,
        "other_conversations": args.others,
        "other_turns": args.other_turns,
        "calls": args.calls,
        "limit": 50,
        **headline,
        "p99_ms_limit200": results["recent_turns big limit=200"]["p99_ms"],
        "target_p99_ms": TARGET_P99_MS,
        "ok": headline["p99_ms"] < TARGET_P99_MS,
        "scenarios": results,
        "machine": {
            "nproc": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            backend: version,
            "load1": round(os.getloadavg()[0], 2),
        },
    }
    print("BENCH " + json.dumps(line, separators=(",", ":")))
    sys.stdout.flush()


def main() -> None:
    """Parse sizes, build the database(s), print the table(s) and BENCH line(s)."""
    parser = argparse.ArgumentParser(prog="python -m bench.store_context", description=__doc__)
    parser.add_argument("--turns", type=int, default=100_000, help="turns in the big conversation")
    parser.add_argument("--others", type=int, default=50, help="other conversations")
    parser.add_argument("--other-turns", type=int, default=1_000, help="turns in each other one")
    parser.add_argument("--calls", type=int, default=2_000, help="timed calls per scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="postgresql: a throwaway server (tests/pgserver.py), loaded with COPY",
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        _print("sqlite", args, _run_sqlite(args), sqlite3.sqlite_version)
    if args.backend in ("postgresql", "both"):
        results, version = _run_postgres(args)
        _print("postgresql", args, results, version)


if __name__ == "__main__":
    main()
