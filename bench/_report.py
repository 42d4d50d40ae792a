"""The streaming benchmark's figures: percentiles, the summary line and the printed table.

Split from :mod:`bench.streaming`, which runs the scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
TARGET_CPU_PER_10K = 1.0
TARGET_RSS_MB = 250.0
MAX_TOKENS = {
    "telegram": 500,  # ~3,500 characters: still one Telegram message
    "discord": 300,  # ~1,840 characters: still one Discord message (2,000)
}
LATENCY_CHATS = 25  # first-visible latency is read at this many chats (design.md §8)
CPU_CHATS = 200  # the CPU target is read at this many chats (issue 3)
SHUTDOWN_BOUND = 30.0
DISCORD_GLOBAL_PER_S = 50  # "All bots can make up to 50 requests per second" (platforms.md §4)


@dataclass
class _Window:
    wall_s: float
    cpu_s: float
    cpu_user_s: float
    cpu_sys_s: float
    answered: int
    timed_out: bool


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)
    if len(ordered) == 1:
        cuts = ordered * 99
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 1),
        "p90": round(cuts[89], 1),
        "p99": round(cuts[98], 1),
        "max": round(ordered[-1], 1),
    }


def _ms_between(chats: list[dict[str, Any]], start: str, end: str) -> list[float]:
    return [
        (c[end] - c[start]) * 1000.0
        for c in chats
        if c.get(start) is not None and c.get(end) is not None
    ]


def machine_check_ms() -> float:
    """How fast this machine is right now: the best of 5 timings of a fixed pure-Python loop,
    in ms of CPU. On the shared 2-vCPU VM of docs/benchmarks.md it reads ~60 ms when quiet and
    up to ~120 ms when neighbours are busy; CPU figures scale with it."""
    best = float("inf")
    for _ in range(5):
        began = time.process_time()
        sum(i * i for i in range(2_000_000))
        best = min(best, time.process_time() - began)
    return round(best * 1000.0, 1)


def _machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu": model,
    }


def _summary(args: argparse.Namespace, window: _Window, results: dict[str, Any]) -> dict[str, Any]:
    chats = results["chats"]
    completed = sum(1 for c in chats if c["final"] is not None)
    exact = args.chats - results["mismatches"]
    tokens = args.chats * args.tokens
    per_10k = window.cpu_s / tokens * 10_000
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first_visible = _percentiles(_ms_between(chats, "first_token", "first_send"))
    injected = results["injected_at"]
    for c in chats:
        c["injected"] = injected
        if c["first_token"] is not None:
            c["last_token"] = c["first_token"] + args.seconds * (args.tokens - 1) / args.tokens
    final_lag = _percentiles(_ms_between(chats, "last_token", "final"))
    first_token = _percentiles(_ms_between(chats, "injected", "first_token"))
    request = _percentiles(_ms_between(chats, "injected", "request"))
    entered = _percentiles([(t - injected) * 1000.0 for t in results.get("answer_entered", [])])
    finals = [c["final"] for c in chats if c["final"] is not None]
    edits = [c["edits"] for c in chats]
    messages = [c.get("messages", 1) for c in chats]
    return {
        "name": f"streaming_{args.platform}",
        "platform": args.platform,
        "backend": getattr(args, "backend", "sqlite"),
        "chats": args.chats,
        "tokens": args.tokens,
        "seconds": args.seconds,
        "streamed_tokens": tokens,
        "answered": window.answered,
        "completed": completed,
        "exact": exact,
        "mismatches": results["mismatches"],
        "total_429s": results["total_429s"],
        # Telegram: calls made during a penalty; Discord: other 4xx answers (spec included).
        "violations": results.get("violations"),
        "errors_4xx": results.get("errors"),
        "peak_sends_edits_per_1s": results["peak_counted_per_1s"],
        "peak_rest_requests_per_1s": results.get("peak_rest_per_1s"),
        "first_visible_ms": first_visible,
        "bot_cpu_s": round(window.cpu_s, 3),
        "bot_cpu_user_s": round(window.cpu_user_s, 3),
        "bot_cpu_sys_s": round(window.cpu_sys_s, 3),
        "bot_cpu_s_per_10k_tokens": round(per_10k, 3),
        # PostgreSQL runs in its own processes: its CPU is not in the bot's figure.
        "postgres_cpu_s": results.get("postgres_cpu_s"),
        "bot_thread_cpu_s": results.get("bot_thread_cpu_s"),
        "bot_gc": results.get("bot_gc"),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "wall_s": round(window.wall_s, 2),
        "last_final_visible_s": round(max(finals) - injected, 2) if finals else None,
        "timed_out": window.timed_out,
        "answer_called_after_inject_ms": entered,
        "upstream_request_after_inject_ms": request,
        "upstream_first_token_after_inject_ms": first_token,
        "final_visible_after_last_token_ms": final_lag,
        "edits_per_chat_mean": round(statistics.fmean(edits), 2) if edits else 0,
        "messages_per_chat_max": max(messages, default=0),
        "inject_s": round(results.get("inject_s", 0.0), 3),
        "calls": results["calls"],
        "fakes_cpu_s": results["fakes_cpu_s"],
        "fakes_loop_lag_ms": results["fakes_loop_lag_ms"],
        "upstream_requests": results["upstream_requests"],
        "spec_problems": results["spec_problems"],
        "mismatch_examples": results["mismatch_examples"],
        "refused": results["refused"],
        "targets": {
            "first_visible_p50_ms": TARGET_P50_MS,
            "first_visible_p99_ms": TARGET_P99_MS,
            "bot_cpu_s_per_10k_tokens": TARGET_CPU_PER_10K,
            "peak_rss_mb": TARGET_RSS_MB,
        },
        "ok": {
            "exact": exact == args.chats and completed == args.chats,
            "no_429": results["total_429s"] == 0
            and not results.get("violations")
            and not results.get("errors"),
            "cpu": per_10k <= TARGET_CPU_PER_10K if args.chats == CPU_CHATS else None,
            # Read at LATENCY_CHATS: beyond, the overall budget (Telegram ~30/s, the Discord
            # pacer 40/s) alone delays first messages.
            "latency": None
            if args.chats > LATENCY_CHATS
            else (first_visible["p50"] or 1e9) <= TARGET_P50_MS
            and (first_visible["p99"] or 1e9) <= TARGET_P99_MS,
            "rss": rss_kb / 1024 <= TARGET_RSS_MB,
        },
        "machine": _machine(),
        "machine_check_ms": results.get("machine_check_ms"),
    }


def _fmt(p: dict[str, float | None]) -> str:
    return " / ".join("-" if p[k] is None else f"{p[k]:.0f}" for k in ("p50", "p90", "p99", "max"))


def _threads(by_name: dict[str, float] | None) -> str:
    """The busiest threads' CPU seconds, the main thread first ("main 0.80 sqlite 0.20")."""
    if not by_name:
        return "-"
    short = {"MainThread": "main"}
    ordered = sorted(by_name.items(), key=lambda item: (item[0] != "MainThread", -item[1]))
    return " ".join(f"{short.get(name, name)[:10]} {cpu:.2f}" for name, cpu in ordered[:3])


def _report(args: argparse.Namespace, window: _Window, results: dict[str, Any]) -> None:
    s = _summary(args, window, results)
    ok = s["ok"]
    mark = {True: "ok", False: "MISSED"}
    fake = "FakeTelegram" if args.platform == "telegram" else "FakeDiscord"
    title = (
        f"streaming_{args.platform}: {args.chats} chats x {args.tokens} tokens over"
        f" {args.seconds:g} s ({fake} default rate limits)"
    )
    if args.platform == "discord":
        refusals = ("429s / other 4xx", f"{s['total_429s']} / {s['errors_4xx']}")
    else:
        refusals = ("429s / violations", f"{s['total_429s']} / {s['violations']}")
    rows = [
        ("answers returned", f"{s['answered']}/{args.chats}", "all", ""),
        (
            "final texts exact",
            f"{s['exact']}/{args.chats}",
            "all",
            mark[ok["exact"]],
        ),
        (*refusals, "0 / 0", mark[ok["no_429"]]),
        (
            "first visible ms p50/p90/p99/max",
            _fmt(s["first_visible_ms"]),
            "p50<=50 p99<=250 (25 chats)",
            # Past ~25 chats the overall 30/s budget alone delays first messages (design §8).
            mark[ok["latency"]] if args.chats <= LATENCY_CHATS else "n/a",
        ),
        (
            "bot CPU s per 10k tokens",
            f"{s['bot_cpu_s_per_10k_tokens']:.3f}",
            "<= 1.0 (200 chats)",
            mark[ok["cpu"]] if ok["cpu"] is not None else "n/a",
        ),
        (
            "bot CPU s (user+sys)",
            f"{s['bot_cpu_s']:.2f} ({s['bot_cpu_user_s']:.2f}+{s['bot_cpu_sys_s']:.2f})",
            "",
            "",
        ),
        (
            "bot CPU s by thread; in GC",
            _threads(s["bot_thread_cpu_s"]) + f"; {(s['bot_gc'] or {}).get('cpu_s', 0):.2f}",
            "",
            "",
        ),
        (
            "store; its server's CPU s",
            s["backend"] + ("" if s["postgres_cpu_s"] is None else f"; {s['postgres_cpu_s']:.2f}"),
            "",
            "",
        ),
        ("peak RSS MB", f"{s['peak_rss_mb']:.1f}", "<= 250 (1000 chats)", mark[ok["rss"]]),
        ("wall s until all answered", f"{s['wall_s']:.2f}", "", ""),
        ("sends+edits peak per rolling 1 s", str(s["peak_sends_edits_per_1s"]), "", ""),
        ("bot answer() called after inject ms", _fmt(s["answer_called_after_inject_ms"]), "", ""),
        ("upstream request after inject ms", _fmt(s["upstream_request_after_inject_ms"]), "", ""),
        (
            "upstream 1st token after inject ms",
            _fmt(s["upstream_first_token_after_inject_ms"]),
            "",
            "",
        ),
        ("final shown after last token ms", _fmt(s["final_visible_after_last_token_ms"]), "", ""),
        (
            "edits per chat (mean), messages (max)",
            f"{s['edits_per_chat_mean']:.2f}, {s['messages_per_chat_max']}",
            "",
            "",
        ),
        (
            "machine check ms (before / after)",
            " / ".join(f"{v:.0f}" for v in s["machine_check_ms"] or ()),
            "~60 when the VM is quiet",
            "",
        ),
        (
            "fakes: CPU s, loop lag p99/max ms",
            f"{s['fakes_cpu_s']:.2f}, {s['fakes_loop_lag_ms']['p99']} / "
            f"{s['fakes_loop_lag_ms']['max']}",
            "(child process)",
            "",
        ),
    ]
    if args.platform == "discord":
        peak = s["peak_rest_requests_per_1s"] or 0
        after = next(i for i, row in enumerate(rows) if row[0].startswith("sends+edits peak"))
        rows.insert(
            after + 1,
            (
                "REST requests peak per rolling 1 s",
                str(peak),
                f"Discord global {DISCORD_GLOBAL_PER_S}/s *",
                "OVER" if peak > DISCORD_GLOBAL_PER_S else "",
            ),
        )
    if window.timed_out:
        title += f"  ** TIMED OUT after {args.timeout:g} s: partial results **"
    print(title)
    print(f"{'metric':<36} {'measured':>26}  {'target':<28} ")
    for name, value, target, verdict in rows:
        print(f"{name:<36} {value:>26}  {target:<28} {verdict}")
    if args.platform == "discord":
        print(
            "* every REST request counts (typing included); FakeDiscord enforces it too"
            " (its 429s are in the 429 row)"
        )
    print(f"calls: {s['calls']}")
    if s["refused"]:
        span = "second" if args.platform == "telegram" else "5 s in that channel"
        print(f"429s (t after inject, chat, accepted in the {span} before): {s['refused'][:12]}")
    if s["mismatch_examples"]:
        print(f"mismatch examples: {s['mismatch_examples']}")
    if results.get("error_examples"):
        print(f"4xx examples: {results['error_examples']}")
    line = {k: v for k, v in s.items() if k not in ("calls", "mismatch_examples", "refused")}
    print("BENCH " + json.dumps(line, separators=(",", ":")))
    sys.stdout.flush()


def _print_profile(profiler: cProfile.Profile, path: str) -> None:
    profiler.dump_stats(path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
