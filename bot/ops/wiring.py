"""Builders from ``Settings`` sections to the operator-facing core objects, for ``bot.app``.

They keep the composition root short: ``access_policy(settings.access, settings.chat)``,
``limits_config(settings.limits, settings.access)`` and ``open_ops_server(...)``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from bot.config import AccessSettings, ChatSettings, HttpSettings, LimitsSettings
from bot.core.access.limits import LimitsConfig
from bot.core.access.policy import AccessPolicy
from bot.core.ports import StatsStore
from bot.ops.http import HealthCheck, OpsServer
from bot.ops.metrics import Metrics

__all__ = ["access_policy", "limits_config", "open_ops_server", "process_name"]


def process_name() -> str:
    """This process in the registry and in /healthz: ``host:pid``, unique while it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def access_policy(access: AccessSettings, chat: ChatSettings | None = None) -> AccessPolicy:
    """The allow-lists of ``[access]``, and who may change a group's model and persona
    (``[chat] group_settings``)."""
    return AccessPolicy.build(
        users=access.users,
        blocked_users=access.blocked_users,
        telegram_chats=access.telegram_chats,
        discord_guilds=access.discord_guilds,
        discord_channels=access.discord_channels,
        admins=access.admins,
        group_settings_open=chat is not None and chat.group_settings == "everyone",
    )


def limits_config(limits: LimitsSettings, access: AccessSettings) -> LimitsConfig:
    """``[limits]``, with the admins exempt when ``admins_exempt_from_limits``."""
    return LimitsConfig(
        chat_cooldown=limits.chat_cooldown_seconds,
        generation_cooldown=limits.generation_cooldown_seconds,
        daily_chat_tokens=limits.daily_chat_tokens,
        daily_imagine=limits.daily_imagine,
        daily_music=limits.daily_music,
        daily_video=limits.daily_video,
        daily_images=limits.daily_images,
        max_concurrent_tasks=limits.max_concurrent_tasks,
        exempt=frozenset(access.admins) if access.admins_exempt_from_limits else frozenset(),
    )


@asynccontextmanager
async def open_ops_server(
    http: HttpSettings,
    *,
    metrics: Metrics,
    store: StatsStore,
    platforms: Mapping[str, HealthCheck] | None = None,
    process: str | None = None,
    roles: Callable[[], Sequence[str]] | None = None,
) -> AsyncIterator[OpsServer | None]:
    """Serve /healthz and /metrics while the block runs; yields None when ``[http]`` is off.
    ``process`` and ``roles`` (this process's name and ``Roles.names``) go into /healthz.

    Platforms usually start after this: register their checks with
    :meth:`OpsServer.add_platform` once they are up.
    """
    if not http.enabled:
        yield None
        return

    async def refresh() -> None:
        await metrics.refresh(store)

    server = OpsServer(
        host=http.host,
        port=http.port,
        metrics=metrics,
        store=store.ping,
        platforms=platforms,
        before_scrape=refresh,
        process=process,
        roles=roles,
    )
    async with server:
        yield server
