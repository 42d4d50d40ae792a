"""Records kept by FakeDiscord: requests, messages (with their edit history), interactions and
the errors it answered. Tests read these through FakeDiscord's assertion helpers."""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tests.fakes.discord_payloads import (
    JSON,
    iso_now,
    make_attachment,
    make_dm_channel,
    snowflake,
)

EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_COMPONENTS_V2 = 1 << 15

_USER_MENTION = re.compile(r"<@!?(\d+)>")


@dataclass
class FakeFile:
    """One uploaded file of a multipart request (`files[n]`)."""

    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Call:
    """One REST request as the fake saw it. `body` is the JSON body (or multipart payload_json)."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    body: Any
    files: list[FakeFile]
    at: float
    status: int = 0
    response: Any = None

    def __repr__(self) -> str:
        return f"<Call {self.method} {self.path} -> {self.status}>"


@dataclass
class FakeError:
    """A non-2xx, non-429 answer the fake gave (limits, spec violations, unknown ids...)."""

    method: str
    path: str
    status: int
    code: int
    message: str
    details: list[str]
    source: str  # "rule" | "spec" | "interaction" | "lookup" | "auth"


def walk_components(components: Any) -> Iterator[JSON]:
    """Every component in a tree (rows, containers, sections, labels)."""
    if not isinstance(components, list):
        return
    for comp in components:
        if not isinstance(comp, dict):
            continue
        yield comp
        yield from walk_components(comp.get("components"))
        for key in ("component", "accessory"):
            if isinstance(comp.get(key), dict):
                yield from walk_components([comp[key]])


@dataclass
class FakeMessage:
    """State of one message in the fake: current content plus history of edits."""

    id: int
    channel_id: int
    author: JSON
    from_bot: bool
    guild_id: int | None = None
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    files: list[FakeFile] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    allowed_mentions: JSON | None = None
    allowed_mentions_history: list[JSON | None] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    edit_count: int = 0
    deleted: bool = False
    created_at: float = 0.0
    edited_at: float | None = None
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None
    message_reference: JSON | None = None
    referenced_message: JSON | None = None
    interaction_id: int | None = None
    interaction_metadata: JSON | None = None
    webhook_id: int | None = None
    application_id: int | None = None
    mentions: list[JSON] = field(default_factory=list)
    mention_roles: list[str] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    tts: bool = False
    nonce: str | int | None = None
    raw: JSON | None = None  # the exact payload for messages pushed by the test

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred ("thinking") response not yet replaced by a followup or edit."""
        return bool(self.flags & LOADING)

    def all_components(self) -> list[JSON]:
        return list(walk_components(self.components))

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.all_components() if "custom_id" in c]

    def buttons(self) -> list[JSON]:
        return [c for c in self.all_components() if c.get("type") == 2]

    def component(self, custom_id: str) -> JSON | None:
        return next((c for c in self.all_components() if c.get("custom_id") == custom_id), None)

    def pinged_user_ids(self) -> list[int]:
        """Users this message would notify, given its content and allowed_mentions."""
        am = self.allowed_mentions
        ids = [int(m) for m in _USER_MENTION.findall(self.content)]
        if am is not None:
            parse = am.get("parse", [])
            allowed = {int(u) for u in am.get("users", [])}
            ids = [i for i in ids if "users" in parse or i in allowed]
            replied = bool(am.get("replied_user", False))
        else:
            replied = True
        if replied and self.referenced_message is not None:
            ids.append(int(self.referenced_message["author"]["id"]))
        return ids

    def pings_everyone(self) -> bool:
        am = self.allowed_mentions
        if "@everyone" not in self.content and "@here" not in self.content:
            return False
        return am is None or "everyone" in am.get("parse", [])

    def payload(self) -> JSON:
        """The message object as Discord returns it."""
        if self.raw is not None and not self.from_bot:
            return self.raw
        msg: JSON = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author,
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": False,
            "mentions": self.mentions,
            "mention_roles": self.mention_roles,
            "attachments": self.attachments,
            "embeds": self.embeds,
            "components": self.components,
            "reactions": [
                {"emoji": {"id": None, "name": e}, "count": 1, "me": True} for e in self.reactions
            ],
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            msg["guild_id"] = str(self.guild_id)
        if self.nonce is not None:
            msg["nonce"] = self.nonce
        for key in ("webhook_id", "application_id"):
            value = getattr(self, key)
            if value is not None:
                msg[key] = str(value)
        if self.interaction_metadata is not None:
            msg["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            msg["message_reference"] = self.message_reference
            msg["referenced_message"] = self.referenced_message
        return msg

    def __repr__(self) -> str:
        return (
            f"<FakeMessage id={self.id} channel={self.channel_id} bot={self.from_bot} "
            f"edits={self.edit_count} content={self.content[:40]!r}>"
        )


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched and what the bot did with it."""

    id: int
    token: str
    type: int
    payload: JSON
    channel_id: int
    guild_id: int | None
    user: JSON
    dispatched_at: float | None = None
    ack_type: int | None = None
    acked_at: float | None = None
    responses: list[JSON] = field(default_factory=list)  # accepted callback bodies
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: JSON | None = None  # data of a type 9 response
    choices: list[JSON] | None = None  # data.choices of a type 8 response

    @property
    def source_message_id(self) -> int | None:
        msg = self.payload.get("message")
        return int(msg["id"]) if msg else None

    @property
    def acked(self) -> bool:
        return self.ack_type is not None


class World:
    """Everything the fake knows: the bot, guilds, channels, messages, interactions, requests.
    Shared by the REST side, the gateway side and FakeDiscord's helpers."""

    def __init__(self, *, app_id: int, bot_user: JSON, clock: Callable[[], float]) -> None:
        self.app_id = app_id
        self.bot_user = bot_user
        self.bot_id = int(bot_user["id"])
        self._clock = clock
        self.offset = 0.0
        self.base_url = ""
        self.calls: list[Call] = []
        self.errors: list[FakeError] = []
        self.messages: dict[int, FakeMessage] = {}
        self.timelines: dict[int, list[int]] = defaultdict(list)
        self.channels: dict[int, JSON] = {}
        self.guilds: dict[int, JSON] = {}
        self.users: dict[int, JSON] = {self.bot_id: bot_user}
        self.dms: dict[int, JSON] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.by_token: dict[str, FakeInteraction] = {}
        self.commands: dict[int | None, list[JSON]] = {}
        self.files: dict[int, tuple[bytes, str]] = {}
        self.route_counts: Counter[str] = Counter()
        self.ratelimit_hits: Counter[int | str] = Counter()
        self.typing: Counter[int] = Counter()
        self.condition = asyncio.Condition()

    def now(self) -> float:
        return self._clock() + self.offset

    async def notify(self) -> None:
        async with self.condition:
            self.condition.notify_all()

    def register_user(self, user: JSON) -> None:
        self.users.setdefault(int(user["id"]), user)

    def register_channel(self, channel: JSON) -> None:
        self.channels[int(channel["id"])] = channel

    def register_guild(self, guild: JSON) -> None:
        gid = int(guild["id"])
        self.guilds[gid] = guild
        for channel in [*guild.get("channels", []), *guild.get("threads", [])]:
            channel.setdefault("guild_id", str(gid))
            self.register_channel(channel)
        for member in guild.get("members", []):
            self.register_user(member["user"])

    def dm_channel(self, user: JSON) -> JSON:
        """The DM channel between the bot and `user` (created on first use)."""
        uid = int(user["id"])
        if uid not in self.dms:
            self.register_user(user)
            self.dms[uid] = make_dm_channel(user)
            self.register_channel(self.dms[uid])
        return self.dms[uid]

    def guild_of(self, channel_id: int) -> int | None:
        gid = self.channels.get(channel_id, {}).get("guild_id")
        return int(gid) if gid else None

    def add_message(self, msg: FakeMessage) -> FakeMessage:
        self.messages[msg.id] = msg
        self.timelines[msg.channel_id].append(msg.id)
        return msg

    def store_file(self, channel_id: int, filename: str, data: bytes, content_type: str) -> JSON:
        """Keeps the bytes and returns an attachment object whose url the fake serves."""
        aid = snowflake()
        self.files[aid] = (data, content_type)
        url = f"{self.base_url}/attachments/{channel_id}/{aid}/{quote(filename)}"
        return make_attachment(
            url, filename, len(data), attachment_id=aid, content_type=content_type
        )
