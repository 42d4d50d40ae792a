"""Unsharded Discord with two processes on one PostgreSQL database: one gateway session at
a time (two would each get every event and answer it), and the other takes over when it
stops (design §9)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import run_service
from bot.config import Settings, StorageSettings
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.world import discord_settings_for

pytestmark = pytest.mark.e2e

WAIT = 15.0


def on_postgres(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"storage": StorageSettings(url=SecretStr(url))})


async def test_one_process_at_a_time_runs_unsharded_discord(
    tmp_path: Path, postgres_url: str
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        settings = on_postgres(discord_settings_for(tmp_path, comet, dc), postgres_url)
        stops = [asyncio.Event(), asyncio.Event()]
        first = asyncio.create_task(run_service(settings, stop=stops[0]))
        await dc.wait_for(lambda: dc.connected, timeout=WAIT)
        second = asyncio.create_task(run_service(settings, stop=stops[1]))
        await asyncio.sleep(3)  # the second has tried the role at least once meanwhile
        assert len(dc.identified_shards) == 1

        sent = await dc.say("hello once")
        dm = int(sent["channel_id"])
        await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
        await asyncio.sleep(1)
        assert len(comet.requests_to("/v1/chat/completions")) == 1

        stops[0].set()  # the first stops: the second takes Discord over
        assert await asyncio.wait_for(first, WAIT) == 0
        await dc.wait_for(lambda: len(dc.identified_shards) == 2, timeout=WAIT)
        await dc.wait_for(lambda: dc.connected, timeout=WAIT)
        await dc.say("hello again")
        await dc.wait_for(lambda: len(comet.requests_to("/v1/chat/completions")) == 2, WAIT)
        stops[1].set()
        assert await asyncio.wait_for(second, WAIT) == 0
