"""Benchmark: latency of ``Store.recent_turns`` on a large file database.

Run with ``python -m bench.store_context`` (``--help`` for sizes). It builds a
WAL file database in a temporary directory: one conversation of 100,000 turns
plus 50 others of 1,000 turns each, their turns interleaved as in a busy
deployment and never reset, so all 100,000 turns are candidates. Then it
times ``recent_turns`` through the real ``Store`` (aiosqlite thread hop
included) and prints a table and one ``BENCH {...}`` JSON line. The target is
p99 under 5 ms for ``limit=50``.
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


def _populate(path: Path, big_turns: int, others: int, other_turns: int, seed: int) -> None:
    """Bulk-load turns with plain sqlite3 (the store's own schema, already migrated)."""
    rng = random.Random(seed)
    keys = [BIG] + [_other(n) for n in range(others)]
    # Every turn goes to a random conversation with turns left, so ids interleave.
    remaining = [big_turns] + [other_turns] * others
    order = [i for i, count in enumerate(remaining) for _ in range(count)]
    rng.shuffle(order)
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO conversations (id, key, platform, created_at) VALUES (?, ?, ?, ?)",
            [(i + 1, str(k), k.platform.value, 0.0) for i, k in enumerate(keys)],
        )
        start = time.time() - len(order)
        rows = []
        for n, index in enumerate(order):
            words = rng.choices(WORDS, k=rng.randint(5, 60))
            role = Role.USER.value if n % 2 == 0 else Role.ASSISTANT.value
            rows.append((index + 1, role, " ".join(words), "Ann", len(words), start + n))
        conn.executemany(
            "INSERT INTO turns (conversation_id, role, content, speaker, tokens, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


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


async def _create(path: Path) -> None:
    async with Store.open(path):
        pass  # the store's own migrations build the schema


async def _measure(args: argparse.Namespace, path: Path) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    async with Store.open(path) as store:
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


def main() -> None:
    """Parse sizes, build the database, print the table and the BENCH line."""
    parser = argparse.ArgumentParser(prog="python -m bench.store_context", description=__doc__)
    parser.add_argument("--turns", type=int, default=100_000, help="turns in the big conversation")
    parser.add_argument("--others", type=int, default=50, help="other conversations")
    parser.add_argument("--other-turns", type=int, default=1_000, help="turns in each other one")
    parser.add_argument("--calls", type=int, default=2_000, help="timed calls per scenario")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        path = Path(tmp) / "bench.sqlite3"
        asyncio.run(_create(path))
        began = time.perf_counter()
        _populate(path, args.turns, args.others, args.other_turns, args.seed)
        size_mb = path.stat().st_size / 1e6
        print(f"built {size_mb:.1f} MB in {time.perf_counter() - began:.1f} s")
        results = asyncio.run(_measure(args, path))

    print(f"\n{'scenario':<32} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<32} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['p99_ms']:>8.3f}"
            f" {r['max_ms']:>8.3f}"
        )
    headline = results["recent_turns big limit=50"]
    line = {
        "name": "store_recent_context",
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
            "sqlite": sqlite3.sqlite_version,
        },
    }
    print("BENCH " + json.dumps(line, separators=(",", ":")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
