"""Benchmark: one chat answer carrying a 1 MB base64 image, through the real Telegram adapter.

Run with ``python -m bench.chat_images`` (``--help`` for the options). This process runs only
the bot, wired as in production (``open_core``, ``TelegramBot``, a fresh SQLite file); the
fake CometAPI and FakeTelegram run in a child process, so the CPU time and peak RSS read here
are the bot's alone. Two answers are streamed, one after the other, in two private chats:

1. the same text without the image (it warms everything up and sets the RSS baseline);
2. ``Here is the picture: ![img](data:image/png;base64,...) Done.``, the base64 (``--mb``
   megabytes of it) in chunks of ``--chunk`` characters, as image models stream it.

Measured: bot CPU (``time.process_time``) from the question until the answer returned (its
picture posted), for both answers; peak RSS (``ru_maxrss``) growth during the image answer over
the plain one; and the time from the fake CometAPI writing the last chunk to FakeTelegram
receiving ``sendPhoto`` (one monotonic clock). Every text the chat showed is checked for
base64 and markup. Prints a table and one ``BENCH {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import resource
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._fakes_process import recv
from tests.fakes.cometapi import ChatScript, FakeCometAPI
from tests.fakes.cometapi_common import tiny_png
from tests.fakes.telegram import Call, FakeTelegram

PLAIN_USER, IMAGE_USER = 100_001, 100_002
TEXT_BEFORE, TEXT_AFTER = "Here is the picture: ", " Done."


def image_answer(mb: float, chunk: int) -> tuple[list[str], str]:
    """The streamed tokens and the base64's first characters (to look for in the chat)."""
    size = int(mb * 1024 * 1024 * 3 / 4)
    header = tiny_png(size=512)[:33]  # a PNG signature and IHDR: a 512x512 photo
    data = header + random.Random(7).randbytes(size - len(header))
    encoded = base64.b64encode(data).decode()
    tokens = [TEXT_BEFORE, "![img](data:image/png;base64,"]
    tokens += [encoded[i : i + chunk] for i in range(0, len(encoded), chunk)]
    tokens.append(")" + TEXT_AFTER)
    return tokens, encoded[:16]


class _Stamped(list[str]):
    """Tokens noting when the last one is taken, right before the fake writes it."""

    def __init__(self, tokens: list[str], stamps: dict[str, float]) -> None:
        super().__init__(tokens)
        self._stamps = stamps

    def __getitem__(self, index: Any) -> Any:
        if index == len(self) - 1:
            self._stamps["last_chunk_at"] = time.monotonic()
        return super().__getitem__(index)


class _Comet(FakeCometAPI):
    def __init__(self) -> None:
        super().__init__()
        self.next_tokens: list[str] = []
        self.stamps: dict[str, float] = {}

    def next_chat_script(self, body: dict[str, Any]) -> ChatScript:
        return ChatScript(tokens=_Stamped(self.next_tokens, self.stamps), delay=0.001)


class _Telegram(FakeTelegram):
    def __init__(self) -> None:
        super().__init__()
        self.photo_at: dict[int, float] = {}

    async def _send_media(self, params: dict[str, Any], call: Call) -> Any:
        self.photo_at[int(params["chat_id"])] = time.monotonic()
        return await super()._send_media(params, call)


async def _serve(conn: Connection, options: dict[str, Any]) -> None:
    tokens, needle = image_answer(float(options["mb"]), int(options["chunk"]))
    plain = [TEXT_BEFORE, "no picture this time.", TEXT_AFTER]
    async with _Comet() as comet, _Telegram() as tg:
        conn.send(
            {
                "comet_api_key": comet.api_key,
                "comet_base_url": comet.base_url,
                "tg_token": tg.token,
                "tg_api_base_url": tg.api_base_url,
                "tg_file_base_url": tg.file_base_url,
            }
        )
        while True:
            try:
                command = await recv(conn, timeout=300)
            except (EOFError, OSError, TimeoutError):
                return
            if command["op"] == "ask":
                user = int(command["user"])
                comet.next_tokens = tokens if user == IMAGE_USER else plain
                comet.stamps.clear()
                tg.inject_private_message("draw", user_id=user)
                conn.send({"op": "asked"})
            elif command["op"] == "results":
                texts = [
                    t
                    for user in (PLAIN_USER, IMAGE_USER)
                    for m in tg.messages(user)
                    for t in (*m.history, m.text, m.caption)
                    if t
                ]
                leaked = [t[:80] for t in texts if needle in t or "base64," in t or "![" in t]
                photo = [m for m in tg.messages(IMAGE_USER) if m.media_type == "photo"]
                conn.send(
                    {
                        "picture_after_last_chunk_s": tg.photo_at.get(IMAGE_USER, 0.0)
                        - comet.stamps.get("last_chunk_at", 0.0),
                        "photos": len(photo),
                        "photo_bytes": len(photo[0].upload.data)
                        if photo and photo[0].upload
                        else 0,
                        "leaked": leaked,
                        "texts": [m.text for m in tg.messages(IMAGE_USER) if m.text],
                        "429s": tg.total_429s,
                    }
                )
            else:
                return


def _fakes(conn: Connection, options: dict[str, Any]) -> None:
    asyncio.run(_serve(conn, options))


class _Counting:
    """The real ChatService, noting when each answer returned."""

    def __init__(self, chat: Any) -> None:
        self._chat = chat
        self.done = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)

    async def answer(self, incoming: Any, reply: Any, **options: Any) -> Any:
        try:
            return await self._chat.answer(incoming, reply, **options)
        finally:
            self.done.set()


async def _answer(conn: Connection, chat: _Counting, user: int) -> tuple[float, float]:
    """Bot CPU seconds and wall seconds for one answer."""
    chat.done.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    conn.send({"op": "ask", "user": user})
    await recv(conn, timeout=30)
    await asyncio.wait_for(chat.done.wait(), 60)
    return time.process_time() - cpu0, time.perf_counter() - wall0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _bot(conn: Connection) -> dict[str, Any]:
    from bot.app import open_core
    from bot.config import Settings
    from bot.core.pacing import Pacer, telegram_rules
    from bot.platforms.common import Services
    from bot.platforms.telegram.bot import TelegramBot

    hello = await recv(conn, timeout=60)
    with tempfile.TemporaryDirectory(prefix="image-bench-") as tmp:
        settings = Settings(
            cometapi={"api_key": hello["comet_api_key"], "base_url": hello["comet_base_url"]},
            telegram={
                "token": hello["tg_token"],
                "api_base_url": hello["tg_api_base_url"],
                "file_base_url": hello["tg_file_base_url"],
            },
            storage={"path": str(Path(tmp) / "bot.sqlite3")},
        )
        async with open_core(settings) as core:
            chat = _Counting(core.chat)
            pacer = Pacer(telegram_rules(), clock=core.clock)
            async with TelegramBot(
                settings.telegram,
                Services(chat, core.gatekeeper, pacer, core.clock),  # type: ignore[arg-type]
            ):
                plain_cpu, plain_wall = await _answer(conn, chat, PLAIN_USER)
                rss_before = _maxrss_mb()
                image_cpu, image_wall = await _answer(conn, chat, IMAGE_USER)
                rss_growth = _maxrss_mb() - rss_before
                conn.send({"op": "results"})
                results: dict[str, Any] = await recv(conn, timeout=30)
    conn.send({"op": "stop"})
    return {
        "plain_answer_cpu_s": round(plain_cpu, 3),
        "plain_answer_wall_s": round(plain_wall, 3),
        "image_answer_cpu_s": round(image_cpu, 3),
        "image_answer_wall_s": round(image_wall, 3),
        "peak_rss_growth_mb": round(rss_growth, 2),
        **results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=1.0, help="base64 megabytes (default 1)")
    parser.add_argument("--chunk", type=int, default=4096, help="characters per streamed chunk")
    args = parser.parse_args(argv)
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_fakes, args=(theirs, {"mb": args.mb, "chunk": args.chunk}), daemon=True
    )
    child.start()
    try:
        report = asyncio.run(_bot(ours))
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    report["picture_after_last_chunk_s"] = round(report["picture_after_last_chunk_s"], 3)
    texts = report.pop("texts")
    for name, value in report.items():
        print(f"{name:<28} {value}")
    print(f"{'image answer text':<28} {texts!r}")
    print("BENCH " + json.dumps({"bench": "chat_images", "pid": os.getpid(), **report}))
    ok = report["photos"] == 1 and not report["leaked"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
