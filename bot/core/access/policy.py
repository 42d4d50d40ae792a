"""Who may use the bot: allow-lists, a block list and admins (a pure policy, stdlib only).

Users are platform-qualified ids (``"tg:123"``, ``"dc:456"``), as everywhere in the store.
Every empty list means "open". A request passes :meth:`AccessPolicy.check` by these rules,
in order:

1. an **admin** always passes, and the console (the operator's own terminal) always passes;
2. a **blocked** user never passes, anywhere;
3. a **private place** (a Telegram private chat, a Discord DM) is governed by ``users``:
   open when it is empty, otherwise only listed users pass;
4. a **group place** (a Telegram group or forum topic, a Discord guild channel or thread)
   on a platform whose place lists are all empty is governed by ``users`` as well;
5. a **group place** on a platform with place lists passes only when it matches *every*
   non-empty list of that platform (Telegram: ``telegram_chats``; Discord:
   ``discord_guilds`` and ``discord_channels``, where a thread matches through its parent
   channel). In a listed place *everyone* may use the bot: listing a place is the grant,
   as community servers expect. A listed user does not open an unlisted group (they can
   still use the bot in a DM).

Changing a group's model or persona is a narrower right (:meth:`AccessPolicy.settings_open_to`):
in groups it belongs to the group's own admins (the platform knows them) and the bot's admins,
unless ``[chat] group_settings = "everyone"``.

So ``users = ["tg:1"]`` alone makes the bot private to that person everywhere;
``telegram_chats = ["-100..."]`` alone opens that group to its members and keeps DMs open;
both together give "my group for everyone, DMs for me". Refusals are one polite line that
names the id to send to the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.errors import UserFacingError
from bot.core.models import Platform, qualify

__all__ = ["AccessDenied", "AccessPolicy", "AdminOnly", "RefusalNotices", "Requester"]


class AccessDenied(UserFacingError):
    """The requester may not use the bot here. ``reason``: ``"user"``, ``"place"`` or
    ``"blocked"`` (for logs and metrics; the user sees only the message)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AdminOnly(AccessDenied):
    """An admin command from someone who is not an admin."""

    def __init__(self, command: str) -> None:
        super().__init__(f"Sorry, only the bot's admins can use {command}.", reason="admin")


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, and where.

    ``user`` is platform-qualified (a bare platform id is qualified on construction).
    ``chat`` is the Telegram chat id or the Discord channel/thread id; ``guild`` the Discord
    guild (None in DMs and on Telegram); ``parent`` the channel a Discord thread belongs to.
    ``is_private``: a Telegram private chat or a Discord DM.
    """

    platform: Platform
    user: str
    chat: str
    guild: str | None = None
    is_private: bool = False
    parent: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", qualify(self.platform, self.user))


class RefusalNotices:
    """Says the polite line at most once per ``interval`` seconds per (user, place).

    Someone refused who keeps mentioning the bot in a busy group would otherwise spend
    that group's message budget (Telegram: 20 per minute) on refusals. ``now`` is any
    monotonic time (the platform's clock).
    """

    def __init__(self, interval: float = 60.0, *, max_entries: int = 10_000) -> None:
        self._interval = interval
        self._max = max_entries
        self._last: dict[tuple[str, str], float] = {}

    def should_notify(self, requester: Requester, now: float) -> bool:
        """Whether to send the refusal now (and, if so, remember that it was sent)."""
        key = (requester.user, requester.chat)
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        if len(self._last) >= self._max:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        self._last[key] = now
        return True


def _ids(values: Iterable[str | int]) -> frozenset[str]:
    return frozenset(str(v).strip() for v in values if str(v).strip())


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The allow-lists from ``[access]``; build it with :meth:`build`."""

    users: frozenset[str] = frozenset()
    blocked_users: frozenset[str] = frozenset()
    telegram_chats: frozenset[str] = frozenset()
    discord_guilds: frozenset[str] = frozenset()
    discord_channels: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    group_settings_open: bool = False
    """``[chat] group_settings = "everyone"``: anyone who may use the bot in a group may also
    change its model and persona."""

    @classmethod
    def build(
        cls,
        *,
        users: Iterable[str] = (),
        blocked_users: Iterable[str] = (),
        telegram_chats: Iterable[str | int] = (),
        discord_guilds: Iterable[str | int] = (),
        discord_channels: Iterable[str | int] = (),
        admins: Iterable[str] = (),
        group_settings_open: bool = False,
    ) -> AccessPolicy:
        return cls(
            users=_ids(users),
            blocked_users=_ids(blocked_users),
            telegram_chats=_ids(telegram_chats),
            discord_guilds=_ids(discord_guilds),
            discord_channels=_ids(discord_channels),
            admins=_ids(admins),
            group_settings_open=group_settings_open,
        )

    def is_admin(self, user: str) -> bool:
        """Whether the platform-qualified ``user`` is an admin (the console always is)."""
        return user in self.admins or user.startswith(f"{Platform.CONSOLE.value}:")

    def check(self, requester: Requester) -> None:
        """Return if ``requester`` may use the bot here; raise :class:`AccessDenied` if not."""
        refusal = self._refusal(requester)
        if refusal is not None:
            raise refusal

    def require_admin(self, requester: Requester, command: str) -> None:
        """Raise :class:`AdminOnly` unless the requester is an admin (or the console)."""
        if requester.platform is not Platform.CONSOLE and not self.is_admin(requester.user):
            raise AdminOnly(command)

    def settings_open_to(self, requester: Requester) -> bool:
        """Whether ``requester`` may change this place's model and persona without being one
        of the group's admins: always in a private place, for the bot's admins and the
        console, and everywhere when :attr:`group_settings_open`."""
        return (
            requester.is_private
            or self.group_settings_open
            or requester.platform is Platform.CONSOLE
            or self.is_admin(requester.user)
        )

    def _refusal(self, requester: Requester) -> AccessDenied | None:
        user = requester.user
        if requester.platform is Platform.CONSOLE or self.is_admin(user):
            return None
        if user in self.blocked_users:
            return AccessDenied("Sorry, you cannot use this bot.", reason="blocked")
        place_lists = self._place_lists(requester.platform)
        if requester.is_private or not any(place_lists):
            if not self.users or user in self.users:
                return None
            return AccessDenied(
                f"Sorry, this bot is private. To ask for access, send its operator your id: {user}",
                reason="user",
            )
        if self._place_matches(requester):
            return None
        return AccessDenied(
            "Sorry, this bot is not enabled here. To ask for it, send its operator "
            f"this chat's id: {requester.chat}",
            reason="place",
        )

    def _place_lists(self, platform: Platform) -> tuple[frozenset[str], ...]:
        if platform is Platform.TELEGRAM:
            return (self.telegram_chats,)
        if platform is Platform.DISCORD:
            return (self.discord_guilds, self.discord_channels)
        return ()

    def _place_matches(self, requester: Requester) -> bool:
        if requester.platform is Platform.TELEGRAM:
            return requester.chat in self.telegram_chats
        if self.discord_guilds and requester.guild not in self.discord_guilds:
            return False
        if self.discord_channels:
            channels = {requester.chat, requester.parent} - {None}
            return bool(channels & self.discord_channels)
        return True
