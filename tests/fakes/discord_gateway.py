"""The gateway half of FakeDiscord: HELLO, IDENTIFY -> READY (+ GUILD_CREATE for known guilds),
RESUME -> RESUMED, heartbeat ACKs, member chunks, and dispatches pushed by tests. Frames are
uncompressed TEXT, which discord.py accepts even though it asks for zlib-stream.

Sharding as on Discord: an IDENTIFY may carry ``shard: [id, count]`` (none means ``[0, 1]``);
a guild's events go only to the session of shard ``(guild_id >> 22) % count``, DM events only
to shard 0, and an IDENTIFY naming a shard outside ``0..count-1`` is closed with 4010."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_payloads import JSON
from tests.fakes.discord_state import World

HELLO, HEARTBEAT_ACK, DISPATCH, INVALID_SESSION, RECONNECT = 10, 11, 0, 9, 7
INVALID_SHARD = 4010
GUILD_EVENTS = ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE")  # the guild id is "id"


def shard_of(guild_id: int | None, count: int) -> int:
    """Discord's rule: a guild's events on shard (guild_id >> 22) % count, DMs on shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % count


def guild_of_event(event: str, data: Any) -> int | None:
    """The guild an event belongs to (None: a DM or no guild)."""
    if not isinstance(data, dict):
        return None
    raw = data.get("id") if event in GUILD_EVENTS else data.get("guild_id")
    return int(raw) if raw is not None else None


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    session_id: str = ""
    seq: int = 0
    identified: bool = False
    query: dict[str, str] = field(default_factory=dict)
    shard: tuple[int, int] = (0, 1)
    """(shard id, shard count) from IDENTIFY; (0, 1) when it named none."""
    events: list[str] = field(default_factory=list)
    """The dispatches this session received, by name, in order."""

    def carries(self, guild_id: int | None) -> bool:
        shard, count = self.shard
        return shard_of(guild_id, count) == shard


class Gateway:
    """The bot's sessions: per shard, the last identified or resumed one receives its
    dispatches (unsharded: one shard, so one session at a time)."""

    def __init__(self, world: World, *, heartbeat_interval_ms: int, url: str = "") -> None:
        self.world = world
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.url = url
        self.current: GatewaySession | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.identify: JSON | None = None
        self.identified: list[tuple[int, int]] = []  # (shard id, count) of every IDENTIFY
        self.by_shard: dict[int, GatewaySession] = {}
        self.dropped: list[str] = []  # dispatches for a shard no session runs
        self.events_by_shard: defaultdict[int, list[str]] = defaultdict(list)
        """The dispatches each shard's sessions received, by name, in order."""
        self.sent: list[JSON] = []  # every frame sent, in order
        self.received: list[JSON] = []  # every frame received
        self.heartbeats = 0
        self.connections = 0
        self.resumes = 0
        self._sessions: dict[str, GatewaySession] = {}
        self._lock = asyncio.Lock()

    @property
    def intents(self) -> int:
        return int((self.identify or {}).get("intents", 0))

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        self.connections += 1
        session = GatewaySession(ws, query=dict(request.query))
        try:
            await self._send(
                session,
                {
                    "op": HELLO,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    "s": None,
                    "t": None,
                },
            )
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                raw = frame.data if frame.type is WSMsgType.TEXT else frame.data.decode()
                await self._on_frame(session, json.loads(raw))
        finally:
            self.sockets.discard(ws)
            if self.current is session:
                self.current = None
            for shard, owner in list(self.by_shard.items()):
                if owner is session:
                    del self.by_shard[shard]
            await self.world.notify()
        return ws

    async def _on_frame(self, session: GatewaySession, payload: JSON) -> None:
        self.received.append(payload)
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            self.heartbeats += 1
            await self._send(session, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(session, data or {})
        elif op == 6:
            await self._resume(session, data or {})
        elif op == 8:
            await self._member_chunk(session, data or {})
        await self.world.notify()

    async def _identify(self, session: GatewaySession, data: JSON) -> None:
        self.identify = data
        shard = data.get("shard", [0, 1])
        if not valid_shard(shard):
            await session.ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        session.shard = (int(shard[0]), int(shard[1]))
        self.identified.append(session.shard)
        session.session_id = secrets.token_hex(16)
        session.identified = True
        self._sessions[session.session_id] = session
        self.current = self.by_shard[session.shard[0]] = session
        world = self.world
        guilds = [guild for gid, guild in world.guilds.items() if session.carries(gid)]
        ready: JSON = {
            "v": 10,
            "user": world.bot_user,
            "guilds": [{"id": guild["id"], "unavailable": True} for guild in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.url,
            "session_type": "normal",
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "application": {"id": str(world.app_id), "flags": 1 << 19},
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self.send_dispatch("READY", ready, session)
        for guild in guilds:  # the READY guilds become available
            await self.send_dispatch("GUILD_CREATE", {**guild, "unavailable": False}, session)

    async def _resume(self, session: GatewaySession, data: JSON) -> None:
        old = self._sessions.get(str(data.get("session_id")))
        if old is None:
            await self._send(session, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        session.session_id, session.seq, session.identified = old.session_id, old.seq, True
        session.shard = old.shard
        self._sessions[session.session_id] = session
        self.current = self.by_shard[session.shard[0]] = session
        self.resumes += 1
        await self.send_dispatch("RESUMED", {"_trace": ["fake-discord"]}, session)

    async def _member_chunk(self, session: GatewaySession, data: JSON) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        if guild is None:
            return
        chunk = {
            "guild_id": guild["id"],
            "members": guild.get("members", []),
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self.send_dispatch("GUILD_MEMBERS_CHUNK", chunk, session)

    async def _send(self, session: GatewaySession, payload: JSON) -> None:
        async with self._lock:
            self.sent.append(payload)
            if not session.ws.closed:
                await session.ws.send_str(json.dumps(payload))

    async def send_dispatch(
        self, event: str, data: Any, session: GatewaySession | None = None
    ) -> None:
        target = session or self.current
        if target is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        target.seq += 1
        target.events.append(event)
        self.events_by_shard[target.shard[0]].append(event)
        await self._send(target, {"op": DISPATCH, "t": event, "s": target.seq, "d": data})

    def session_for(self, guild_id: int | None) -> GatewaySession | None:
        """The session that carries ``guild_id``'s events (None: a DM), if it is connected."""
        for session in self.by_shard.values():
            if session.carries(guild_id) and not session.ws.closed:
                return session
        return None

    async def route(self, event: str, data: Any) -> None:
        """Sends a dispatch to the session of its guild's shard (DMs: shard 0), as Discord
        does; an event for a shard nobody runs is dropped, as on Discord."""
        session = self.session_for(guild_of_event(event, data))
        if session is None:
            self.dropped.append(event)
        else:
            await self.send_dispatch(event, data, session)

    async def send_op(self, op: int, data: Any = None) -> None:
        """Sends a raw opcode to the current connection (e.g. 7 RECONNECT)."""
        if self.current is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        await self._send(self.current, {"op": op, "d": data, "s": None, "t": None})

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001)


def valid_shard(shard: Any) -> bool:
    """``[id, count]`` with 0 <= id < count."""
    if not isinstance(shard, list | tuple) or len(shard) != 2:
        return False
    shard_id, count = shard
    return isinstance(shard_id, int) and isinstance(count, int) and 0 <= shard_id < count
