"""Benchmark: N private chats streaming at once through the real Telegram or Discord adapter.

Run with ``python -m bench.streaming --platform telegram --chats 200`` (or ``--platform
discord``; ``--help`` for the rest). This process runs only the bot, wired as in production
(``open_core``, the service's logging setup, its event loop (uvloop where installed) and its
settled heap, a fresh SQLite file in a temporary directory) and:

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
import gc
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._fakes_process import recv, serve
from bench._report import (
    MAX_TOKENS,
    SHUTDOWN_BOUND,
    _print_profile,
    _report,
    _Window,
    machine_check_ms,
)
from bot.ops.runtime import run
from tests.pgserver import PostgresServer


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

    async def answer(self, incoming: Any, reply: Any, **options: Any) -> Any:
        self.entered.append(time.monotonic())  # the fakes' clock (CLOCK_MONOTONIC) too
        try:
            return await self._chat.answer(incoming, reply, **options)
        finally:
            self.done += 1
            self.last_done_at = time.perf_counter()
            if self.done >= self.total:
                self.all_done.set()


async def _bot_run(
    args: argparse.Namespace,
    conn: Connection,
    profiler: cProfile.Profile | None,
    pg: PostgresServer | None = None,
) -> tuple[_Window, dict[str, Any]]:
    """Start the bot against the fakes, run the chats, collect the fakes' results."""
    from bot.__main__ import configure_logging
    from bot.app import open_core
    from bot.ops.runtime import settle_heap

    hello = await recv(conn, timeout=60)
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        database = await pg.create_database("bench") if pg else str(Path(tmp) / "bot.sqlite3")
        settings = _settings(args.platform, hello, database)
        configure_logging(settings)
        async with open_core(settings) as core, contextlib.AsyncExitStack() as stack:
            chat = _CountingChat(core.chat, args.chats)
            bot = _platform_bot(args.platform, settings, core, chat)
            await stack.enter_async_context(bot)
            # Leaving runs the bot's shutdown (which waits for replies in flight) bounded.
            stack.push_async_callback(_bounded_shutdown, stack.pop_all())

            settle_heap()  # as run_service does once every platform has started
            gc_time = _GCTime()
            threads0 = _thread_cpu()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            server0 = _server_cpu(pg)
            cpu0, began = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            conn.send({"op": "run"})
            cpu_trace: list[list[float]] = []
            sampler = asyncio.create_task(_sample_cpu(cpu_trace, began, cpu0, chat))
            running = await recv(conn, timeout=60)
            timed_out = False
            try:
                await asyncio.wait_for(chat.all_done.wait(), args.timeout)
            except TimeoutError:
                timed_out = True
            sampler.cancel()
            ended = chat.last_done_at if not timed_out else time.perf_counter()
            cpu1 = time.process_time()
            server1 = _server_cpu(pg)
            gc_time.stop()
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
            results = await recv(conn, timeout=120)
            results["inject_s"] = running.get("inject_s", 0.0)
            if pg is not None:
                results["postgres_cpu_s"] = round(server1 - server0, 3)
            results["bot_cpu_trace"] = cpu_trace
            results["bot_gc"] = gc_time.summary()
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


class _GCTime:
    """CPU seconds the cyclic garbage collector took in this process, by generation."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        generation = info["generation"]
        self.runs[generation] += 1
        self.seconds[generation] += time.process_time() - self._started

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "cpu_s": round(sum(self.seconds), 3),
            "by_generation_s": [round(s, 3) for s in self.seconds],
        }


def _server_cpu(pg: PostgresServer | None) -> float:
    """CPU seconds (user+sys) of the PostgreSQL server's processes (the postmaster and its
    children: the bot's connections' backends), which the bot's own CPU does not include."""
    if pg is None or pg.pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(entry.name) == pg.pid or int(fields[1]) == pg.pid:  # fields[1]: ppid
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


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


def _settings(platform: str, hello: dict[str, Any], db: str) -> Any:
    from bot.config import Settings

    comet = {"api_key": hello["comet_api_key"], "base_url": hello["comet_base_url"]}
    storage = {"url": db} if db.startswith("postgresql://") else {"path": db}
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
    from bot.platforms.common import Services

    if platform == "discord":
        from bot.app import platform_pacer
        from bot.core.models import Platform
        from bot.platforms.discord.bot import DiscordBot

        return DiscordBot(
            settings.discord,
            Services(chat, core.gatekeeper, platform_pacer(core, Platform.DISCORD), core.clock),
            # No guilds: READY is followed by no GUILD_CREATE, so do not wait 2 s for one.
            guild_ready_timeout=0.05,
        )
    from bot.core.pacing import Pacer, telegram_rules
    from bot.platforms.telegram.bot import TelegramBot

    return TelegramBot(
        settings.telegram,
        Services(chat, core.gatekeeper, Pacer(telegram_rules(), clock=core.clock), core.clock),
    )


async def _bounded_shutdown(stack: contextlib.AsyncExitStack) -> None:
    """Stop the bot (waits for replies in flight), but not forever."""
    try:
        await asyncio.wait_for(stack.aclose(), SHUTDOWN_BOUND)
    except TimeoutError:
        print(f"(bot shutdown took over {SHUTDOWN_BOUND:.0f} s; abandoned)", file=sys.stderr)


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
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the bot's store: a SQLite file, or a throwaway PostgreSQL server (tests/pgserver.py)",
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
    check_before = machine_check_ms()  # the bot's CPU figure scales with how busy the VM is
    pg = PostgresServer().start() if args.backend == "postgresql" else None
    try:
        window, results = run(_bot_run(args, conn, profiler, pg))
        results["machine_check_ms"] = [check_before, machine_check_ms()]
        if not results.get("reported"):
            _report(args, window, results)
        if args.dump:
            Path(args.dump).write_text(json.dumps(results))
        if profiler is not None:
            _print_profile(profiler, args.profile)
    finally:
        if pg is not None:
            pg.stop()
        with contextlib.suppress(OSError):
            conn.send({"op": "stop"})
        fakes.join(15)
        if fakes.is_alive():
            fakes.terminate()
            fakes.join(5)
        conn.close()


if __name__ == "__main__":
    main()
