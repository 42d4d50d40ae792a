"""The gateway half of FakeDiscord: HELLO, IDENTIFY -> READY (+ GUILD_CREATE for known guilds),
RESUME -> RESUMED, heartbeat ACKs, member chunks, and dispatches pushed by tests. Frames are
uncompressed TEXT, which discord.py accepts even though it asks for zlib-stream."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_payloads import JSON
from tests.fakes.discord_state import World

HELLO, HEARTBEAT_ACK, DISPATCH, INVALID_SESSION, RECONNECT = 10, 11, 0, 9, 7


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    session_id: str = ""
    seq: int = 0
    identified: bool = False
    query: dict[str, str] = field(default_factory=dict)


class Gateway:
    """One bot connection at a time (the last identified or resumed one receives dispatches)."""

    def __init__(self, world: World, *, heartbeat_interval_ms: int, url: str = "") -> None:
        self.world = world
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.url = url
        self.current: GatewaySession | None = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.identify: JSON | None = None
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
        session.session_id = secrets.token_hex(16)
        session.identified = True
        self._sessions[session.session_id] = session
        self.current = session
        world = self.world
        ready: JSON = {
            "v": 10,
            "user": world.bot_user,
            "guilds": [{"id": str(gid), "unavailable": True} for gid in world.guilds],
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
        for guild in world.guilds.values():  # the READY guilds become available
            await self.send_dispatch("GUILD_CREATE", {**guild, "unavailable": False}, session)

    async def _resume(self, session: GatewaySession, data: JSON) -> None:
        old = self._sessions.get(str(data.get("session_id")))
        if old is None:
            await self._send(session, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        session.session_id, session.seq, session.identified = old.session_id, old.seq, True
        self._sessions[session.session_id] = session
        self.current = session
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
        await self._send(target, {"op": DISPATCH, "t": event, "s": target.seq, "d": data})

    async def send_op(self, op: int, data: Any = None) -> None:
        """Sends a raw opcode to the current connection (e.g. 7 RECONNECT)."""
        if self.current is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        await self._send(self.current, {"op": op, "d": data, "s": None, "t": None})

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001)
