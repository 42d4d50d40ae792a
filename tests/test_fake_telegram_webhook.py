"""The fake Telegram's webhook methods, driven by the real python-telegram-bot: setWebhook's
checks, getUpdates refused while a webhook is set, and delivery with the secret header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Conflict

from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_webhook import SECRET_HEADER

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

TOKEN = "123456:TEST"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.api_base_url, base_file_url=tg.file_base_url) as b:
        yield b


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[str | None, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        self.posts.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=self.status)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "http://bot.example.com/hook"}, "Https url must be provided"),
        ({"url": "https://bot.example.com:9000/hook"}, "Webhook can be set up only on ports"),
        (
            {"url": "https://bot.example.com/hook", "secret_token": "has:colon"},
            "Secret token contains unallowed characters",
        ),
        ({"url": "https://bot.example.com/hook", "secret_token": "x" * 257}, "too long"),
    ],
)
async def test_set_webhook_refuses_what_telegram_refuses(
    tg: FakeTelegram, bot: Bot, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(BadRequest, match=f"(?i){error}"):  # PTB capitalizes the description
        await bot.set_webhook(**kwargs)
    assert tg.webhook is None


async def test_set_get_and_delete_webhook(tg: FakeTelegram, bot: Bot) -> None:
    url = "https://bot.example.com:8443/tg"
    assert await bot.set_webhook(url, secret_token="abc_-9", allowed_updates=["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates, info.pending_update_count) == (url, ("message",), 0)
    assert tg.webhook == {"url": url, "secret_token": "abc_-9", "max_connections": 40}
    tg.inject_private_message("kept")
    assert await bot.delete_webhook()  # without drop_pending_updates: kept
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("", 1)
    assert [u.message.text for u in await bot.get_updates(timeout=0) if u.message] == ["kept"]


async def test_get_updates_is_refused_while_a_webhook_is_set(tg: FakeTelegram, bot: Bot) -> None:
    parked = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.calls("getUpdates"))
    await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
    with pytest.raises(Conflict, match="terminated by setWebhook request"):
        await parked  # the long poll in flight ends
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_delivery_posts_with_the_secret_and_keeps_what_was_not_accepted(
    tg: FakeTelegram, bot: Bot
) -> None:
    async with Receiver(status=500) as receiver:
        await bot.set_webhook(receiver.url, secret_token="abc", allowed_updates=["message"])
        tg.inject_update({"callback_query": {"id": "1", "data": "x"}})  # not allowed: never posted
        tg.inject_private_message("first")
        assert await tg.deliver_webhook() == 500
        assert tg.pending_updates == 1  # Telegram retries what failed
        assert "500" in ((await bot.get_webhook_info()).last_error_message or "")
        receiver.status = 200
        assert await tg.deliver_webhook(secret=None) == 200
        assert tg.pending_updates == 0
        assert [secret for secret, _ in receiver.posts] == ["abc", None]
        assert receiver.posts[1][1]["message"]["text"] == "first"
    with pytest.raises(RuntimeError, match="no pending update"):
        await tg.deliver_webhook()
