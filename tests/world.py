"""The whole service on loopback: the real python-telegram-bot against the fake Telegram,
the real CometAPI client against the fake CometAPI, and a real SQLite file.

::

    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg) as svc:
            tg.inject_private_message("hi")
            ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import Core, open_core
from bot.config import DiscordSettings, Settings
from bot.core.pacing import Pacer, discord_rules, telegram_rules
from bot.platforms.common import Services
from bot.platforms.discord.bot import DiscordBot
from bot.platforms.telegram.bot import TelegramBot
from bot.platforms.telegram.render import render
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram import FakeTelegram


def settings_for(
    tmp_path: Path,
    comet: FakeCometAPI,
    tg: FakeTelegram | None = None,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    webhook: dict[str, Any] | None = None,
    **chat: Any,
) -> Settings:
    """Settings pointing at the fakes; ``sections`` adds others (``{"access": {...}}``),
    ``webhook`` the ``[telegram] webhook_*`` keys."""
    telegram: dict[str, Any] = {}
    if tg is not None:
        telegram = {
            "token": tg.token,
            "api_base_url": tg.api_base_url,
            "file_base_url": tg.file_base_url,
            **(webhook or {}),
        }
    return Settings(
        cometapi={
            "api_key": comet.api_key,
            "base_url": comet.base_url,
            "timeout": 5,
            "max_retries": 2,
        },
        telegram=telegram,
        storage={"path": str(tmp_path / "bot.sqlite3")},
        chat=chat,
        **(sections or {}),
    )


@dataclass
class TelegramService:
    core: Core
    bot: TelegramBot
    pacer: Pacer


@contextlib.asynccontextmanager
async def telegram_service(
    tmp_path: Path,
    comet: FakeCometAPI,
    tg: FakeTelegram,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    webhook: dict[str, Any] | None = None,
    receive: bool = True,
    **chat: Any,
) -> AsyncIterator[TelegramService]:
    settings = settings_for(tmp_path, comet, tg, sections=sections, webhook=webhook, **chat)
    async with open_core(settings) as core:
        pacer = Pacer(telegram_rules(), clock=core.clock)
        bot = TelegramBot(
            settings.telegram,
            Services(core.chat, core.gatekeeper, pacer, core.clock, voice=core.voice),
            receive=receive,
        )
        async with bot:
            yield TelegramService(core=core, bot=bot, pacer=pacer)


def rendered(markdown: str) -> str:
    """What Telegram shows for ``markdown``: the text part of the rendering."""
    return render(markdown)[0]


def chat_requests(comet: FakeCometAPI) -> list[dict[str, Any]]:
    return [r.json for r in comet.requests_to("/v1/chat/completions")]


def history_of(request: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


DISCORD_TOKEN = "discord-test-token"


def discord_settings_for(
    tmp_path: Path,
    comet: FakeCometAPI,
    dc: FakeDiscord,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    **chat: Any,
) -> Settings:
    """settings_for(...) with Discord on, pointed at ``dc`` through the config keys (so the
    adapter's own ``api_base_url``/``gateway_url`` handling is what reaches the fake)."""
    discord = DiscordSettings(
        token=DISCORD_TOKEN, api_base_url=dc.api_base_url, gateway_url=dc.gateway_url
    )
    settings = settings_for(tmp_path, comet, None, sections=sections, **chat)
    return settings.model_copy(update={"discord": discord})


@dataclass
class DiscordService:
    core: Core
    bot: DiscordBot
    pacer: Pacer


@contextlib.asynccontextmanager
async def discord_service(
    tmp_path: Path,
    comet: FakeCometAPI,
    dc: FakeDiscord,
    *,
    drain_timeout: float = 5.0,
    sections: dict[str, dict[str, Any]] | None = None,
    **chat: Any,
) -> AsyncIterator[DiscordService]:
    """The real core + DiscordBot (real discord.py) against ``dc``, ready to be talked to."""
    settings = discord_settings_for(tmp_path, comet, dc, sections=sections, **chat)
    async with open_core(settings) as core:
        pacer = Pacer(discord_rules(), clock=core.clock)
        bot = DiscordBot(
            settings.discord,
            Services(core.chat, core.gatekeeper, pacer, core.clock, voice=core.voice),
            guild_ready_timeout=0.05,
            drain_timeout=drain_timeout,
        )
        async with bot:
            yield DiscordService(core=core, bot=bot, pacer=pacer)
