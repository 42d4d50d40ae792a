"""FakeDiscord: an aiohttp Discord (REST under /api/v10 + gateway websocket) on 127.0.0.1 that
the real discord.py 2.7 logs into, for end-to-end tests of the bot's Discord adapter.

    async with FakeDiscord() as dc, dc.installed():      # or dc.install(monkeypatch)
        bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        async with dc.running(bot):                       # start() task + wait_until_ready()
            inter = await dc.interact(dc.slash("chat", {"prompt": "hi"}))
            await dc.wait_for(lambda: dc.interaction_responses(inter.id))

Wiring (see platforms.md §2.3): a plain Client/commands.Bot connects to
`DiscordWebSocket.DEFAULT_GATEWAY` and never calls GET /gateway/bot (only AutoShardedClient
without a shard_count does; the fake answers it with `recommended_shards`). On reconnect
discord.py uses READY's resume_gateway_url, which points back at the fake. discord.py waits
`guild_ready_timeout` (default 2 s) after READY for GUILD_CREATEs: pass a small value to the
bot to start fast.

Sharding (see discord_gateway): sessions identify as `shard: [id, count]`, each guild's events
(`dispatch`, `guild_create`, `push_message`, `interact`) reach only its shard's session, DMs
only shard 0's; `identified_shards` lists what the sessions identified as.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from tests.fakes.discord_builders import PayloadBuilders
from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_http import ScriptedFailure
from tests.fakes.discord_payloads import JSON, make_bot_user, make_dm_channel, snowflake
from tests.fakes.discord_rest import RestApi
from tests.fakes.discord_rules import DEFAULT_SPEC_PATH, load_spec_validator
from tests.fakes.discord_state import Call, FakeError, FakeInteraction, FakeMessage, World

if TYPE_CHECKING:
    import discord
    import pytest

__all__ = ["Call", "FakeDiscord", "FakeError", "FakeInteraction", "FakeMessage"]

MESSAGE_CONTENT_INTENT = 1 << 15


class FakeDiscord(PayloadBuilders):
    """Fake Discord REST + gateway. See the module docstring for wiring and lifecycle."""

    def __init__(
        self,
        *,
        bot_name: str = "cometbot",
        bot_id: int | None = None,
        application_id: int | None = None,
        token: str | None = None,
        rate_limit: tuple[int, float] | None = (5, 5.0),
        webhook_rate_limit: tuple[int, float] | None = (5, 5.0),
        global_rate_limit: tuple[int, float] | None = (50, 1.0),
        ack_deadline: float = 3.0,
        token_ttl: float = 15 * 60.0,
        clock: Callable[[], float] = time.monotonic,
        spec_path: str | Path | None = DEFAULT_SPEC_PATH,
        strict_channels: bool = True,
        enforce_message_content_intent: bool = True,
        heartbeat_interval_ms: int = 41_250,
        recommended_shards: int = 1,
    ) -> None:
        self.app_id = application_id or snowflake()
        self.bot_user = make_bot_user(bot_id or self.app_id, bot_name)
        self.bot_id = int(self.bot_user["id"])
        self.world = World(app_id=self.app_id, bot_user=self.bot_user, clock=clock)
        self.user = self.make_user("alice")
        self.downloads: list[int] = []
        """Ids of the attachments the bot downloaded, in order."""
        self.enforce_message_content_intent = enforce_message_content_intent
        spec = load_spec_validator(str(spec_path)) if spec_path is not None else None
        self.gateway = Gateway(self.world, heartbeat_interval_ms=heartbeat_interval_ms)
        self.rest = RestApi(
            self.world,
            rate_limit=rate_limit,
            webhook_rate_limit=webhook_rate_limit,
            global_rate_limit=global_rate_limit,
            ack_deadline=ack_deadline,
            token_ttl=token_ttl,
            spec=spec,
            strict_channels=strict_channels,
            expected_token=token,
            gateway_url=lambda: self.gateway_url,
            recommended_shards=recommended_shards,
        )
        self.port = 0
        self._runner: web.AppRunner | None = None

    # --- lifecycle and wiring ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gw"

    @property
    def spec_enabled(self) -> bool:
        return self.rest.spec is not None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gw", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._serve_file)
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.world.base_url = self.base_url
        self.gateway.url = self.gateway_url

    async def close(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Points discord.py at this fake for the test (undone by monkeypatch)."""
        import discord
        import yarl

        monkeypatch.setattr(discord.http.Route, "BASE", self.api_base_url)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url)
        )

    def installed(self) -> _Installed:
        """install() as a context manager (`with` or `async with`); restores discord.py's
        URLs on exit."""
        return _Installed(self.api_base_url, self.gateway_url)

    @contextlib.asynccontextmanager
    async def running(
        self, client: discord.Client, token: str = "fake-token", *, ready_timeout: float = 10.0
    ) -> AsyncIterator[asyncio.Task[None]]:
        """Runs `client.start(token)` as a task until the client is ready; closes it on exit.
        Login errors (e.g. a wrong `token=` on the fake) are raised here."""
        task = asyncio.create_task(client.start(token))
        try:
            connected = asyncio.ensure_future(self.wait_for(lambda: self.connected, ready_timeout))
            await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
            if not connected.done():
                connected.cancel()
                task.result()
                raise RuntimeError("the client stopped before connecting")
            connected.result()
            await asyncio.wait_for(client.wait_until_ready(), ready_timeout)
            yield task
        finally:
            await client.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, ready_timeout)

    async def _serve_file(self, request: web.Request) -> web.Response:
        attachment_id = int(request.match_info["attachment_id"])
        self.downloads.append(attachment_id)
        stored = self.world.files.get(attachment_id)
        if stored is None:
            return web.Response(status=404)
        return web.Response(body=stored[0], headers={"Content-Type": stored[1]})

    # --- clock ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Moves the fake's clock forward (ack deadline, token age, rate-limit windows)."""
        self.world.offset += seconds

    # --- gateway -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.gateway.current is not None

    @property
    def identify(self) -> JSON | None:
        """The bot's last IDENTIFY payload (token, intents, properties...)."""
        return self.gateway.identify

    @property
    def identified_shards(self) -> list[tuple[int, int]]:
        """(shard id, shard count) of every IDENTIFY, in order ((0, 1): unsharded)."""
        return list(self.gateway.identified)

    async def dispatch(self, event: str, data: Any, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Sends a dispatch (op 0) to the session of its guild's shard (a DM's: shard 0),
        waiting for a connection first; dropped when no session runs that shard."""
        await self.wait_for(lambda: self.connected, timeout=timeout)
        await self.gateway.route(event, data)

    async def guild_create(self, guild: JSON) -> None:
        self.world.register_guild(guild)
        await self.dispatch("GUILD_CREATE", guild)

    async def reconnect(self) -> None:
        """Asks the bot to reconnect (op 7); discord.py resumes via resume_gateway_url."""
        resumes = self.gateway.resumes
        await self.gateway.send_op(7)
        await self.wait_for(lambda: self.gateway.resumes > resumes and self.connected)

    # --- user messages -------------------------------------------------------------------

    async def push_message(self, payload: JSON) -> JSON:
        """Records a user's message in the channel timeline and dispatches MESSAGE_CREATE.
        Without the message_content intent, guild messages not mentioning the bot arrive
        with empty content/embeds/attachments/components, like on Discord."""
        payload = dict(payload)
        mentioned = any(int(m["id"]) == self.bot_id for m in payload.get("mentions", []))
        if (
            self.enforce_message_content_intent
            and "guild_id" in payload
            and not mentioned
            and not self.gateway.intents & MESSAGE_CONTENT_INTENT
        ):
            payload.update(content="", embeds=[], attachments=[], components=[])
        self.world.register_user(payload["author"])
        cid = int(payload["channel_id"])
        if cid not in self.world.channels and "guild_id" not in payload:
            dm = make_dm_channel(payload["author"], cid)
            self.world.register_channel(dm)
            self.world.dms.setdefault(int(payload["author"]["id"]), dm)
        msg = FakeMessage(
            id=int(payload["id"]),
            channel_id=int(payload["channel_id"]),
            author=payload["author"],
            from_bot=False,
            guild_id=int(payload["guild_id"]) if "guild_id" in payload else None,
            content=payload.get("content", ""),
            attachments=list(payload.get("attachments", [])),
            created_at=self.now(),
            history=[payload.get("content", "")],
            raw=payload,
        )
        self.world.add_message(msg)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    async def say(self, content: str = "", **kwargs: Any) -> JSON:
        """user_message(...) + push_message(...)."""
        return await self.push_message(self.user_message(content, **kwargs))

    async def interact(self, payload: JSON) -> FakeInteraction:
        """Registers and dispatches INTERACTION_CREATE; the 3 s ack window starts now."""
        user = payload["member"]["user"] if "member" in payload else payload["user"]
        inter = FakeInteraction(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            channel_id=int(payload["channel"]["id"]),
            guild_id=int(payload["guild_id"]) if "guild_id" in payload else None,
            user=user,
        )
        self.world.interactions[inter.id] = inter
        self.world.by_token[inter.token] = inter
        self.world.register_user(user)
        await self.wait_for(lambda: self.connected)
        inter.dispatched_at = self.now()
        await self.dispatch("INTERACTION_CREATE", payload)
        return inter

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self.world.interactions[interaction_id]

    def interaction_responses(self, interaction_id: int) -> list[JSON]:
        """Accepted callback bodies ({"type": 5}, {"type": 4, "data": ...}) in order."""
        inter = self.world.interactions.get(interaction_id)
        return list(inter.responses) if inter else []

    # --- rate limits ---------------------------------------------------------------------

    def fail_next(
        self,
        target: int | str,
        *,
        retry_after: float = 0.2,
        times: int = 1,
        method: str | None = None,
        is_global: bool = False,
    ) -> None:
        """The next `times` requests matching `target` get a 429 (with Via, so discord.py sleeps
        `retry_after` and retries). `target`: a channel id (channel and interaction-webhook
        routes of that channel) or a substring of the path (after /api/v10)."""
        self.rest.scripted.append(ScriptedFailure(target, retry_after, times, method, is_global))

    @property
    def ratelimit_hits(self) -> Counter[int | str]:
        """429s answered, per channel id (or path when no channel applies)."""
        return self.world.ratelimit_hits

    @property
    def route_counts(self) -> Counter[str]:
        """Requests per route, e.g. "PATCH /channels/{channel_id}/messages/{message_id}"."""
        return self.world.route_counts

    @property
    def typing(self) -> Counter[int]:
        return self.world.typing

    # --- assertions ----------------------------------------------------------------------

    @property
    def errors(self) -> list[FakeError]:
        """Every 4xx (not 429) the fake answered, with the reasons."""
        return self.world.errors

    @property
    def spec_errors(self) -> list[FakeError]:
        return [e for e in self.world.errors if e.source == "spec"]

    def calls(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        status: int | None = None,
    ) -> list[Call]:
        return [
            c
            for c in self.world.calls
            if (method is None or c.method == method.upper())
            and (path_contains is None or path_contains in c.path)
            and (status is None or c.status == status)
        ]

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """Application commands as last synced (global, or for one guild)."""
        return self.world.commands.get(guild_id, [])

    def message(self, message_id: int) -> FakeMessage:
        return self.world.messages[message_id]

    def messages(
        self,
        channel_id: int | None = None,
        *,
        include_user: bool = False,
        include_deleted: bool = False,
    ) -> list[FakeMessage]:
        """Messages in creation order (bot's only unless include_user), one channel or all."""
        if channel_id is None:
            found = sorted(self.world.messages.values(), key=lambda m: m.id)
        else:
            found = [self.world.messages[i] for i in self.world.timelines.get(channel_id, [])]
        return [
            m for m in found if (include_user or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def timeline(self, channel_id: int) -> list[FakeMessage]:
        """Everything in a channel (users' and bot's, deleted included), in order."""
        return self.messages(channel_id, include_user=True, include_deleted=True)

    def last_message(self, channel_id: int | None = None) -> FakeMessage | None:
        found = self.messages(channel_id)
        return found[-1] if found else None

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Waits until predicate() is truthy, re-checking after every request/gateway frame;
        returns its value. A LookupError from the predicate counts as "not yet". Raises
        AssertionError (with the last calls) on timeout."""
        condition = self.world.condition

        def attempt() -> Any:
            try:
                return predicate()
            except LookupError:  # e.g. dc.message(id) before the message exists
                return None

        async def check() -> Any:
            async with condition:
                while not (result := attempt()):
                    await condition.wait()
                return result

        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            recent = "\n  ".join(repr(c) for c in self.world.calls[-10:])
            raise AssertionError(
                f"wait_for timed out after {timeout}s; last calls:\n  {recent}"
            ) from None

    async def wait_for_call(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Call:
        """Waits for the `count`-th matching request to be answered and returns it."""

        def answered() -> Call | None:
            found = self.calls(method, path_contains)
            return found[count - 1] if len(found) >= count and found[count - 1].status else None

        call: Call = await self.wait_for(answered, timeout)
        return call


class _Installed(
    contextlib.AbstractContextManager[None], contextlib.AbstractAsyncContextManager[None]
):
    """Points discord.http.Route.BASE and DiscordWebSocket.DEFAULT_GATEWAY at a fake."""

    def __init__(self, api_base_url: str, gateway_url: str) -> None:
        self._urls = (api_base_url, gateway_url)
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> None:
        import discord
        import yarl

        route, ws = discord.http.Route, discord.gateway.DiscordWebSocket
        self._saved = (route.BASE, ws.DEFAULT_GATEWAY)
        route.BASE = self._urls[0]
        ws.DEFAULT_GATEWAY = yarl.URL(self._urls[1])

    def __exit__(self, *exc_info: object) -> None:
        import discord

        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self.__exit__()
