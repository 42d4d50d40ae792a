"""FakeDiscord shards like Discord: GET /gateway/bot recommends a count, IDENTIFY names
``[shard, count]``, a guild's events reach only its shard's session, DMs only shard 0's, and
an invalid shard is refused with 4010. Driven by discord.py's real AutoShardedClient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import aiohttp
import discord
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_gateway import INVALID_SHARD
from tests.fakes.discord_payloads import snowflake_on_shard

pytestmark = pytest.mark.e2e

T = TypeVar("T")


class QuickShards(discord.AutoShardedClient):
    """discord.py waits 5 s between IDENTIFYs (Discord's pace); the fake needs no wait."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


@pytest.fixture
async def dc(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(recommended_shards=2) as fake:
        fake.install(monkeypatch)
        yield fake


def sharded(
    shard_count: int | None = None, shard_ids: list[int] | None = None
) -> tuple[QuickShards, list[tuple[int | None, str]]]:
    """A sharded client recording (shard id, content) of every message it sees."""
    intents = discord.Intents.default()
    intents.message_content = True
    client = QuickShards(
        intents=intents, shard_count=shard_count, shard_ids=shard_ids, guild_ready_timeout=0.05
    )
    seen: list[tuple[int | None, str]] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        guild = message.guild
        seen.append((guild.shard_id if guild else None, message.content))

    return client, seen


async def soon(predicate: Callable[[], T | None]) -> T:
    """The client handles a dispatch after the fake sent it, which the fake's wait_for does
    not see: poll."""
    for _ in range(250):
        if result := predicate():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("the client never got there")


async def test_the_recommended_count_is_used_and_each_shard_identifies(dc: FakeDiscord) -> None:
    client, _ = sharded()  # no shard_count: discord.py asks GET /gateway/bot
    async with dc.running(client):
        assert dc.calls("GET", "/gateway/bot")
        assert client.shard_count == 2
        assert dc.identified_shards == [(0, 2), (1, 2)]
        assert [dc.gateway.by_shard[i].shard for i in (0, 1)] == [(0, 2), (1, 2)]


async def test_guild_events_reach_only_their_shard_and_dms_only_shard_zero(
    dc: FakeDiscord,
) -> None:
    # Known guilds come with the READY of their shard; a later one by guild_create().
    on_zero = dc.make_guild("zero", guild_id=snowflake_on_shard(0, 2))
    client, seen = sharded(2)
    async with dc.running(client):
        on_one = dc.make_guild("one", guild_id=snowflake_on_shard(1, 2))
        await dc.guild_create(on_one)
        joined = await soon(lambda: client.get_guild(int(on_one["id"])))
        assert joined.shard_id == 1
        assert client.get_guild(int(on_zero["id"])).shard_id == 0  # type: ignore[union-attr]
        await dc.say("in one", channel=on_one["channels"][0])
        await dc.say("in zero", channel=on_zero["channels"][0])
        await dc.say("a dm")
        await soon(lambda: len(seen) == 3)
    assert sorted(seen, key=str) == sorted([(1, "in one"), (0, "in zero"), (None, "a dm")], key=str)
    events = dc.gateway.events_by_shard
    assert events[0].count("MESSAGE_CREATE") == 2  # "in zero" and the DM
    assert events[1].count("MESSAGE_CREATE") == 1  # "in one"
    assert events[0].count("GUILD_CREATE") == 1 and events[1].count("GUILD_CREATE") == 1


async def test_events_of_a_shard_nobody_runs_are_dropped(dc: FakeDiscord) -> None:
    elsewhere = dc.make_guild("elsewhere", guild_id=snowflake_on_shard(1, 2))
    client, seen = sharded(2, [0])  # this client runs shard 0 only
    async with dc.running(client):
        await dc.guild_create(elsewhere)
        await dc.say("not for shard 0", channel=elsewhere["channels"][0])
        await dc.say("a dm")
        await soon(lambda: seen)
    assert dc.identified_shards == [(0, 2)]
    assert seen == [(None, "a dm")]
    assert dc.gateway.dropped == ["GUILD_CREATE", "MESSAGE_CREATE"]


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], "0"])
async def test_an_invalid_shard_is_closed_with_4010(dc: FakeDiscord, shard: object) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(dc.gateway_url) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["op"] == 10
        identify = {"token": "t", "intents": 0, "properties": {}, "shard": shard}
        await ws.send_str(json.dumps({"op": 2, "d": identify}))
        frame = await asyncio.wait_for(ws.receive(), 5)
        assert frame.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == INVALID_SHARD
    assert dc.identified_shards == []
    assert not dc.connected
