"""Benchmark: N private chats streaming answers at once through the real Telegram adapter.

Run with ``python -m bench.streaming --platform telegram --chats 200`` (``--help`` for the
rest). This process runs only the bot, wired as in production (``open_core``, a ``Pacer``
with ``telegram_rules()``, ``TelegramBot`` polling with updates handled concurrently, a
fresh SQLite file in a temporary directory, the service's logging setup). FakeTelegram
(default rate limits: 1 msg/s per chat with a burst of 3, 30/s overall) and FakeCometAPI run
in a child process (``bench/_fakes_process.py``), so the CPU time and peak RSS read here are
the bot's alone.

Each chat sends one message at the same moment; the fake CometAPI streams each chat its own
answer of ``--tokens`` tokens spread over ``--seconds`` seconds. Measured:

- correctness: each chat shows exactly one message equal to ``render(answer)[0]``;
- 429s and violations (calls made during a penalty) counted by FakeTelegram;
- first visible text: the chat's first ``sendMessage`` as the fake received it, minus the
  moment the fake CometAPI wrote that chat's first content token (same monotonic clock);
- bot CPU (``time.process_time``, all threads) from the injection until every answer
  returned, per 10,000 streamed tokens; peak RSS (``ru_maxrss``) of this process;
- wall time from the injection until every answer returned.

It prints a table and one ``BENCH {...}`` JSON line. A run stops by itself after
``--timeout`` seconds and then reports what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._fakes_process import _recv, serve

TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
TARGET_CPU_PER_10K = 1.0
TARGET_RSS_MB = 250.0
MAX_TOKENS = 500  # ~3,500 characters: still one Telegram message
LATENCY_CHATS = 25  # first-visible latency is read at this many chats (design.md §8)
SHUTDOWN_BOUND = 30.0


class _CountingChat:
    """The real ChatService, counting answers that returned (final text out, or given up)."""

    def __init__(self, chat: Any, total: int) -> None:
        self._chat = chat
        self.total = total
        self.done = 0
        self.last_done_at = 0.0
        self.all_done = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)

    async def answer(self, incoming: Any, reply: Any) -> Any:
        try:
            return await self._chat.answer(incoming, reply)
        finally:
            self.done += 1
            self.last_done_at = time.perf_counter()
            if self.done >= self.total:
                self.all_done.set()


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


async def _bot_run(
    args: argparse.Namespace, conn: Connection, profiler: cProfile.Profile | None
) -> tuple[_Window, dict[str, Any]]:
    """Start the bot against the fakes, run the chats, collect the fakes' results."""
    from bot.__main__ import configure_logging
    from bot.app import open_core
    from bot.config import Settings
    from bot.core.pacing import Pacer, telegram_rules
    from bot.platforms.telegram import TelegramBot

    hello = await _recv(conn, timeout=60)
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        settings = Settings(
            cometapi={"api_key": hello["comet_api_key"], "base_url": hello["comet_base_url"]},
            telegram={
                "token": hello["tg_token"],
                "api_base_url": hello["tg_api_base_url"],
                "file_base_url": hello["tg_file_base_url"],
            },
            storage={"path": str(Path(tmp) / "bot.sqlite3")},
        )
        configure_logging(settings)
        async with open_core(settings) as core, contextlib.AsyncExitStack() as stack:
            chat = _CountingChat(core.chat, args.chats)
            pacer = Pacer(telegram_rules(), clock=core.clock)
            bot = TelegramBot(
                settings.telegram,
                chat=chat,
                gatekeeper=core.gatekeeper,
                pacer=pacer,
                clock=core.clock,
            )
            await stack.enter_async_context(bot)
            # Leaving runs the bot's shutdown (which waits for replies in flight) bounded.
            stack.push_async_callback(_bounded_shutdown, stack.pop_all())

            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            cpu0, began = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            conn.send({"op": "run"})
            await _recv(conn, timeout=60)
            timed_out = False
            try:
                await asyncio.wait_for(chat.all_done.wait(), args.timeout)
            except TimeoutError:
                timed_out = True
            ended = chat.last_done_at if not timed_out else time.perf_counter()
            cpu1 = time.process_time()
            if profiler is not None:
                profiler.disable()
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            window = _Window(
                wall_s=ended - began,
                cpu_s=cpu1 - cpu0,
                cpu_user_s=ru1.ru_utime - ru0.ru_utime,
                cpu_sys_s=ru1.ru_stime - ru0.ru_stime,
                answered=chat.done,
                timed_out=timed_out,
            )
            conn.send({"op": "results"})
            results = await _recv(conn, timeout=120)
            if timed_out:  # report now: shutting down may still take a while
                _report(args, window, results)
                results["reported"] = True
    return window, results


async def _bounded_shutdown(stack: contextlib.AsyncExitStack) -> None:
    """Stop the bot (waits for replies in flight), but not forever."""
    try:
        await asyncio.wait_for(stack.aclose(), SHUTDOWN_BOUND)
    except TimeoutError:
        print(f"(bot shutdown took over {SHUTDOWN_BOUND:.0f} s; abandoned)", file=sys.stderr)


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
    finals = [c["final"] for c in chats if c["final"] is not None]
    edits = [c["edits"] for c in chats]
    return {
        "name": "streaming_telegram",
        "platform": "telegram",
        "chats": args.chats,
        "tokens": args.tokens,
        "seconds": args.seconds,
        "streamed_tokens": tokens,
        "answered": window.answered,
        "completed": completed,
        "exact": exact,
        "mismatches": results["mismatches"],
        "total_429s": results["total_429s"],
        "violations": results["violations"],
        "peak_sends_edits_per_1s": results["peak_counted_per_1s"],
        "first_visible_ms": first_visible,
        "bot_cpu_s": round(window.cpu_s, 3),
        "bot_cpu_user_s": round(window.cpu_user_s, 3),
        "bot_cpu_sys_s": round(window.cpu_sys_s, 3),
        "bot_cpu_s_per_10k_tokens": round(per_10k, 3),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "wall_s": round(window.wall_s, 2),
        "last_final_visible_s": round(max(finals) - injected, 2) if finals else None,
        "timed_out": window.timed_out,
        "upstream_request_after_inject_ms": request,
        "upstream_first_token_after_inject_ms": first_token,
        "final_visible_after_last_token_ms": final_lag,
        "edits_per_chat_mean": round(statistics.fmean(edits), 2) if edits else 0,
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
            "no_429": results["total_429s"] == 0 and results["violations"] == 0,
            "cpu": per_10k <= TARGET_CPU_PER_10K,
            "latency": None  # read at LATENCY_CHATS: beyond, the 30/s budget dominates
            if args.chats > LATENCY_CHATS
            else (first_visible["p50"] or 1e9) <= TARGET_P50_MS
            and (first_visible["p99"] or 1e9) <= TARGET_P99_MS,
            "rss": rss_kb / 1024 <= TARGET_RSS_MB,
        },
        "machine": _machine(),
    }


def _fmt(p: dict[str, float | None]) -> str:
    return " / ".join("-" if p[k] is None else f"{p[k]:.0f}" for k in ("p50", "p90", "p99", "max"))


def _report(args: argparse.Namespace, window: _Window, results: dict[str, Any]) -> None:
    s = _summary(args, window, results)
    ok = s["ok"]
    mark = {True: "ok", False: "MISSED"}
    title = (
        f"streaming_telegram: {args.chats} chats x {args.tokens} tokens over {args.seconds:g} s"
        f" (FakeTelegram default rate limits)"
    )
    rows = [
        ("answers returned", f"{s['answered']}/{args.chats}", "all", ""),
        (
            "final texts exact",
            f"{s['exact']}/{args.chats}",
            "all",
            mark[ok["exact"]],
        ),
        (
            "429s / violations",
            f"{s['total_429s']} / {s['violations']}",
            "0 / 0",
            mark[ok["no_429"]],
        ),
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
            mark[ok["cpu"]],
        ),
        (
            "bot CPU s (user+sys)",
            f"{s['bot_cpu_s']:.2f} ({s['bot_cpu_user_s']:.2f}+{s['bot_cpu_sys_s']:.2f})",
            "",
            "",
        ),
        ("peak RSS MB", f"{s['peak_rss_mb']:.1f}", "<= 250 (1000 chats)", mark[ok["rss"]]),
        ("wall s until all answered", f"{s['wall_s']:.2f}", "", ""),
        (
            "upstream 1st token after inject ms",
            _fmt(s["upstream_first_token_after_inject_ms"]),
            "",
            "",
        ),
        ("final shown after last token ms", _fmt(s["final_visible_after_last_token_ms"]), "", ""),
        ("edits per chat (mean)", f"{s['edits_per_chat_mean']:.2f}", "", ""),
        (
            "fakes: CPU s, loop lag p99/max ms",
            f"{s['fakes_cpu_s']:.2f}, {s['fakes_loop_lag_ms']['p99']} / "
            f"{s['fakes_loop_lag_ms']['max']}",
            "(child process)",
            "",
        ),
    ]
    if window.timed_out:
        title += f"  ** TIMED OUT after {args.timeout:g} s: partial results **"
    print(title)
    print(f"{'metric':<36} {'measured':>26}  {'target':<28} ")
    for name, value, target, verdict in rows:
        print(f"{name:<36} {value:>26}  {target:<28} {verdict}")
    print(f"calls: {s['calls']}")
    if s["refused"]:
        print(f"429s (t after inject, chat, accepted in the second before): {s['refused'][:12]}")
    if s["mismatch_examples"]:
        print(f"mismatch examples: {s['mismatch_examples']}")
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


def main(argv: list[str] | None = None) -> None:
    """Parse options, start the fakes' process, run the bot here, print the results."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.streaming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=["telegram"], default="telegram")
    parser.add_argument("--chats", type=int, default=200, help="concurrent private chats")
    parser.add_argument("--tokens", type=int, default=50, help="tokens per answer")
    parser.add_argument("--seconds", type=float, default=2.0, help="stream duration per answer")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up and report partial results after this many seconds "
        "(default: 60 or 0.25 s per chat, whichever is more)",
    )
    parser.add_argument("--dump", metavar="FILE", help="write the raw results as JSON")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the bot during the run (inflates CPU)"
    )
    args = parser.parse_args(argv)
    if args.chats < 1 or args.tokens < 1 or args.seconds < 0:
        parser.error("--chats and --tokens must be positive, --seconds not negative")
    if args.tokens > MAX_TOKENS:  # each answer must fit one Telegram message
        parser.error(f"--tokens: at most {MAX_TOKENS}")
    if args.timeout is None:
        args.timeout = max(60.0, 0.25 * args.chats)

    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    options = {
        "chats": args.chats,
        "tokens": args.tokens,
        "seconds": args.seconds,
        "deadline": args.timeout + 300.0,  # the fakes exit by themselves after this long idle
    }
    fakes = ctx.Process(target=serve, args=(child_conn, options), name="bench-fakes")
    fakes.start()
    child_conn.close()
    profiler = cProfile.Profile() if args.profile else None
    try:
        window, results = asyncio.run(_bot_run(args, conn, profiler))
        if not results.get("reported"):
            _report(args, window, results)
        if args.dump:
            Path(args.dump).write_text(json.dumps(results))
        if profiler is not None:
            _print_profile(profiler, args.profile)
    finally:
        with contextlib.suppress(OSError):
            conn.send({"op": "stop"})
        fakes.join(15)
        if fakes.is_alive():
            fakes.terminate()
            fakes.join(5)
        conn.close()


if __name__ == "__main__":
    main()
