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
from typing import TYPE_CHECKING, Protocol

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


class _Running(Protocol):
    """A started platform adapter (``TelegramBot``, ``DiscordBot``)."""

    def healthy(self) -> bool: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


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

    async def enter() -> TelegramBot:
        return await _enter_telegram(core, settings)

    await _run_platform(
        core,
        stack,
        ops,
        coordination,
        role=TELEGRAM,
        platform=Platform.TELEGRAM,
        enter=enter,
        shared=shared,
    )


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
    sharded = settings.discord.shard_count > 0

    async def enter() -> DiscordBot:
        bot = await _enter_discord(core, settings)
        if sharded:  # this process's own shards: not a role it may lose
            core.roles.gain(DISCORD, ",".join(map(str, bot.shards.ids)))
        return bot

    await _run_platform(
        core,
        stack,
        ops,
        coordination,
        role=DISCORD,
        platform=Platform.DISCORD,
        enter=enter,
        shared=shared and not sharded,
    )


async def _run_platform(
    core: Core,
    stack: contextlib.AsyncExitStack,
    ops: OpsServer | None,
    coordination: Coordination,
    *,
    role: str,
    platform: Platform,
    enter: Callable[[], Awaitable[_Running]],
    shared: bool,
) -> None:
    """Start a platform for the whole run (``shared`` false), or keep it as a role this
    process takes turns at: started when the role is taken, stopped when it is lost."""
    if not shared:
        bot = await enter()
        stack.push_async_callback(bot.__aexit__)  # both adapters ignore the exception
        if not core.roles.holds(role):
            core.roles.gain(role)
        if ops is not None:
            ops.add_platform(role, bot.healthy)
        return
    held: list[_Running] = []

    async def start() -> None:
        held.append(await enter())
        await core.tasks.sweep()  # results that waited for a process holding the platform

    async def stop() -> None:
        core.outboxes.pop(platform, None)
        while held:
            await held.pop().__aexit__(None, None, None)

    _keep_role(core, stack, coordination, role, start=start, stop=stop)
    if ops is not None:
        # A standby is healthy: it is ready to take over.
        ops.add_platform(role, lambda: not held or held[-1].healthy())


async def _enter_telegram(core: Core, settings: Settings) -> TelegramBot:
    from bot.app import platform_services
    from bot.platforms.telegram.bot import TelegramBot

    bot = TelegramBot(
        settings.telegram,
        platform_services(core, settings, Platform.TELEGRAM),
        drain_timeout=SHUTDOWN.handlers,
    )
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
    return bot


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
