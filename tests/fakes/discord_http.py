"""Plumbing shared by FakeDiscord's REST routes: request/response types, rate-limit headers,
body parsing (JSON or multipart payload_json + files[n]), and message building/validation.

Every response is `Content-Type: application/json` exactly: discord.py's json_or_text compares
the header verbatim, and aiohttp's json_response would add "; charset=utf-8"."""

from __future__ import annotations

import json
import math
import mimetypes
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_payloads import JSON, iso_now, snowflake
from tests.fakes.discord_rules import (
    DiscordAPIError,
    FixedWindowLimiter,
    Issue,
    SpecValidator,
    check_message_body,
    invalid_form,
    is_empty_message,
)
from tests.fakes.discord_state import (
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    Call,
    FakeFile,
    FakeInteraction,
    FakeMessage,
    World,
)

CHANNEL_BUCKET = "f4ce0000channelmessages"
WEBHOOK_BUCKET = "f4ce0000webhookmessages"
SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS = 1 << 2, 1 << 12
SETTABLE_FLAGS = EPHEMERAL | IS_COMPONENTS_V2 | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS


class RateLimitedError(Exception):
    def __init__(self, retry_after: float, bucket: str, limit: int, *, is_global: bool) -> None:
        super().__init__(f"429 retry_after={retry_after}")
        self.retry_after = retry_after
        self.bucket = bucket
        self.limit = limit
        self.is_global = is_global


@dataclass
class ScriptedFailure:
    target: int | str
    retry_after: float
    times: int
    method: str | None
    is_global: bool


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    files: list[FakeFile]
    params: dict[str, str]
    call: Call
    channel_id: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # rate-limit headers, also on errors


Handler = Callable[[Ctx], Awaitable[Reply]]


def json_response(body: Any, status: int, headers: dict[str, str]) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": "application/json", **headers},
    )


def ratelimit_headers(
    limit: int, remaining: int, reset_after: float, bucket: str
) -> dict[str, str]:
    """The X-RateLimit-* headers discord.py's RateLimit.update() and the webhook adapter read."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{math.ceil(reset_after * 1000) / 1000:.3f}",
        "X-RateLimit-Bucket": bucket,
    }


def make_limiter(config: tuple[int, float] | None, world: World) -> FixedWindowLimiter | None:
    return FixedWindowLimiter(config[0], config[1], world.now) if config else None


def as_dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


async def read_body(request: web.Request) -> tuple[Any, list[FakeFile]]:
    """JSON body, or multipart with payload_json + files[n]."""
    if not request.can_read_body:
        return None, []
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: list[FakeFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(data.decode())
            else:
                ctype = part.headers.get("Content-Type", "application/octet-stream")
                files.append(FakeFile(name, part.filename or name, ctype, bytes(data)))
        return payload, files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode(errors="replace"), []


class MessageWriter:
    """Validation, rate limiting and message state changes shared by channel and webhook
    routes."""

    world: World
    spec: SpecValidator | None
    spec_checked: int

    def limit(self, ctx: Ctx, limiter: FixedWindowLimiter | None, key: Any, bucket: str) -> None:
        """Counts one write (sets ctx.headers); raises RateLimitedError when the bucket is
        empty. Without a limiter the headers describe a roomy bucket."""
        if limiter is None:
            ctx.headers = ratelimit_headers(50, 49, 1.0, bucket)
            return
        state = limiter.hit(key)
        if not state.allowed:
            retry_after = math.ceil(state.reset_after * 1000) / 1000
            raise RateLimitedError(retry_after, bucket, state.limit, is_global=False)
        ctx.headers = ratelimit_headers(state.limit, state.remaining, state.reset_after, bucket)

    def validate(self, operation: str, body: Any, issues: list[Issue]) -> None:
        """Raises 50035 with the hand-checked issues plus any OpenAPI violations."""
        spec_issues: list[Issue] = []
        if self.spec is not None:
            self.spec_checked += 1
            spec_issues = self.spec.validate(operation, body)
        if issues or spec_issues:
            raise invalid_form([*issues, *spec_issues], source="rule" if issues else "spec")

    def new_message_issues(
        self, body: JSON, files: list[FakeFile], prefix: tuple[str, ...] = ()
    ) -> list[Issue]:
        """Hand checks for a new message; raises 50006 if it would be empty."""
        issues = check_message_body(body, prefix)
        ref = body.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id") and ref.get("fail_if_not_exists", True):
            target = self.world.messages.get(int(ref["message_id"]))
            if target is None or target.deleted:
                path = (*prefix, "message_reference")
                issues.append(Issue(path, "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"))
        if not issues and is_empty_message(body, files=len(files)):
            raise DiscordAPIError(400, 50006, "Cannot send an empty message")
        return issues

    def check_edit(
        self, msg: FakeMessage, body: JSON, files: list[FakeFile], operation: str
    ) -> None:
        self.validate(operation, body, check_message_body(body))
        after = {
            "content": body.get("content", msg.content),
            "embeds": body.get("embeds", msg.embeds),
            "components": body.get("components", msg.components),
            "attachments": body.get("attachments", msg.attachments),
        }
        if is_empty_message(after, files=len(files)):
            raise DiscordAPIError(400, 50006, "Cannot send an empty message")

    def message_from(self, channel_id: int, message_id: int) -> FakeMessage:
        msg = self.world.messages.get(message_id)
        if msg is None or msg.deleted or msg.channel_id != channel_id:
            raise DiscordAPIError(404, 10008, "Unknown Message", source="lookup")
        return msg

    def new_bot_message(
        self,
        channel_id: int,
        body: JSON,
        files: list[FakeFile],
        *,
        interaction: FakeInteraction | None = None,
        flags: int | None = None,
    ) -> FakeMessage:
        world = self.world
        msg = FakeMessage(
            id=snowflake(),
            channel_id=channel_id,
            author=world.bot_user,
            from_bot=True,
            guild_id=world.guild_of(channel_id),
            created_at=world.now(),
            flags=(int(body.get("flags") or 0) & SETTABLE_FLAGS) if flags is None else flags,
            tts=bool(body.get("tts", False)),
            nonce=body.get("nonce"),
        )
        ref = body.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id"):
            target = world.messages.get(int(ref["message_id"]))
            msg.type = 19
            ids = {k: str(v) for k, v in ref.items() if k.endswith("_id") and v is not None}
            msg.message_reference = {"type": ref.get("type") or 0, "channel_id": str(channel_id)}
            msg.message_reference.update(ids)
            msg.referenced_message = target.payload() if target and not target.deleted else None
        if interaction is not None:
            msg.webhook_id = msg.application_id = world.app_id
            msg.interaction_id = interaction.id
            msg.type = 20 if interaction.type == 2 else msg.type
            msg.interaction_metadata = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user,
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        self._fill(msg, body, files, creating=True)
        return world.add_message(msg)

    def apply_edit(self, msg: FakeMessage, body: JSON, files: list[FakeFile]) -> None:
        self._fill(msg, body, files, creating=False)
        msg.edit_count += 1
        msg.edited_at = self.world.now()
        msg.edited_timestamp = iso_now()
        msg.flags &= ~LOADING

    def _fill(self, msg: FakeMessage, body: JSON, files: list[FakeFile], *, creating: bool) -> None:
        if "content" in body or creating:
            msg.content = body.get("content") or ""
        if "embeds" in body or creating:
            msg.embeds = list(body.get("embeds") or [])
        if "components" in body or creating:
            msg.components = list(body.get("components") or [])
        if "flags" in body and not creating and body["flags"] is not None:
            keep = msg.flags & (EPHEMERAL | LOADING)
            msg.flags = keep | (int(body["flags"]) & SETTABLE_FLAGS & ~EPHEMERAL)
        if "attachments" in body and not creating:
            keep_ids = {str(a.get("id")) for a in body["attachments"] or []}
            msg.attachments = [a for a in msg.attachments if a["id"] in keep_ids]
        for f in files:
            ctype = mimetypes.guess_type(f.filename)[0] or f.content_type
            msg.attachments.append(self.world.store_file(msg.channel_id, f.filename, f.data, ctype))
        msg.files.extend(files)
        if "allowed_mentions" in body or creating:
            msg.allowed_mentions = body.get("allowed_mentions")
        msg.allowed_mentions_history.append(body.get("allowed_mentions"))
        msg.history.append(msg.content)
        msg.mentions = [self.world.users[u] for u in msg.pinged_user_ids() if u in self.world.users]
