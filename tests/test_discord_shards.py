"""Discord sharding: ``[discord] shard_count``/``shard_ids`` run discord.py's sharded client,
one gateway session per owned shard; each process gets its share of the request budget.

End to end: the real DiscordBot (real discord.py) against the fake Discord, which delivers a
guild's events only on its shard's session and DMs only on shard 0, as Discord does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Core, discord_share, open_core, platform_services
from bot.config import DiscordSettings, Settings
from bot.core.models import Platform
from bot.core.pacing import DISCORD_GLOBAL_WINDOWS
from bot.platforms.discord.bot import DiscordBot
from bot.platforms.discord.messages import conversation_key, route_of
from bot.platforms.discord.shards import DM_SHARD, ShardPlan
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_payloads import snowflake_on_shard
from tests.world import DISCORD_TOKEN, chat_requests, settings_for

WAIT = 15.0


def sharded_settings(
    tmp_path: Path, comet: FakeCometAPI, dc: FakeDiscord, count: int, ids: list[int]
) -> Settings:
    discord = DiscordSettings(
        token=DISCORD_TOKEN,
        api_base_url=dc.api_base_url,
        gateway_url=dc.gateway_url,
        shard_count=count,
        shard_ids=ids,
    )
    settings = settings_for(tmp_path, comet)
    return settings.model_copy(update={"discord": discord})


@contextlib.asynccontextmanager
async def shard_process(
    tmp_path: Path, comet: FakeCometAPI, dc: FakeDiscord, count: int, ids: list[int]
) -> AsyncIterator[tuple[Core, DiscordBot]]:
    """What one ``python -m bot`` process with these shards runs: its own core and database,
    the platform services of bot.app (the pacer with its budget share) and the DiscordBot."""
    settings = sharded_settings(tmp_path, comet, dc, count, ids)
    async with open_core(settings) as core:
        bot = DiscordBot(
            settings.discord,
            platform_services(core, settings, Platform.DISCORD),
            guild_ready_timeout=0.05,
            identify_interval=0.0,  # discord.py's 5 s between IDENTIFYs: Discord's, not the fake's
        )
        async with bot:
            yield core, bot


def last_text(dc: FakeDiscord, channel_id: int) -> str:
    last = dc.last_message(channel_id)
    return last.content if last is not None else ""


async def turns(core: Core, channel_id: int) -> int:
    return len(await core.store.recent_turns(conversation_key(channel_id), limit=10))


# -- unit: the plan and the budget share ---------------------------------------------------------


def test_a_process_posts_the_results_of_the_shards_it_runs() -> None:
    assert ShardPlan(4, (0, 1)).sessions == (0, 1)
    assert ShardPlan(4, (2, 3)).sessions == (2, 3)
    assert ShardPlan().sessions == (DM_SHARD,)  # unsharded: one session, with the DMs


def test_each_process_paces_with_its_share_of_the_global_budget(tmp_path: Path) -> None:
    def share(count: int, ids: list[int]) -> float:
        settings = Settings(discord={"token": "t", "shard_count": count, "shard_ids": ids})
        return discord_share(settings)

    assert share(0, []) == 1.0  # unsharded: the whole budget
    assert share(4, []) == 1.0  # every shard in one process
    assert share(4, [1]) == 0.25
    assert share(3, [0, 2]) == pytest.approx(2 / 3)


@pytest.mark.e2e
async def test_the_pacer_bot_app_builds_has_the_share(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        settings = sharded_settings(tmp_path, comet, dc, 4, [1])
        async with open_core(settings) as core:
            pacer = platform_services(core, settings, Platform.DISCORD).pacer
            whole = [w.count for w in DISCORD_GLOBAL_WINDOWS]
            assert [w.count for w in pacer.rules.global_windows] == [c // 4 for c in whole]


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_one_process_with_both_shards_answers_a_guild_on_shard_one_and_a_dm(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = dc.make_guild("Comets", guild_id=snowflake_on_shard(1, 2))
        general = dc.channel(guild, "general")
        async with shard_process(tmp_path, comet, dc, 2, [0, 1]) as (_, bot):
            assert dc.identified_shards == [(0, 2), (1, 2)]
            # The routes its tasks get (discord.py's own Guild) are all this process's to post.
            on_one = route_of(bot.client.get_guild(int(guild["id"])))
            assert on_one == "dc:1" and {on_one, route_of(None)} <= bot.outbox.routes()
            await dc.say("hello guild", channel=general, mention_bot=True)
            await dc.wait_for(
                lambda: last_text(dc, int(general["id"])) == "Echo: [Alice] hello guild",
                timeout=WAIT,
            )
            dm = await dc.say("hello dm")
            await dc.wait_for(
                lambda: "hello dm" in last_text(dc, int(dm["channel_id"])), timeout=WAIT
            )
        events = dc.gateway.events_by_shard
        assert events[1].count("MESSAGE_CREATE") == 1  # the guild's, on its shard
        assert events[0].count("MESSAGE_CREATE") == 1  # the DM, on shard 0
        assert len(chat_requests(comet)) == 2


@pytest.mark.e2e
async def test_two_processes_answer_a_mention_once_by_the_owner_of_its_shard(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = dc.make_guild("Comets", guild_id=snowflake_on_shard(1, 2))
        general = dc.channel(guild, "general")
        channel_id = int(general["id"])
        async with (
            shard_process(tmp_path / "a", comet, dc, 2, [0]) as (core_a, bot_a),
            shard_process(tmp_path / "b", comet, dc, 2, [1]) as (core_b, bot_b),
        ):
            assert sorted(dc.identified_shards) == [(0, 2), (1, 2)]
            route = route_of(bot_b.client.get_guild(int(guild["id"])))
            assert route not in bot_a.outbox.routes() and route in bot_b.outbox.routes()
            assert route_of(None) in bot_a.outbox.routes()  # DMs: shard 0's process
            await dc.say("who answers?", channel=general, mention_bot=True)
            await dc.wait_for(lambda: dc.messages(channel_id), timeout=WAIT)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=WAIT)
            # A DM goes to shard 0's process, which answers it.
            dm = await dc.say("and a dm")
            await dc.wait_for(lambda: dc.messages(int(dm["channel_id"])), timeout=WAIT)
            await dc.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=WAIT)
            assert await turns(core_b, channel_id) == 2  # the owner stored the exchange
            assert await turns(core_a, channel_id) == 0
            assert await turns(core_a, int(dm["channel_id"])) == 2
            assert await turns(core_b, int(dm["channel_id"])) == 0
        assert [m.content for m in dc.messages(channel_id)] == ["Echo: [Alice] who answers?"]
        assert len(chat_requests(comet)) == 2
