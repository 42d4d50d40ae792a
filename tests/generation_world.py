"""The generation side of the service on loopback: real python-telegram-bot against the fake
Telegram (or real discord.py against the fake Discord), the real CometAPI client against the
fake CometAPI, a real SQLite file.

Two ways to run it, for each platform:

* :func:`generation_service` / :func:`discord_generation_service` wire the pieces like
  ``bot.app.run_service`` does, but may use a fast pacer (tests then disable the fake's
  flood limits too) so a test does not spend seconds on the platform's per-chat budget;
* :func:`running_service` / :func:`running_discord_service` run ``bot.app.run_service``
  itself (real pacing, real wiring), for the restart tests: stop it, start it again on the
  same database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import Core, open_core, platform_services, run_service
from bot.config import DiscordSettings, Settings
from bot.core.models import Platform
from bot.core.pacing import (
    DISCORD_CHANNEL,
    TELEGRAM_GROUP,
    TELEGRAM_PRIVATE,
    Pacer,
    PacerRules,
    Window,
    discord_rules,
    telegram_rules,
)
from bot.platforms.discord.bot import DiscordBot
from bot.platforms.telegram.bot import TelegramBot
from bot.store import Store
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.telegram import FakeTelegram

FAST_GENERATION: dict[str, Any] = {
    "poll_first_interval": 0.05,
    "poll_max_interval": 0.2,
    "poll_growth": 1.5,
    "poll_jitter": 0.0,
    "poll_batch_window": 0.0,
    "progress_edit_interval": 0.0,
    "mj_deadline": 30.0,
    "suno_deadline": 30.0,
    "kling_deadline": 30.0,
}


def fast_rules() -> PacerRules:
    """Telegram's lane kinds with tiny windows: order and pacing logic stay, the waits go."""
    tiny = (Window(1, 0.01),)
    return PacerRules(lanes={TELEGRAM_PRIVATE: tiny, TELEGRAM_GROUP: tiny})


def generation_settings(
    tmp_path: Path,
    comet: FakeCometAPI,
    tg: FakeTelegram,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    location: str | None = None,
    **generation: Any,
) -> Settings:
    """``sections`` adds other sections (``{"access": {...}, "limits": {...}}``);
    ``location`` is the database (default: a SQLite file in ``tmp_path``)."""
    return Settings(
        cometapi={
            "api_key": comet.api_key,
            "base_url": comet.base_url,
            "timeout": 5,
            "max_retries": 1,
        },
        telegram={
            "token": tg.token,
            "api_base_url": tg.api_base_url,
            "file_base_url": tg.file_base_url,
        },
        storage=storage_section(tmp_path, location),
        generation={**FAST_GENERATION, **generation},
        **(sections or {}),
    )


def storage_section(tmp_path: Path, location: str | None) -> dict[str, str]:
    if location is not None and location.startswith("postgresql://"):
        return {"url": location}
    return {"path": location or str(tmp_path / "bot.sqlite3")}


@dataclass
class GenerationWorld:
    core: Core
    bot: TelegramBot
    pacer: Pacer


@contextlib.asynccontextmanager
async def generation_service(
    tmp_path: Path,
    comet: FakeCometAPI,
    tg: FakeTelegram,
    *,
    fast: bool = True,
    sections: dict[str, dict[str, Any]] | None = None,
    location: str | None = None,
    **generation: Any,
) -> AsyncIterator[GenerationWorld]:
    """``run_service``'s Telegram + poller wiring, with a fast pacer unless ``fast=False``."""
    settings = generation_settings(
        tmp_path, comet, tg, sections=sections, location=location, **generation
    )
    async with open_core(settings) as core:
        pacer = Pacer(fast_rules() if fast else telegram_rules(), clock=core.clock)
        bot = TelegramBot(
            settings.telegram, platform_services(core, settings, Platform.TELEGRAM, pacer)
        )
        core.outboxes[Platform.TELEGRAM] = bot.outbox  # before polling starts, as in run_service
        async with bot, core.tasks:
            yield GenerationWorld(core=core, bot=bot, pacer=pacer)


@contextlib.asynccontextmanager
async def running_service(settings: Settings, tg: FakeTelegram) -> AsyncIterator[None]:
    """``bot.app.run_service`` in a task, until the block ends (then a clean stop)."""
    stop = asyncio.Event()
    polls = len(tg.calls("getUpdates"))
    service = asyncio.create_task(run_service(settings, stop=stop))
    try:
        await tg.wait_for(lambda: len(tg.calls("getUpdates")) > polls or service.done(), 10)
        if service.done():
            service.result()  # raise the start-up error
        yield
    finally:
        stop.set()
        await service


@contextlib.asynccontextmanager
async def open_store(tmp_path: Path, location: str | None = None) -> AsyncIterator[Store]:
    """A second connection to the service's database (SQLite's WAL, PostgreSQL's pool:
    reads see committed rows)."""
    async with Store.open(location or str(tmp_path / "bot.sqlite3")) as store:
        yield store


def buttons_of(message: Any) -> list[dict[str, Any]]:
    """The inline buttons of a stored fake-Telegram message, row by row flattened."""
    markup = message.reply_markup or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def button_texts(message: Any) -> list[str]:
    return [b["text"] for b in buttons_of(message)]


def button_data(message: Any, text: str) -> str:
    return next(b["callback_data"] for b in buttons_of(message) if b["text"] == text)


# -- Discord ------------------------------------------------------------------------------------

DISCORD_TOKEN = "discord-generation-token"


def fast_discord_rules() -> PacerRules:
    """Discord's channel lane with a tiny window (the fake's rate limits go off with it)."""
    return PacerRules(lanes={DISCORD_CHANNEL: (Window(1, 0.01),)})


def discord_generation_settings(
    tmp_path: Path,
    comet: FakeCometAPI,
    dc: FakeDiscord,
    *,
    sections: dict[str, dict[str, Any]] | None = None,
    **generation: Any,
) -> Settings:
    """Settings with Discord on and pointed at ``dc``; ``sections`` adds others
    (``{"access": {...}, "limits": {...}}``)."""
    return Settings(
        cometapi={
            "api_key": comet.api_key,
            "base_url": comet.base_url,
            "timeout": 5,
            "max_retries": 1,
        },
        discord=DiscordSettings(
            token=DISCORD_TOKEN, api_base_url=dc.api_base_url, gateway_url=dc.gateway_url
        ),
        storage={"path": str(tmp_path / "bot.sqlite3")},
        generation={**FAST_GENERATION, **generation},
        **(sections or {}),
    )


@dataclass
class DiscordGenerationWorld:
    core: Core
    bot: DiscordBot
    pacer: Pacer


@contextlib.asynccontextmanager
async def discord_generation_service(
    tmp_path: Path,
    comet: FakeCometAPI,
    dc: FakeDiscord,
    *,
    fast: bool = True,
    sections: dict[str, dict[str, Any]] | None = None,
    **generation: Any,
) -> AsyncIterator[DiscordGenerationWorld]:
    """``run_service``'s Discord + poller wiring, with a fast pacer unless ``fast=False``."""
    settings = discord_generation_settings(tmp_path, comet, dc, sections=sections, **generation)
    async with open_core(settings) as core:
        pacer = Pacer(fast_discord_rules() if fast else discord_rules(), clock=core.clock)
        bot = DiscordBot(
            settings.discord,
            platform_services(core, settings, Platform.DISCORD, pacer),
            guild_ready_timeout=0.05,
        )
        async with bot:
            core.outboxes[Platform.DISCORD] = bot.outbox
            async with core.tasks:
                yield DiscordGenerationWorld(core=core, bot=bot, pacer=pacer)


@contextlib.asynccontextmanager
async def running_discord_service(settings: Settings, dc: FakeDiscord) -> AsyncIterator[None]:
    """``bot.app.run_service`` with Discord in a task, until the block ends (then a clean
    stop); ready once it has connected to the fake's gateway."""
    stop = asyncio.Event()
    connections = dc.gateway.connections
    service = asyncio.create_task(run_service(settings, stop=stop))
    try:
        await dc.wait_for(
            lambda: (dc.gateway.connections > connections and dc.connected) or service.done(),
            timeout=10,
        )
        if service.done():
            service.result()  # raise the start-up error
        yield
    finally:
        stop.set()
        await service


def discord_labels(message: FakeMessage) -> list[str]:
    return [str(b.get("label", "")) for b in message.buttons()]


def discord_custom_id(message: FakeMessage, label: str) -> str:
    return next(str(b["custom_id"]) for b in message.buttons() if b.get("label") == label)
