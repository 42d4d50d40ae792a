"""The REST half of FakeDiscord: the /api/v10 routes discord.py 2.7 uses, answered like
Discord (status, JSON error codes, rate-limit headers, 429s with `Via`)."""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Callable

from aiohttp import web

from tests.fakes.discord_http import (
    CHANNEL_BUCKET,
    Ctx,
    Handler,
    RateLimitedError,
    Reply,
    ScriptedFailure,
    as_dict,
    json_response,
    make_limiter,
    ratelimit_headers,
    read_body,
)
from tests.fakes.discord_interactions import InteractionRoutes
from tests.fakes.discord_payloads import JSON, make_application, snowflake
from tests.fakes.discord_rules import DiscordAPIError, SpecValidator
from tests.fakes.discord_state import Call, FakeError, World

log = logging.getLogger(__name__)

# Path parameters are digits unless listed here.
_PARAM_PATTERNS = {"token": r"[^/]+", "emoji": r"[^/]+", "message": r"\d+|@original"}


def _compile(template: str) -> re.Pattern[str]:
    def param(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"(?P<{name}>{_PARAM_PATTERNS.get(name, r'[0-9]+')})"

    return re.compile(re.sub(r"\{(\w+)\}", param, template) + "$")


class RestApi(InteractionRoutes):
    """Routes and handlers; FakeDiscord mounts `handle` under /api/v10."""

    def __init__(
        self,
        world: World,
        *,
        rate_limit: tuple[int, float] | None,
        webhook_rate_limit: tuple[int, float] | None,
        global_rate_limit: tuple[int, float] | None,
        ack_deadline: float,
        token_ttl: float,
        spec: SpecValidator | None,
        strict_channels: bool,
        expected_token: str | None,
        gateway_url: Callable[[], str],
        recommended_shards: int = 1,
    ) -> None:
        self.world = world
        self.channel_limiter = make_limiter(rate_limit, world)
        self.webhook_limiter = make_limiter(webhook_rate_limit, world)
        # "All bots can make up to 50 requests per second" over a rolling second; interaction
        # callbacks and webhooks are not bound to it (Discord's rate-limit docs).
        self.global_limit = global_rate_limit
        self._global_times: deque[float] = deque()
        self.global_429s = 0
        self.ack_deadline = ack_deadline
        self.token_ttl = token_ttl
        self.spec = spec
        self.spec_checked = 0
        self.strict_channels = strict_channels
        self.expected_token = expected_token
        self.gateway_url = gateway_url
        self.recommended_shards = recommended_shards  # GET /gateway/bot "shards"
        self.scripted: list[ScriptedFailure] = []
        msg = "/channels/{channel_id}/messages/{message_id}"
        hook = "/webhooks/{app_id}/{token}"
        # (method, path template, handler, needs "Authorization: Bot ...")
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("GET", "/oauth2/applications/@me", self._get_app, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/channels/{channel_id}", self._get_channel, True),
            ("POST", "/channels/{channel_id}/typing", self._typing, True),
            ("GET", "/channels/{channel_id}/messages", self._list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self._create_message, True),
            ("GET", msg, self._get_message, True),
            ("PATCH", msg, self._edit_message, True),
            ("DELETE", msg, self._delete_message, True),
            ("PUT", msg + "/reactions/{emoji}/@me", self._react, True),
            ("DELETE", msg + "/reactions/{emoji}/@me", self._react, True),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback, False),
            ("POST", hook, self.followup, False),
            ("GET", hook + "/messages/{message}", self.webhook_message, False),
            ("PATCH", hook + "/messages/{message}", self.webhook_message, False),
            ("DELETE", hook + "/messages/{message}", self.webhook_message, False),
        ]
        for scope in ("", "/guilds/{guild_id}"):
            cmds = f"/applications/{{app_id}}{scope}/commands"
            table += [
                ("GET", cmds, self._get_commands, True),
                ("PUT", cmds, self._put_commands, True),
                ("POST", cmds, self._post_command, True),
            ]
        self.routes = [(m, _compile(t), t, h, auth) for m, t, h, auth in table]

    # --- plumbing -----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix("/api/v10")
        body, files = await read_body(request)
        method = request.method
        route, handler, params, auth = "?", None, {}, True
        for meth, rx, tmpl, h, needs_auth in self.routes:
            match = rx.match(path)
            if match and meth == method:
                route, handler, auth, params = tmpl, h, needs_auth, match.groupdict()
                break
        world = self.world
        query = dict(request.query)
        call = Call(method, path, f"{method} {route}", query, body, files, world.now())
        world.calls.append(call)
        world.route_counts[call.route] += 1
        ctx = Ctx(method, path, query, body, files, params, call, self._channel_of(params))
        try:
            if handler is None:
                raise DiscordAPIError(404, 0, "404: Not Found", source="lookup")
            if auth:
                self._check_auth(request)
                self._global_limit()
            self._scripted_429(ctx)
            reply = await handler(ctx)
        except RateLimitedError as exc:
            reply = self._reply_429(ctx, exc)
        except DiscordAPIError as exc:
            reply = Reply(exc.status, exc.body())
            details = [str(i) for i in exc.issues]
            world.errors.append(
                FakeError(method, path, exc.status, exc.code, exc.message, details, exc.source)
            )
        except Exception as exc:  # a bug in the fake: fail the request fast and visibly
            log.exception("FakeDiscord crashed on %s %s", method, path)
            crash = DiscordAPIError(400, 0, f"FakeDiscord internal error: {exc!r}", source="crash")
            reply = Reply(400, crash.body())
            world.errors.append(FakeError(method, path, 400, 0, crash.message, [], "crash"))
        call.status, call.response = reply.status, reply.body
        await world.notify()
        return json_response(reply.body, reply.status, {**ctx.headers, **reply.headers})

    def _global_limit(self) -> None:
        if self.global_limit is None:
            return
        limit, per = self.global_limit
        now, times = self.world.now(), self._global_times
        while times and times[0] <= now - per:
            times.popleft()
        if len(times) >= limit:
            self.global_429s += 1
            raise RateLimitedError(times[0] + per - now, "global", limit, is_global=True)
        times.append(now)

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        ok = header.startswith("Bot ") and len(header) > 4
        if ok and self.expected_token is not None:
            ok = header == f"Bot {self.expected_token}"
        if not ok:
            raise DiscordAPIError(401, 0, "401: Unauthorized", source="auth")

    def _channel_of(self, params: dict[str, str]) -> int | None:
        if "channel_id" in params:
            return int(params["channel_id"])
        inter = self.world.by_token.get(params.get("token", ""))
        return inter.channel_id if inter else None

    def _scripted_429(self, ctx: Ctx) -> None:
        for failure in self.scripted:
            if failure.method and failure.method.upper() != ctx.method:
                continue
            if isinstance(failure.target, int):
                hit = ctx.channel_id == failure.target
            else:
                hit = failure.target in ctx.path
            if hit:
                failure.times -= 1
                if failure.times <= 0:
                    self.scripted.remove(failure)
                retry, is_global = failure.retry_after, failure.is_global
                raise RateLimitedError(retry, "scripted", 1, is_global=is_global)

    def _reply_429(self, ctx: Ctx, exc: RateLimitedError) -> Reply:
        self.world.ratelimit_hits[ctx.channel_id if ctx.channel_id is not None else ctx.path] += 1
        headers = ratelimit_headers(exc.limit, 0, exc.retry_after, exc.bucket)
        headers["Via"] = "1.1 google"  # without it discord.py assumes a Cloudflare ban
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        headers["X-RateLimit-Scope"] = "global" if exc.is_global else "user"
        if exc.is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {
            "message": "You are being rate limited.",
            "retry_after": exc.retry_after,
            "global": exc.is_global,
        }
        return Reply(429, body, headers)

    # --- login, gateway, commands -------------------------------------------------------

    async def _get_me(self, ctx: Ctx) -> Reply:
        return Reply(body=self.world.bot_user)

    async def _get_app(self, ctx: Ctx) -> Reply:
        world = self.world
        owner = {**world.bot_user, "id": str(world.app_id + 1), "username": "owner", "bot": False}
        return Reply(body=make_application(world.app_id, world.bot_user["username"], owner))

    async def _get_gateway(self, ctx: Ctx) -> Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return Reply(
            body={
                "url": self.gateway_url(),
                "shards": self.recommended_shards,
                "session_start_limit": limit,
            }
        )

    def _command_scope(self, ctx: Ctx) -> int | None:
        if int(ctx.params["app_id"]) != self.world.app_id:
            raise DiscordAPIError(404, 10002, "Unknown Application", source="lookup")
        return int(ctx.params["guild_id"]) if ctx.params.get("guild_id") else None

    def _store_command(self, scope: int | None, cmd: JSON, existing: list[JSON]) -> JSON:
        """Echoes a command with id/application_id/version; ids are stable across syncs."""
        same = [
            c for c in existing if (c["name"], c["type"]) == (cmd.get("name"), cmd.get("type", 1))
        ]
        stored = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **cmd,
            "id": same[0]["id"] if same else str(snowflake()),
            "application_id": str(self.world.app_id),
            "version": str(snowflake()),
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        return stored

    async def _get_commands(self, ctx: Ctx) -> Reply:
        return Reply(body=self.world.commands.get(self._command_scope(ctx), []))

    async def _put_commands(self, ctx: Ctx) -> Reply:
        scope = self._command_scope(ctx)
        existing = self.world.commands.get(scope, [])
        commands = ctx.body if isinstance(ctx.body, list) else []
        self.world.commands[scope] = [self._store_command(scope, c, existing) for c in commands]
        return Reply(body=self.world.commands[scope])

    async def _post_command(self, ctx: Ctx) -> Reply:
        scope = self._command_scope(ctx)
        existing = self.world.commands.setdefault(scope, [])
        stored = self._store_command(scope, as_dict(ctx.body), existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        return Reply(201, stored)

    # --- channels and messages ----------------------------------------------------------

    def _channel(self, channel_id: int) -> JSON:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            if self.strict_channels:
                raise DiscordAPIError(404, 10003, "Unknown Channel", source="lookup")
            channel = {"id": str(channel_id), "type": 0}
        return channel

    async def _create_dm(self, ctx: Ctx) -> Reply:
        user = self.world.users.get(int(as_dict(ctx.body).get("recipient_id") or 0))
        if user is None:
            raise DiscordAPIError(400, 50007, "Cannot send messages to this user", source="lookup")
        return Reply(body=self.world.dm_channel(user))

    async def _get_channel(self, ctx: Ctx) -> Reply:
        return Reply(body=self._channel(int(ctx.params["channel_id"])))

    async def _typing(self, ctx: Ctx) -> Reply:
        cid = int(ctx.params["channel_id"])
        self._channel(cid)
        self.world.typing[cid] += 1
        return Reply(204)

    async def _list_messages(self, ctx: Ctx) -> Reply:
        """Newest first, like Discord; ?limit, ?before, ?after."""
        cid = int(ctx.params["channel_id"])
        self._channel(cid)
        limit = int(ctx.query.get("limit", 50))
        before = int(ctx.query.get("before") or 2**64)
        after = int(ctx.query.get("after") or 0)
        found = [self.world.messages[i] for i in self.world.timelines.get(cid, [])]
        found = [m for m in found if not m.deleted and not m.ephemeral and after < m.id < before]
        found.sort(key=lambda m: m.id, reverse=True)
        return Reply(body=[m.payload() for m in found[:limit]])

    async def _get_message(self, ctx: Ctx) -> Reply:
        msg = self.message_from(int(ctx.params["channel_id"]), int(ctx.params["message_id"]))
        return Reply(body=msg.payload())

    async def _create_message(self, ctx: Ctx) -> Reply:
        cid = int(ctx.params["channel_id"])
        self._channel(cid)
        self.limit(ctx, self.channel_limiter, ("channel", cid), CHANNEL_BUCKET)
        body = as_dict(ctx.body)
        self.validate("create_message", body, self.new_message_issues(body, ctx.files))
        msg = self.new_bot_message(cid, body, ctx.files)
        return Reply(body=msg.payload())

    async def _edit_message(self, ctx: Ctx) -> Reply:
        cid = int(ctx.params["channel_id"])
        msg = self.message_from(cid, int(ctx.params["message_id"]))
        if not msg.from_bot:
            raise DiscordAPIError(403, 50005, "Cannot edit a message authored by another user")
        self.limit(ctx, self.channel_limiter, ("channel", cid), CHANNEL_BUCKET)
        body = as_dict(ctx.body)
        self.check_edit(msg, body, ctx.files, "update_message")
        self.apply_edit(msg, body, ctx.files)
        return Reply(body=msg.payload())

    async def _delete_message(self, ctx: Ctx) -> Reply:
        msg = self.message_from(int(ctx.params["channel_id"]), int(ctx.params["message_id"]))
        msg.deleted = True
        return Reply(204)

    async def _react(self, ctx: Ctx) -> Reply:
        msg = self.message_from(int(ctx.params["channel_id"]), int(ctx.params["message_id"]))
        emoji = ctx.params["emoji"]
        if ctx.method == "PUT" and emoji not in msg.reactions:
            msg.reactions.append(emoji)
        elif ctx.method == "DELETE" and emoji in msg.reactions:
            msg.reactions.remove(emoji)
        return Reply(204)
