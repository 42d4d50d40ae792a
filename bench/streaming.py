"""Benchmark: N private chats streaming at once through the real Telegram or Discord adapter.

Run with ``python -m bench.streaming --platform telegram --chats 200`` (or ``--platform
discord``; ``--help`` for the rest). This process runs only the bot, wired as in production
(``open_core``, the service's logging setup, a fresh SQLite file in a temporary directory) and:

- Telegram: a ``Pacer`` with ``telegram_rules()``, ``TelegramBot`` polling with updates handled
  concurrently, against FakeTelegram (default rate limits: 1 msg/s per chat with a burst of 3,
  30/s overall);
- Discord: ``platform_pacer(core, Platform.DISCORD)`` (``discord_rules()``), ``DiscordBot``
  (real discord.py: REST + gateway) against FakeDiscord (default rate limits: 5 writes per 5 s
  per channel); each chat is a different user's DM, so its own channel and budget.

The platform fake and FakeCometAPI run in a child process (``bench/_fakes_process.py``), so
the CPU time and peak RSS read here are the bot's alone.

Each chat sends one message at the same moment; the fake CometAPI streams each chat its own
answer of ``--tokens`` tokens spread over ``--seconds`` seconds. Measured:

- correctness: Telegram: each chat shows exactly one message equal to ``render(answer)[0]``;
  Discord: the DM's bot messages joined equal the answer (Markdown as is);
- 429s counted by the fake (Telegram also counts violations: calls made during a penalty;
  Discord the other 4xx answers, spec violations included);
- first visible text: the chat's first message (``sendMessage``; Discord ``POST
  /channels/{id}/messages``) as the fake received it, minus the moment the fake CometAPI wrote
  that chat's first content token (same monotonic clock);
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
import threading
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
MAX_TOKENS = {
    "telegram": 500,  # ~3,500 characters: still one Telegram message
    "discord": 300,  # ~1,840 characters: still one Discord message (2,000)
}
LATENCY_CHATS = 25  # first-visible latency is read at this many chats (design.md §8)
SHUTDOWN_BOUND = 30.0
DISCORD_GLOBAL_PER_S = 50  # "All bots can make up to 50 requests per second" (platforms.md §4)


class _CountingChat:
    """The real ChatService, counting answers that returned (final text out, or given up)."""

    def __init__(self, chat: Any, total: int) -> None:
        self._chat = chat
        self.total = total
        self.done = 0
        self.last_done_at = 0.0
        self.all_done = asyncio.Event()
        self.entered: list[float] = []  # time.monotonic() as each answer() began

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)

    async def answer(self, incoming: Any, reply: Any) -> Any:
        self.entered.append(time.monotonic())  # the fakes' clock (CLOCK_MONOTONIC) too
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

    hello = await _recv(conn, timeout=60)
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        settings = _settings(args.platform, hello, Path(tmp) / "bot.sqlite3")
        configure_logging(settings)
        async with open_core(settings) as core, contextlib.AsyncExitStack() as stack:
            chat = _CountingChat(core.chat, args.chats)
            bot = _platform_bot(args.platform, settings, core, chat)
            await stack.enter_async_context(bot)
            # Leaving runs the bot's shutdown (which waits for replies in flight) bounded.
            stack.push_async_callback(_bounded_shutdown, stack.pop_all())

            threads0 = _thread_cpu()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            cpu0, began = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            conn.send({"op": "run"})
            cpu_trace: list[list[float]] = []
            sampler = asyncio.create_task(_sample_cpu(cpu_trace, began, cpu0, chat))
            running = await _recv(conn, timeout=60)
            timed_out = False
            try:
                await asyncio.wait_for(chat.all_done.wait(), args.timeout)
            except TimeoutError:
                timed_out = True
            sampler.cancel()
            ended = chat.last_done_at if not timed_out else time.perf_counter()
            cpu1 = time.process_time()
            if profiler is not None:
                profiler.disable()
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            threads1 = _thread_cpu()
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
            results["inject_s"] = running.get("inject_s", 0.0)
            results["bot_cpu_trace"] = cpu_trace
            results["answer_entered"] = chat.entered
            results["bot_thread_cpu_s"] = {
                name: round(cpu - threads0.get(name, 0.0), 3)
                for name, cpu in sorted(threads1.items())
                if cpu - threads0.get(name, 0.0) >= 0.005
            }
            if timed_out:  # report now: shutting down may still take a while
                _report(args, window, results)
                results["reported"] = True
    return window, results


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user+sys) of each thread of this process, by thread name (Linux)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
                name = names.get(int(task.name), f"native-{task.name}")
                found[name] = found.get(name, 0.0) + cpu
    return found


async def _sample_cpu(
    trace: list[list[float]], began: float, cpu0: float, chat: _CountingChat, every: float = 0.5
) -> None:
    """For ``--dump``: [s after injection, bot CPU s in the last interval, answers returned]
    every ``every`` seconds (how busy the bot's process was as the run went on)."""
    last = cpu0
    while True:
        await asyncio.sleep(every)
        now = time.process_time()
        trace.append([round(time.perf_counter() - began, 2), round(now - last, 3), chat.done])
        last = now


def _settings(platform: str, hello: dict[str, Any], db: Path) -> Any:
    from bot.config import Settings

    comet = {"api_key": hello["comet_api_key"], "base_url": hello["comet_base_url"]}
    storage = {"path": str(db)}
    if platform == "discord":
        discord = {
            "token": hello["dc_token"],
            "api_base_url": hello["dc_api_base_url"],
            "gateway_url": hello["dc_gateway_url"],
        }
        return Settings(cometapi=comet, discord=discord, storage=storage)
    telegram = {
        "token": hello["tg_token"],
        "api_base_url": hello["tg_api_base_url"],
        "file_base_url": hello["tg_file_base_url"],
    }
    return Settings(cometapi=comet, telegram=telegram, storage=storage)


def _platform_bot(platform: str, settings: Any, core: Any, chat: _CountingChat) -> Any:
    """The platform adapter as the service wires it (``async with`` starts it)."""
    if platform == "discord":
        from bot.app import platform_pacer
        from bot.core.models import Platform
        from bot.platforms.discord import DiscordBot

        return DiscordBot(
            settings.discord,
            chat=chat,
            gatekeeper=core.gatekeeper,
            pacer=platform_pacer(core, Platform.DISCORD),
            clock=core.clock,
            # No guilds: READY is followed by no GUILD_CREATE, so do not wait 2 s for one.
            guild_ready_timeout=0.05,
        )
    from bot.core.pacing import Pacer, telegram_rules
    from bot.platforms.telegram import TelegramBot

    return TelegramBot(
        settings.telegram,
        chat=chat,
        gatekeeper=core.gatekeeper,
        pacer=Pacer(telegram_rules(), clock=core.clock),
        clock=core.clock,
    )


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
    entered = _percentiles([(t - injected) * 1000.0 for t in results.get("answer_entered", [])])
    finals = [c["final"] for c in chats if c["final"] is not None]
    edits = [c["edits"] for c in chats]
    messages = [c.get("messages", 1) for c in chats]
    return {
        "name": f"streaming_{args.platform}",
        "platform": args.platform,
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
        "bot_thread_cpu_s": results.get("bot_thread_cpu_s"),
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
            "cpu": per_10k <= TARGET_CPU_PER_10K,
            # Read at LATENCY_CHATS: beyond, the overall budget (Telegram ~30/s, the Discord
            # pacer 40/s) alone delays first messages.
            "latency": None
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
            "* every REST request counts (typing included); FakeDiscord does not enforce it,"
            " so it is measured only"
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


def main(argv: list[str] | None = None) -> None:
    """Parse options, start the fakes' process, run the bot here, print the results."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.streaming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=["telegram", "discord"], default="telegram")
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
    if args.tokens > MAX_TOKENS[args.platform]:  # each answer must fit one message
        parser.error(f"--tokens: at most {MAX_TOKENS[args.platform]} on {args.platform}")
    if args.timeout is None:
        args.timeout = max(60.0, 0.25 * args.chats)

    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    options = {
        "platform": args.platform,
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
