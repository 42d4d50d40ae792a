"""Starting the platforms inside :func:`bot.app.run_service`.

With SQLite the one process runs every configured platform. With PostgreSQL several
processes share the work (design §9): Telegram allows one receiver per bot, and every
chat's pacing must live in one process, so Telegram is a *role* — whichever process holds
its advisory lock runs it, the others stand by and one takes over within seconds of the
holder's end (:class:`~bot.core.roles.RoleKeeper`). Discord is divided by shards
(``[discord] shard_count``/``shard_ids``), each process running its own; unsharded, it is a
role too, since two gateway sessions of one bot would each get every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from telegram.error import InvalidToken, TelegramError

from bot.config import Settings
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import Platform
from bot.core.roles import DISCORD, TELEGRAM, RoleKeeper
from bot.store.coordination import Coordination

if TYPE_CHECKING:
    from bot.app import Core
    from bot.ops.http import OpsServer
    from bot.platforms.discord.bot import DiscordBot
    from bot.platforms.telegram.bot import TelegramBot

__all__ = ["StartupError", "start_discord", "start_telegram"]

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The service cannot start; the message is one line for the operator."""


def _telegram_bot(core: Core, settings: Settings) -> TelegramBot:
    from bot.app import platform_services
    from bot.platforms.telegram.bot import TelegramBot

    return TelegramBot(
        settings.telegram,
        platform_services(core, settings, Platform.TELEGRAM),
        drain_timeout=SHUTDOWN.handlers,
    )


async def _enter_telegram(core: Core, settings: Settings, bot: TelegramBot) -> None:
    # Before the start: queued updates are handled as soon as receiving begins.
    core.outboxes[Platform.TELEGRAM] = bot.outbox
    try:
        await bot.__aenter__()
    except BaseException as exc:
        core.outboxes.pop(Platform.TELEGRAM, None)
        if isinstance(exc, InvalidToken):
            raise StartupError("Telegram refused [telegram] token; check it") from exc
        if isinstance(exc, TelegramError):
            raise StartupError(f"cannot reach Telegram: {exc.message}") from exc
        if isinstance(exc, OSError):  # webhook mode: the port is taken, the address not ours
            raise StartupError(
                f"cannot serve the Telegram webhook on {settings.telegram.webhook_listen}: "
                f"{exc.strerror or exc}"
            ) from exc
        raise


async def start_telegram(
    core: Core,
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    ops: OpsServer | None,
    coordination: Coordination,
    *,
    shared: bool,
) -> None:
    """Run Telegram in this process (one process), or take turns at it (``shared``)."""
    if not shared:
        bot = _telegram_bot(core, settings)
        await _enter_telegram(core, settings, bot)
        stack.push_async_exit(bot.__aexit__)
        core.roles.gain(TELEGRAM)
        if ops is not None:
            ops.add_platform("telegram", bot.healthy)
        return
    held: list[TelegramBot] = []

    async def start() -> None:
        bot = _telegram_bot(core, settings)
        await _enter_telegram(core, settings, bot)
        held.append(bot)
        await core.tasks.sweep()  # results that waited for a Telegram process

    async def stop() -> None:
        core.outboxes.pop(Platform.TELEGRAM, None)
        while held:
            await held.pop().__aexit__(None, None, None)

    _keep_role(core, stack, coordination, TELEGRAM, start=start, stop=stop)
    if ops is not None:
        # A standby is healthy: it is ready to take over.
        ops.add_platform("telegram", lambda: not held or held[-1].healthy())


async def start_discord(
    core: Core,
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    ops: OpsServer | None,
    coordination: Coordination,
    *,
    shared: bool,
) -> None:
    """Run this process's Discord shards; unsharded with other processes on the database,
    Discord is a role like Telegram (two gateway sessions would answer everything twice)."""
    if not shared or settings.discord.shard_count > 0:
        bot = await _enter_discord(core, settings)
        stack.push_async_exit(bot.__aexit__)
        _gain_discord(core, bot)
        if ops is not None:
            ops.add_platform("discord", bot.healthy)
        return
    held: list[DiscordBot] = []

    async def start() -> None:
        bot = await _enter_discord(core, settings)
        held.append(bot)
        await core.tasks.sweep()

    async def stop() -> None:
        core.outboxes.pop(Platform.DISCORD, None)
        while held:
            await held.pop().__aexit__(None, None, None)

    _keep_role(core, stack, coordination, DISCORD, start=start, stop=stop)
    if ops is not None:
        ops.add_platform("discord", lambda: not held or held[-1].healthy())


async def _enter_discord(core: Core, settings: Settings) -> DiscordBot:
    from bot.app import platform_services
    from bot.platforms.discord.bot import DiscordBot, DiscordStartError

    bot = DiscordBot(
        settings.discord,
        platform_services(core, settings, Platform.DISCORD),
        drain_timeout=SHUTDOWN.handlers,
    )
    # Before the start: interactions may arrive while discord.py waits for guilds.
    core.outboxes[Platform.DISCORD] = bot.outbox
    try:
        await bot.__aenter__()
    except BaseException as exc:
        core.outboxes.pop(Platform.DISCORD, None)
        if isinstance(exc, DiscordStartError):  # bad token, unreachable REST API or gateway
            raise StartupError(str(exc)) from exc
        raise
    return bot


def _gain_discord(core: Core, bot: DiscordBot) -> None:
    shards = bot.shards
    core.roles.gain(DISCORD, ",".join(map(str, shards.ids)) if shards.sharded else "")


def _keep_role(
    core: Core,
    stack: contextlib.AsyncExitStack,
    coordination: Coordination,
    role: str,
    *,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> None:
    """Take turns at ``role`` with the other processes until the service stops."""
    keeper = RoleKeeper(
        role,
        coordination.role_lock(role),
        start=start,
        stop=stop,
        roles=core.roles,
        clock=core.clock,
    )
    stopping = asyncio.Event()
    task = asyncio.get_running_loop().create_task(keeper.run(stopping))

    async def end(*_: object) -> None:
        stopping.set()
        await task

    stack.push_async_exit(end)
