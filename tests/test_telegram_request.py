"""AiohttpRequest: python-telegram-bot's HTTP layer on aiohttp, against a small local server.

The end-to-end Telegram tests already run every call through it (sends, edits, uploads,
downloads, long polling); these pin down the wire format and the failures PTB expects.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut

from bot.platforms.telegram.request import AiohttpRequest

TOKEN = "123456:SECRET-token-value"
ME = {"id": 1, "is_bot": True, "first_name": "Bot", "username": "the_bot"}


class Server:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.delay = 0.0
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "content_type": request.content_type,
            "user_agent": request.headers.get("User-Agent", ""),
        }
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            parts: dict[str, Any] = {}
            async for part in reader:
                parts[part.name or ""] = (part.filename, await part.read())  # type: ignore[union-attr]
            entry["parts"] = parts
        elif request.method == "POST":
            entry["form"] = dict(await request.post())
        self.seen.append(entry)
        if request.path.endswith("/getMe"):
            return web.json_response({"ok": True, "result": ME})
        if request.path.endswith("/sendPhoto"):
            message = {"message_id": 7, "date": 0, "chat": {"id": 42, "type": "private"}}
            return web.json_response({"ok": True, "result": message})
        if request.path.startswith("/file/"):
            return web.Response(body=b"\x89PNG-bytes")
        return web.json_response({"ok": True, "result": True})


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.base = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_calls_go_as_forms_with_json_values_and_ptbs_user_agent(server: Server) -> None:
    bot = Bot(TOKEN, base_url=f"{server.base}/bot", request=AiohttpRequest(4))
    async with bot:
        assert await bot.set_my_commands([("help", "What this bot can do")])
    call = server.seen[-1]
    assert call["path"] == f"/bot{TOKEN}/setMyCommands"
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert json.loads(call["form"]["commands"]) == [
        {"command": "help", "description": "What this bot can do"}
    ]
    assert call["user_agent"].startswith("python-telegram-bot")


async def test_files_go_as_multipart_beside_the_other_fields(server: Server) -> None:
    bot = Bot(TOKEN, base_url=f"{server.base}/bot", request=AiohttpRequest(4))
    async with bot:
        sent = await bot.send_photo(42, InputFile(b"\x89PNG-image", filename="a.png"))
    assert sent.message_id == 7
    parts = server.seen[-1]["parts"]
    assert parts["chat_id"] == (None, b"42")
    [(filename, content)] = [v for v in parts.values() if v[0] is not None]
    assert filename == "a.png" and content == b"\x89PNG-image"


async def test_downloads_and_reinitialising_after_shutdown(server: Server) -> None:
    request = AiohttpRequest(2)
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{server.base}/file/x.png", "GET")
    await request.initialize()  # PTB may start a bot again after stopping it
    try:
        assert await request.retrieve(f"{server.base}/file/x.png") == b"\x89PNG-bytes"
    finally:
        await request.shutdown()


async def test_a_slow_answer_is_timed_out(server: Server) -> None:
    server.delay = 0.5
    request = AiohttpRequest(2, read_timeout=0.05)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{server.base}/bot{TOKEN}/sendMessage", None)
    finally:
        await request.shutdown()


async def test_a_refused_connection_is_a_network_error_without_the_token() -> None:
    request = AiohttpRequest(2)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{free_port()}/bot{TOKEN}/getMe", None)
    finally:
        await request.shutdown()
    assert not isinstance(caught.value, TimedOut)
    assert "SECRET" not in str(caught.value)
