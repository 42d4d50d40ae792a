"""The send/edit budget of each platform, shared by every concurrent reply and task.

- :mod:`~bot.core.pacing.rules`: :class:`Priority`, :class:`Window`, :class:`PacerRules` and
  the Telegram and Discord rules (data: what each platform allows).
- :mod:`~bot.core.pacing.pacer`: :class:`Pacer`, which grants slots by those rules, takes 429
  penalties, and makes a platform call within the budget (:meth:`Pacer.call`: the one place
  the "slot, call, penalize and retry on 429" rule is written).
- :mod:`~bot.core.pacing.lanes`: its bookkeeping (sliding windows, queues, :class:`Ticket`).
"""

from __future__ import annotations

from bot.core.pacing.lanes import Ticket
from bot.core.pacing.pacer import Pacer
from bot.core.pacing.rules import (
    DISCORD_CHANNEL,
    DISCORD_CHANNEL_WINDOWS,
    DISCORD_GLOBAL_WINDOWS,
    TELEGRAM_GLOBAL_WINDOWS,
    TELEGRAM_GROUP,
    TELEGRAM_GROUP_WINDOWS,
    TELEGRAM_PRIVATE,
    TELEGRAM_PRIVATE_WINDOWS,
    PacerRules,
    Priority,
    Window,
    discord_rules,
    telegram_rules,
)

__all__ = [
    "DISCORD_CHANNEL",
    "DISCORD_CHANNEL_WINDOWS",
    "DISCORD_GLOBAL_WINDOWS",
    "TELEGRAM_GLOBAL_WINDOWS",
    "TELEGRAM_GROUP",
    "TELEGRAM_GROUP_WINDOWS",
    "TELEGRAM_PRIVATE",
    "TELEGRAM_PRIVATE_WINDOWS",
    "Pacer",
    "PacerRules",
    "Priority",
    "Ticket",
    "Window",
    "discord_rules",
    "telegram_rules",
]
