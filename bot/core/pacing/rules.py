"""What a :class:`~bot.core.pacing.Pacer` enforces: priorities, windows and each platform's rules.

The rules are data: sliding windows ("at most ``count`` grants in any ``per`` seconds") per
lane kind, plus windows across all lanes together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DISCORD_CHANNEL",
    "DISCORD_CHANNEL_WINDOWS",
    "DISCORD_GLOBAL_WINDOWS",
    "TELEGRAM_GLOBAL_WINDOWS",
    "TELEGRAM_GROUP",
    "TELEGRAM_GROUP_WINDOWS",
    "TELEGRAM_PRIVATE",
    "TELEGRAM_PRIVATE_WINDOWS",
    "PacerRules",
    "Priority",
    "Window",
    "discord_rules",
    "telegram_rules",
]


class Priority(IntEnum):
    """Lower goes first. Within one priority requests are served first come, first served."""

    URGENT = 0
    """A reply's first message, a new continuation message, a sealed or final text."""
    EDIT = 1
    """An intermediate edit of a growing message."""
    BACKGROUND = 2
    """Nice-to-have calls such as typing indicators, when they are paced at all."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``count`` grants in any span of ``per`` seconds.

    With ``holds`` set to :attr:`Priority.EDIT`, the window counts every grant but only holds
    back requests of that priority or lower: a smooth pace for edits that leaves room for
    first messages, instead of bursting into a long window and then stalling.
    """

    count: int
    per: float
    holds: Priority = Priority.URGENT

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0:
            raise ValueError(f"a window needs count >= 1 and per > 0, got {self}")


@dataclass(frozen=True, slots=True)
class PacerRules:
    """Windows per lane kind plus windows over every lane together."""

    lanes: Mapping[str, tuple[Window, ...]]
    global_windows: tuple[Window, ...] = ()


TELEGRAM_PRIVATE = "tg_private"
TELEGRAM_GROUP = "tg_group"
DISCORD_CHANNEL = "dc_channel"

# Values sit strictly inside what Telegram (and the fake Bot API) enforce: 1 message/s per chat
# with a burst of 3, 20 per rolling minute per group, 30 per rolling second overall.
TELEGRAM_PRIVATE_WINDOWS = (Window(1, 1.1),)
# Group edits keep a steady 1 per 4 s (15/min) so a long answer never exhausts the
# minute and stalls for 40 s, and first or final messages still find room 1.1 s apart.
TELEGRAM_GROUP_WINDOWS = (Window(1, 1.1), Window(18, 60.0), Window(1, 4.0, Priority.EDIT))
# A burst of 25 may go at once (every chat's first message), but no 1.3 s span holds more
# than 28: an event-loop stall of up to 0.3 s can bunch grants together on the way to
# Telegram, and its rolling second still sees at most 28 of its 30 (measured: 10-18 429s at
# 200 chats with the 1 s window alone, none with both).
TELEGRAM_GLOBAL_WINDOWS = (Window(25, 1.0), Window(28, 1.3))
# Discord: about 5 per 5 s per channel (community-observed) and 50 requests/s per bot.
DISCORD_CHANNEL_WINDOWS = (Window(4, 5.0), Window(1, 1.5, Priority.EDIT))
# Discord allows 50 requests/s per bot. As on Telegram, the second window keeps a burst
# delayed by an event-loop stall from meeting the next one inside Discord's second.
DISCORD_GLOBAL_WINDOWS = (Window(40, 1.0), Window(45, 1.3))


def telegram_rules() -> PacerRules:
    """Rules for Telegram: lane kinds :data:`TELEGRAM_PRIVATE` and :data:`TELEGRAM_GROUP`."""
    return PacerRules(
        lanes={TELEGRAM_PRIVATE: TELEGRAM_PRIVATE_WINDOWS, TELEGRAM_GROUP: TELEGRAM_GROUP_WINDOWS},
        global_windows=TELEGRAM_GLOBAL_WINDOWS,
    )


def discord_rules(share: float = 1.0) -> PacerRules:
    """Rules for Discord: lane kind :data:`DISCORD_CHANNEL` (channels, threads, DMs).

    ``share`` is this process's fraction of the bot's overall budget when several processes
    run its shards (own shards / shard count): Discord's 50 requests/s are per bot, not per
    process, so each global window keeps that fraction of its grants (at least one). The
    per-channel windows stay whole: a channel is served by the one process owning its shard.
    """
    if not 0 < share <= 1:
        raise ValueError(f"a budget share is in (0, 1], got {share}")
    return PacerRules(
        lanes={DISCORD_CHANNEL: DISCORD_CHANNEL_WINDOWS},
        global_windows=tuple(
            Window(max(1, int(w.count * share)), w.per, w.holds) for w in DISCORD_GLOBAL_WINDOWS
        ),
    )
