"""A user's daily use: the counters' kinds, the quota kinds, the /usage text, durations.

The counters live in the store (``usage_daily``, one row per user, UTC day and
:class:`UsageKind`); :mod:`bot.core.access.limits` enforces the limits on them and fills a
:class:`UserUsage`. This module only names and words them, so /usage, /stats and the limits'
refusals say the same things.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["QUOTA_KINDS", "UsageKind", "UserUsage", "format_duration", "format_usage", "quantity"]


class UsageKind(StrEnum):
    """Counters kept per user per UTC day; amounts are tokens or generations."""

    PROMPT_TOKENS = "prompt_tokens"
    COMPLETION_TOKENS = "completion_tokens"
    CHAT = "chat"
    IMAGINE = "imagine"
    MUSIC = "music"
    VIDEO = "video"
    IMAGES = "images"
    """``/image`` (the OpenAI images API), apart from Midjourney's ``imagine``."""


#: Generation kinds with a daily quota (``[limits] daily_<kind>``); also their usage labels.
QUOTA_KINDS: Final = (
    UsageKind.IMAGINE.value,
    UsageKind.MUSIC.value,
    UsageKind.VIDEO.value,
    UsageKind.IMAGES.value,
)
_NOUNS: Final = {
    UsageKind.IMAGINE.value: ("image", "images"),
    UsageKind.MUSIC.value: ("song", "songs"),
    UsageKind.VIDEO.value: ("video", "videos"),
    UsageKind.IMAGES.value: ("picture", "pictures"),
}


@dataclass(frozen=True, slots=True)
class UserUsage:
    """A user's use today and the limits that apply (0: unlimited); for /usage."""

    user: str
    exempt: bool
    chat_turns: int
    chat_tokens: int
    chat_token_limit: int
    generations: tuple[tuple[str, int, int], ...]
    """``(kind, used, limit)`` for each of :data:`QUOTA_KINDS`."""
    active_tasks: int
    task_limit: int
    chat_cooldown: float
    generation_cooldown: float
    resets_in: float


def format_usage(usage: UserUsage) -> str:
    """Plain text for /usage (no Markdown that a platform could misread)."""
    if usage.exempt:
        lines = ["Your use today (UTC). You are an admin: no limits apply to you."]
    else:
        lines = ["Your use today (UTC):"]
    chat = f"Chat: {_plural(usage.chat_turns, 'reply', 'replies')}, {usage.chat_tokens:,} tokens"
    if usage.chat_token_limit:
        left = max(0, usage.chat_token_limit - usage.chat_tokens)
        chat += f" — {left:,} of {usage.chat_token_limit:,} left"
    lines.append(chat)
    for kind, used, limit in usage.generations:
        title = _NOUNS[kind][1].capitalize()
        if limit:
            lines.append(f"{title}: {used:,} — {max(0, limit - used):,} of {limit:,} left")
        else:
            lines.append(f"{title}: {used:,}" + ("" if usage.exempt else " (no daily limit)"))
    tasks = f"Generations in progress: {usage.active_tasks}"
    if usage.task_limit:
        tasks += f" (at most {usage.task_limit} at a time)"
    lines.append(tasks)
    waits = [
        f"{label} {seconds:g} s"
        for label, seconds in (
            ("chat", usage.chat_cooldown),
            ("generations", usage.generation_cooldown),
        )
        if seconds
    ]
    if waits:
        lines.append("Wait between requests: " + ", ".join(waits) + ".")
    lines.append(f"Quotas reset at 00:00 UTC (in {format_duration(usage.resets_in)}).")
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    """``"5 h 3 min"``, ``"12 min"``, ``"40 s"``: rounded up, for people."""
    total = max(1, math.ceil(seconds))
    if total < 60:
        return f"{total} s"
    minutes = math.ceil(total / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def quantity(kind: str, n: int) -> str:
    """``"1 image"``, ``"3 songs"``: ``n`` generations of a quota ``kind``."""
    one, many = _NOUNS.get(kind, (kind, kind))
    return _plural(n, one, many)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"
