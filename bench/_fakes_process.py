"""The fakes' side of ``bench.streaming``: the platform fake and FakeCometAPI in a child process.

The benchmark's own process runs only the bot, so its CPU time and peak RSS are the bot's
alone. This module runs both fakes on 127.0.0.1 in one event loop of a child process and
talks to the parent over a :func:`multiprocessing.Pipe`:

- on start it sends the fakes' addresses (``hello``);
- ``{"op": "run"}``: inject one private message into each of the N chats at once;
- ``{"op": "results"}``: per-chat timings, final texts checked, the fake's counters;
- ``{"op": "stop"}`` (or the parent going away, or ``deadline``): close the fakes and exit.

The platform is FakeTelegram (here) or FakeDiscord (``bench/_fakes_discord.py``, imported
only when asked for). Each chat gets its own answer (the chat number is in the question, and
in the answer's first token, so a reply in the wrong chat is a mismatch). The fakes all use
``time.monotonic``; the fake CometAPI records when it writes the first content token of each
chat's stream, the platform fake when each chat's first message (``sendMessage``, or a
Discord ``POST /channels/{id}/messages``) reached it and when the chat first showed exactly
the expected final text.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from multiprocessing.connection import Connection
from typing import Any

from bot.platforms.telegram.render import render
from tests.fakes.cometapi import ChatScript, FakeCometAPI, message_text
from tests.fakes.telegram import Call, FakeTelegram

FIRST_USER_ID = 100_001
QUESTION = "Benchmark question from chat {n}: tell me about streaming."
_CHAT_RE = re.compile(r"from chat (\d+):")
WORDS = (
    *("streaming", "tokens", "arrive", "one", "by", "one", "and", "the", "bot", "shows"),
    *("them", "as", "a", "growing", "message", "within", "Telegram's", "limits", "so"),
    *("every", "user", "sees", "text", "early", "and", "the", "final", "answer", "exactly"),
)


def answer_tokens(n: int, count: int) -> list[str]:
    """Chat ``n``'s answer: ``count`` tokens, the first naming the chat, with some Markdown."""
    tokens = [f"Chat {n}:"]
    for k in range(1, count):
        word = WORDS[(n + k) % len(WORDS)]
        if k % 17 == 5:
            tokens.append(f" **{word}")  # bold opened in one token ...
        elif k % 17 == 6:
            tokens.append(f" {word}**")  # ... and closed in the next
        elif k % 23 == 11:
            tokens.append(f" `{word}`")
        elif k % 13 == 12:
            tokens.append(".\n\n" + word.capitalize())
        else:
            tokens.append(f" {word}")
    tokens[-1] += "."
    return tokens[:count]


def user_id(n: int) -> int:
    return FIRST_USER_ID + n


class _Stamped(list[str]):
    """A token list that calls ``stamp`` when the fake reads token 0 to write it.

    FakeCometAPI's stream loop evaluates ``tokens[index]`` right after the per-token delay and
    immediately before serializing and writing that chunk (no ``await`` in between), so the
    stamp is the time the first content token went onto the socket, within microseconds.
    """

    def __init__(self, tokens: Iterable[str], stamp: Callable[[], None]) -> None:
        super().__init__(tokens)
        self._stamp: Callable[[], None] | None = stamp

    def __getitem__(self, index: Any) -> Any:
        if self._stamp is not None and index == 0:  # a slice is never == 0
            stamp, self._stamp = self._stamp, None
            stamp()
        return super().__getitem__(index)


class BenchCometAPI(FakeCometAPI):
    """FakeCometAPI answering each chat with its own script, stamping the first token."""

    def __init__(self, plan: dict[int, list[str]], delay: float) -> None:
        super().__init__()
        self.plan = plan
        self.delay = delay
        self.request_at: dict[int, float] = {}
        self.first_token_at: dict[int, float] = {}

    def next_chat_script(self, body: dict[str, Any]) -> ChatScript:
        messages = body.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        match = _CHAT_RE.search(message_text(users[-1])) if users else None
        n = int(match.group(1)) if match else None
        if n is None or n not in self.plan:
            return super().next_chat_script(body)
        self.request_at.setdefault(n, time.monotonic())
        stamp = functools.partial(self._stamp, n)
        return ChatScript(tokens=_Stamped(self.plan[n], stamp), delay=self.delay)

    def _stamp(self, n: int) -> None:
        self.first_token_at.setdefault(n, time.monotonic())


class BenchTelegram(FakeTelegram):
    """FakeTelegram (default rate limits) noting first sends and when final texts showed."""

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[int, str] = {}
        self.first_send_at: dict[int, float] = {}
        self.final_at: dict[int, float] = {}
        self.preload_spec()  # read lazily on the first sendMessage otherwise, mid-run
        self.call_observers.append(self._sent)

    def _sent(self, call: Call) -> None:
        """After each accepted sendMessage / editMessageText: stamp the chat's first message
        and the moment it first showed exactly the expected answer."""
        chat = call.chat_id
        if call.method not in ("sendMessage", "editMessageText") or not isinstance(chat, int):
            return
        if call.method == "sendMessage":
            self.first_send_at.setdefault(chat, call.time)
        expected = self.expected.get(chat)
        if (
            expected is not None
            and chat not in self.final_at
            and [m.text for m in self.messages(chat)] == [expected]
        ):
            self.final_at[chat] = call.time


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def recv(conn: Connection, timeout: float | None = None) -> Any:  # noqa: ASYNC109
    """``conn.recv()`` without blocking the event loop (waits on the pipe's fd)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while not conn.poll():
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _resolve, ready)
            try:
                await ready
            finally:
                loop.remove_reader(conn.fileno())
    # uvloop's add_reader leaves the fd non-blocking, and a large message arrives in parts.
    os.set_blocking(conn.fileno(), True)
    return conn.recv()


class TelegramSide:
    """The fakes process's Telegram half: one private chat per user id."""

    def __init__(self, tg: BenchTelegram, plan: dict[int, list[str]]) -> None:
        self.tg = tg
        self.n_chats = len(plan)
        for n, tokens in plan.items():
            tg.expected[user_id(n)] = render("".join(tokens))[0]

    def hello(self) -> dict[str, Any]:
        return {
            "tg_token": self.tg.token,
            "tg_api_base_url": self.tg.api_base_url,
            "tg_file_base_url": self.tg.file_base_url,
        }

    async def inject(self) -> None:
        for n in range(self.n_chats):
            self.tg.inject_private_message(QUESTION.format(n=n), user_id=user_id(n))

    def results(self, comet: BenchCometAPI, injected_at: float) -> dict[str, Any]:
        return _results(self.n_chats, self.tg, comet, injected_at)


def _results(
    n_chats: int, tg: BenchTelegram, comet: BenchCometAPI, injected_at: float
) -> dict[str, Any]:
    chats: list[dict[str, Any]] = []
    mismatches: list[dict[str, Any]] = []
    for n in range(n_chats):
        uid = user_id(n)
        texts = [m.text for m in tg.messages(uid)]
        expected = tg.expected[uid]
        if texts != [expected]:
            mismatches.append(
                {"chat": n, "expected": expected[-80:], "shown": [t and t[-80:] for t in texts]}
            )
        chats.append(
            {
                "request": comet.request_at.get(n),
                "first_token": comet.first_token_at.get(n),
                "first_send": tg.first_send_at.get(uid),
                "final": tg.final_at.get(uid),
                "edits": sum(m.edit_count for m in tg.messages(uid)),
            }
        )
    calls = Counter(f"{c.method} {c.status}" for c in tg.calls() if c.method != "getUpdates")
    # Which budget each 429 hit: counted calls accepted overall and to that chat in the
    # rolling second before it (Telegram's limits: 30 overall, 1/s per chat, burst 3).
    counted = [c for c in tg.calls() if c.method in ("sendMessage", "editMessageText") and c.ok]
    refused = []
    for call in tg.calls():
        if call.status != 429:
            continue
        recent = [c for c in counted if call.time - 1.0 < c.time <= call.time]
        refused.append(
            {
                "t": round(call.time - injected_at, 3),
                "chat": call.chat_id,
                "method": call.method,
                "overall_1s": len(recent),
                "chat_1s": sum(1 for c in recent if c.chat_id == call.chat_id),
            }
        )
    times = sorted(c.time for c in counted)
    peak_1s = max(
        (i + 1 - bisect.bisect_right(times, t - 1.0) for i, t in enumerate(times)), default=0
    )
    return {
        "injected_at": injected_at,
        "chats": chats,
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:3],
        "total_429s": tg.total_429s,
        "refused": refused,
        "peak_counted_per_1s": peak_1s,
        "violations": tg.violations,
        "calls": dict(sorted(calls.items())),
        "spec_problems": len(tg.spec_problems),
        # Raw timeline for --dump: [seconds after injection, chat, method, status].
        "timeline": [
            [round(c.time - injected_at, 4), c.chat_id, c.method, c.status]
            for c in tg.calls()
            if c.method != "getUpdates"
        ],
        "upstream_requests": len(comet.requests_to("/v1/chat/completions")),
        "upstream_disconnects": comet.disconnects,
    }


@contextlib.asynccontextmanager
async def _platform(name: str, plan: dict[int, list[str]]) -> AsyncIterator[Any]:
    """The platform fake for ``name``, started, wrapped in its side (hello/inject/results)."""
    if name == "discord":
        from bench._fakes_discord import BenchDiscord, DiscordSide

        async with BenchDiscord() as dc:
            yield DiscordSide(dc, plan, QUESTION)
    else:
        async with BenchTelegram() as tg:
            yield TelegramSide(tg, plan)


async def _serve(conn: Connection, options: dict[str, Any]) -> None:
    n_chats, n_tokens = int(options["chats"]), int(options["tokens"])
    plan = {n: answer_tokens(n, n_tokens) for n in range(n_chats)}
    delay = float(options["seconds"]) / n_tokens
    platform = str(options.get("platform", "telegram"))
    async with BenchCometAPI(plan, delay) as comet, _platform(platform, plan) as side:
        conn.send(
            {
                "op": "hello",
                "comet_api_key": comet.api_key,
                "comet_base_url": comet.base_url,
                **side.hello(),
            }
        )
        injected_at = 0.0
        cpu_at_run = 0.0
        lags: list[float] = []
        monitor: asyncio.Task[None] | None = None
        deadline = float(options["deadline"])
        while True:
            try:
                command = await recv(conn, timeout=deadline)
            except (EOFError, OSError, TimeoutError):
                return  # the parent went away or never finished: stop by ourselves
            op = command.get("op")
            if op == "run":
                cpu_at_run = time.process_time()
                monitor = asyncio.create_task(_loop_lag(lags))
                injected_at = time.monotonic()
                await side.inject()
                conn.send(
                    {
                        "op": "running",
                        "injected_at": injected_at,
                        "inject_s": time.monotonic() - injected_at,
                    }
                )
            elif op == "results":
                if monitor is not None:
                    monitor.cancel()
                results = side.results(comet, injected_at)
                results["platform"] = platform
                # The fakes' own load, to show their timestamps are not skewed by it.
                results["fakes_cpu_s"] = round(time.process_time() - cpu_at_run, 3)
                results["fakes_loop_lag_ms"] = {
                    "p99": round(sorted(lags)[int(len(lags) * 0.99)] * 1000, 1) if lags else None,
                    "max": round(max(lags) * 1000, 1) if lags else None,
                }
                conn.send({"op": "results", **results})
            else:
                return


async def _loop_lag(lags: list[float], every: float = 0.01) -> None:
    """How late a 10 ms sleep wakes up: the fakes' event-loop stalls."""
    while True:
        began = time.monotonic()
        await asyncio.sleep(every)
        lags.append(time.monotonic() - began - every)


def serve(conn: Connection, options: dict[str, Any]) -> None:
    """Child process entry point (``multiprocessing`` target)."""
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(conn, options))
    conn.close()
