"""Telegram's webhook mode beside long polling: the real python-telegram-bot serving its webhook
on 127.0.0.1, the fake Bot API posting updates to it as Telegram does; receiving switched on and
off apart from start-up (a role a process may gain later); the configuration keys."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import ConfigError, TelegramSettings, load_settings
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.world import chat_requests, rendered, telegram_service

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = 42
SECRET = "s3cret_token-OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_keys(path: str = "/tg/hook") -> dict[str, Any]:
    port = free_port()
    return {
        "webhook_url": f"http://127.0.0.1:{port}{path}",
        "webhook_secret": SECRET,
        "webhook_listen": f"127.0.0.1:{port}",
    }


async def answered(tg: FakeTelegram, text: str) -> None:
    expected = rendered(text)
    await tg.wait_for(lambda: any(m.text == expected for m in tg.messages(USER)), timeout=15)


# -- webhook mode, end to end ----------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_private_message_posted_to_the_webhook_is_answered(tmp_path: Path) -> None:
    keys = webhook_keys()
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Hello ", "there."])
        async with telegram_service(tmp_path, comet, tg, webhook=keys) as service:
            assert service.bot.receiving and service.bot.healthy()
            assert tg.webhook is not None
            assert tg.webhook["url"] == keys["webhook_url"]
            assert tg.webhook["secret_token"] == SECRET
            assert tg.allowed_updates == ["message", "callback_query"]
            (set_webhook,) = tg.calls("setWebhook")
            assert set_webhook.params["drop_pending_updates"] is False
            tg.inject_private_message("hi", user_id=USER)
            assert await tg.deliver_webhook() == 200
            await answered(tg, "Hello there.")
            assert tg.pending_updates == 0
        # Neither polled nor deleted: a standby may take the same URL over.
        assert tg.calls("getUpdates") == [] and tg.calls("deleteWebhook") == []
        assert tg.webhook is not None


@pytest.mark.e2e
@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_a_post_without_the_right_secret_gets_403_and_no_answer(
    tmp_path: Path, secret: str | None
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Only once."])
        async with telegram_service(tmp_path, comet, tg, webhook=webhook_keys()):
            tg.inject_private_message("hi", user_id=USER)
            assert await tg.deliver_webhook(secret=secret) == 403
            assert await tg.deliver_webhook(secret=secret) == 403
            assert tg.pending_updates == 1  # Telegram keeps what the webhook refused
            assert await tg.deliver_webhook() == 200
            await answered(tg, "Only once.")
            await tg.wait_idle(quiet=0.3)
        # Had a refused post been handled, there would be more than one answer.
        assert [m.text for m in tg.messages(USER)] == [rendered("Only once.")]
        assert len(chat_requests(comet)) == 1


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_receiving_starts_and_stops_apart_from_start_up(tmp_path: Path, mode: str) -> None:
    webhook = webhook_keys() if mode == "webhook" else None

    async def deliver() -> None:
        if webhook is not None:
            assert await tg.deliver_webhook() == 200

    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["First."])
        comet.script_chat(tokens=["Second."])
        async with telegram_service(tmp_path, comet, tg, webhook=webhook, receive=False) as service:
            bot = service.bot
            # Started (it can send), but not receiving: nothing polled, no webhook set.
            assert tg.calls("getMe") and tg.calls("setMyCommands")
            assert not bot.receiving and not bot.healthy()
            assert tg.calls("getUpdates") == [] and tg.calls("setWebhook") == []
            tg.inject_private_message("one", user_id=USER)

            await bot.start_receiving()
            await bot.start_receiving()  # already receiving: nothing happens
            assert bot.receiving
            await deliver()
            await answered(tg, "First.")

            await bot.stop_receiving()
            assert not bot.receiving
            tg.inject_private_message("two", user_id=USER)
            if webhook is not None:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await tg.deliver_webhook()  # nobody listens any more
                assert tg.webhook is not None  # and it stays registered
            assert tg.pending_updates == 1  # not fetched while not receiving

            await bot.start_receiving()
            await deliver()
            await answered(tg, "Second.")
            assert tg.pending_updates == 0
        # Each start set the webhook again (webhook) or made sure there was none (polling).
        assert len(tg.calls("setWebhook" if webhook else "deleteWebhook")) == 2


@pytest.mark.e2e
async def test_polling_after_webhook_mode_deletes_the_webhook_and_keeps_pending_updates(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Polled."])
        async with telegram_service(tmp_path, comet, tg, webhook=webhook_keys()):
            assert tg.webhook is not None
        tg.inject_private_message("while nobody listened", user_id=USER)
        async with telegram_service(tmp_path, comet, tg):
            await answered(tg, "Polled.")
            assert tg.webhook is None
        (delete,) = tg.calls("deleteWebhook")
        assert not delete.params.get("drop_pending_updates")
        # The webhook was gone before the first getUpdates (none was refused for it).
        assert tg.calls("getUpdates")
        assert not [c for c in tg.calls("getUpdates") if "webhook" in (c.description or "")]


# -- configuration -----------------------------------------------------------------------------


def test_no_webhook_url_means_long_polling() -> None:
    settings = TelegramSettings()
    assert not settings.webhook
    assert settings.webhook_listen == "0.0.0.0:8443"


def test_webhook_keys_load_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[telegram]\n"
        'webhook_url = "https://bot.example.com:8443/tg/updates"\n'
        f'webhook_secret = "{SECRET}"\n'
        'webhook_listen = "[::]:9000"\n',
        encoding="utf-8",
    )
    settings = load_settings(path).telegram
    assert settings.webhook and settings.webhook_path == "/tg/updates"
    assert settings.webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            'webhook_url = "https://bot.example.com/tg"',
            "[telegram]: webhook_url needs webhook_secret",
        ),
        (
            'webhook_url = "http://bot.example.com/tg"\nwebhook_secret = "abc"',
            "[telegram] webhook_url: must be https",
        ),
        (
            'webhook_url = "https://bot.example.com:9000/tg"\nwebhook_secret = "abc"',
            "[telegram] webhook_url: Telegram calls webhooks on ports 443, 80, 88 and 8443 only",
        ),
        ('webhook_url = "/tg"\nwebhook_secret = "abc"', "[telegram] webhook_url: must be a full"),
        (
            'webhook_url = "https://b.example.com/tg"\nwebhook_secret = "has space"',
            "[telegram] webhook_secret: must be 1-256 characters of A-Z, a-z, 0-9, _ and - only",
        ),
        (f'webhook_secret = "{"x" * 257}"', "[telegram] webhook_secret: must be 1-256"),
        ('webhook_listen = "8443"', '[telegram] webhook_listen: must be "host:port"'),
        ('webhook_listen = "0.0.0.0:99999"', '[telegram] webhook_listen: must be "host:port"'),
    ],
)
def test_bad_webhook_keys_give_one_clear_line(tmp_path: Path, lines: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[telegram]\n{lines}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert "has space" not in message  # a secret is never echoed


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_is_allowed_for_a_loopback_host_only(host: str) -> None:
    settings = TelegramSettings(webhook_url=f"http://{host}:8080/tg", webhook_secret="abc")
    assert settings.webhook and settings.webhook_path == "/tg"
