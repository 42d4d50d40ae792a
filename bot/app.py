"""Composition root: builds everything from Settings and owns the service's lifecycle.

Only this module meets every concrete class. Each component gets its own slice of the
configuration through its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from telegram.error import InvalidToken, TelegramError

from bot.adapters import CometChatModel
from bot.config import Settings
from bot.core.chat import ChatConfig, ChatService
from bot.core.clock import SystemClock
from bot.core.pacing import Pacer, telegram_rules
from bot.providers.cometapi import CometAPI
from bot.store import Store, StoreError

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start; the message is one line for the operator."""


@dataclass(slots=True)
class Core:
    store: Store
    client: CometAPI
    chat: ChatService
    clock: SystemClock


def chat_config(settings: Settings) -> ChatConfig:
    chat = settings.chat
    return ChatConfig(
        default_model=chat.default_model,
        system_prompt=chat.system_prompt,
        context_tokens=chat.context_tokens,
        model_context_tokens=tuple(chat.model_context_tokens.items()),
        max_prompt_chars=chat.max_prompt_chars,
        models=tuple(chat.models),
    )


@contextlib.asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """The store, the CometAPI client and the chat service, closed in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(Store.open(settings.storage.path))
        except (StoreError, OSError) as exc:
            raise StartupError(f"cannot open the database {settings.storage.path}: {exc}") from exc
        api = settings.cometapi
        client = await stack.enter_async_context(
            CometAPI(
                api_key=api.api_key.get_secret_value(),
                base_url=api.base_url,
                read_timeout=api.timeout,
                stream_read_timeout=api.timeout,
                max_retries=api.max_retries,
            )
        )
        chat = ChatService(model=CometChatModel(client), store=store, config=chat_config(settings))
        yield Core(store=store, client=client, chat=chat, clock=SystemClock())


def _stop_event() -> asyncio.Event:
    """Set on SIGTERM or SIGINT, so the service stops taking work and shuts down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_service(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Run every configured platform until SIGTERM/SIGINT (or ``stop`` is set)."""
    from bot.platforms.telegram import TelegramBot

    stop = stop or _stop_event()
    if settings.discord.enabled and not settings.telegram.enabled:
        raise StartupError(
            "Discord support is not in this version yet; set [telegram] token to run the bot"
        )
    async with open_core(settings) as core, contextlib.AsyncExitStack() as platforms:
        if settings.discord.enabled:
            log.warning("discord: not supported in this version yet; [discord] token ignored")
        if settings.telegram.enabled:
            telegram = TelegramBot(
                settings.telegram,
                chat=core.chat,
                pacer=Pacer(telegram_rules(), clock=core.clock),
                clock=core.clock,
            )
            try:
                await platforms.enter_async_context(telegram)
            except InvalidToken as exc:
                raise StartupError("Telegram refused [telegram] token; check it") from exc
            except TelegramError as exc:
                raise StartupError(f"cannot reach Telegram: {exc.message}") from exc
        log.info("cometbot is running; stop it with Ctrl-C or SIGTERM")
        await stop.wait()
        log.info("stopping: finishing the replies in flight")
    return 0


async def run_console(settings: Settings) -> int:
    """Chat in this terminal with the same core (needs only the API key)."""
    from bot.platforms.console import Console

    async with open_core(settings) as core:
        return await Console(core.chat, clock=core.clock).run()
