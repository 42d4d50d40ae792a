"""The Discord side of ``bench.streaming``'s fakes process: FakeDiscord with its default limits.

Imported only in the fakes' child process (``bench/_fakes_process.py``), so the bot's process
never loads the fake. Each chat is one user (``make_user``) writing in their own DM channel,
so each has its own 5-writes-per-5-s channel budget. FakeDiscord (``time.monotonic``, like the
fake CometAPI) records every request on arrival; this subclass also notes, per DM channel, when
the bot's first message ``POST`` arrived and the request after which the channel's bot messages
joined read exactly the expected answer (Discord gets the model's Markdown as is).
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_http import Ctx, Reply
from tests.fakes.discord_payloads import JSON

TOKEN = "bench-discord-token"
MESSAGES = "/channels/{channel_id}/messages"
MESSAGE = "/channels/{channel_id}/messages/{message_id}"
CHANNEL_WINDOW = 5.0  # FakeDiscord's default per-channel limit: 5 writes per 5 s


class BenchDiscord(FakeDiscord):
    """FakeDiscord (default rate limits, spec checks on) noting first posts and final texts."""

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.expected: dict[int, str] = {}  # DM channel id -> the answer it must show
        self.first_send_at: dict[int, float] = {}
        self.final_at: dict[int, float] = {}
        self._observe_writes()
        spec = self.rest.spec
        if spec is not None:  # compiled lazily on the first message otherwise: warm it now
            spec.validate("create_message", {"content": "warm", "allowed_mentions": {"parse": []}})
            spec.validate("update_message", {"content": "warm", "allowed_mentions": {"parse": []}})

    def _observe_writes(self) -> None:
        """Wrap the message create/edit handlers (the route table holds bound methods)."""
        routes = []
        for method, rx, template, handler, auth in self.rest.routes:
            observed = handler
            if (method, template) in (("POST", MESSAGES), ("PATCH", MESSAGE)):
                observed = functools.partial(self._observed, handler, method == "POST")
            routes.append((method, rx, template, observed, auth))
        self.rest.routes = routes

    async def _observed(
        self, handler: Callable[[Ctx], Awaitable[Reply]], first: bool, ctx: Ctx
    ) -> Reply:
        reply = await handler(ctx)  # a 429 or a 4xx raises: only accepted writes are noted
        channel = ctx.channel_id
        if channel is None or reply.status >= 300:
            return reply
        at = ctx.call.at
        if first:
            self.first_send_at.setdefault(channel, at)
        expected = self.expected.get(channel)
        if (
            channel not in self.final_at
            and expected is not None
            and self.shown(channel) == expected
        ):
            self.final_at[channel] = at
        return reply

    def shown(self, channel: int) -> str:
        return "".join(m.content for m in self.messages(channel))


class DiscordSide:
    """The fakes process's Discord half: users, their DM channels, injection and results."""

    def __init__(self, dc: BenchDiscord, plan: dict[int, list[str]], question: str) -> None:
        self.dc = dc
        self.channels: dict[int, int] = {}  # chat number -> DM channel id
        self.payloads: list[JSON] = []
        for n, tokens in plan.items():
            user = dc.make_user(f"bench{n}")
            channel = int(dc.dm_channel(user)["id"])
            self.channels[n] = channel
            dc.expected[channel] = "".join(tokens)
            self.payloads.append(dc.user_message(question.format(n=n), author=user))

    def hello(self) -> dict[str, Any]:
        return {
            "dc_token": TOKEN,
            "dc_api_base_url": self.dc.api_base_url,
            "dc_gateway_url": self.dc.gateway_url,
        }

    async def inject(self) -> None:
        """Every user's DM goes out on the gateway back to back (one MESSAGE_CREATE each)."""
        for payload in self.payloads:
            await self.dc.push_message(payload)

    def results(self, comet: Any, injected_at: float) -> dict[str, Any]:
        dc = self.dc
        chats: list[dict[str, Any]] = []
        mismatches: list[dict[str, Any]] = []
        for n, channel in self.channels.items():
            messages = dc.messages(channel)
            expected = dc.expected[channel]
            if dc.shown(channel) != expected:
                mismatches.append(
                    {
                        "chat": n,
                        "expected": expected[-80:],
                        "shown": [m.content[-80:] for m in messages],
                    }
                )
            chats.append(
                {
                    "request": comet.request_at.get(n),
                    "first_token": comet.first_token_at.get(n),
                    "first_send": dc.first_send_at.get(channel),
                    "final": dc.final_at.get(channel),
                    "edits": sum(m.edit_count for m in messages),
                    "messages": len(messages),
                }
            )
        rest = dc.calls()
        calls = Counter(f"{c.route} {c.status}" for c in rest if c.at >= injected_at)
        writes = [
            c
            for c in rest
            if c.route in (f"POST {MESSAGES}", f"PATCH {MESSAGE}") and 200 <= c.status < 300
        ]
        refused = []
        for call in rest:
            if call.status != 429:
                continue
            channel = _channel_of(call.path)
            recent = [c for c in writes if call.at - CHANNEL_WINDOW < c.at <= call.at]
            refused.append(
                {
                    "t": round(call.at - injected_at, 3),
                    "channel": channel,
                    "method": call.method,
                    "channel_5s": sum(1 for c in recent if _channel_of(c.path) == channel),
                }
            )
        peak_1s = _peak_per_second(c.at for c in writes)
        # Discord's global limit (50 requests/s per bot, platforms.md §4) counts every REST
        # request, typing included; FakeDiscord enforces it (a 429 counts in ratelimit_hits).
        peak_rest_1s = _peak_per_second(c.at for c in rest if c.at >= injected_at)
        return {
            "injected_at": injected_at,
            "chats": chats,
            "mismatches": len(mismatches),
            "mismatch_examples": mismatches[:3],
            "total_429s": sum(dc.ratelimit_hits.values()),
            "refused": refused,
            "peak_counted_per_1s": peak_1s,
            "peak_rest_per_1s": peak_rest_1s,
            "errors": len(dc.errors),
            "error_examples": [
                f"{e.method} {e.path} {e.status} {e.code} {e.message} {e.details[:2]}"
                for e in dc.errors[:3]
            ],
            "calls": dict(sorted(calls.items())),
            "spec_problems": len(dc.spec_errors),
            "typing": sum(dc.typing.values()),
            # Raw timeline for --dump: [seconds after injection, channel, route, status].
            "timeline": [
                [round(c.at - injected_at, 4), _channel_of(c.path), c.route, c.status]
                for c in rest
                if c.at >= injected_at
            ],
            "upstream_requests": len(comet.requests_to("/v1/chat/completions")),
            "upstream_disconnects": comet.disconnects,
        }


def _peak_per_second(stamps: Iterable[float]) -> int:
    """The most stamps in any rolling second."""
    times = sorted(stamps)
    return max(
        (i + 1 - bisect.bisect_right(times, t - 1.0) for i, t in enumerate(times)), default=0
    )


def _channel_of(path: str) -> int | None:
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "channels" and parts[2].isdigit():
        return int(parts[2])
    return None
