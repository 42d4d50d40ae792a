"""Result downloads end to end (issue 12, findings 1 and 4): the real python-telegram-bot
against the fake Bot API, the real CometAPI client and its downloader against the fake
CometAPI, whose Midjourney images can be trickled at 1 byte/s (``slowpoke`` in the prompt) or
missing (``vanished``: 404)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.generation_world import generation_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42


async def test_results_on_a_slow_server_do_not_hold_up_another_users_result(
    tmp_path: Path, durable_location: str
) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg, location=durable_location),
    ):
        slow_users = [100, 101, 102, 103]
        for user in slow_users:
            tg.inject_private_message(f"/imagine slowpoke {user}", user_id=user)
        # Four results are now being served at 1 byte/s (the old code's four slots).
        await comet.wait_for(lambda: len(comet.requests_to("/mj/image/")) >= 4, timeout=10)
        started = time.monotonic()
        tg.inject_private_message("/imagine a paper boat", user_id=USER)
        await tg.wait_for(
            lambda: any(m.media_type == "photo" for m in tg.messages(USER)), timeout=8
        )
        assert time.monotonic() - started < 5  # a task of ~1 s, delivered at once
        await tg.wait_for(lambda: "✅ Done" in (tg.messages(USER)[0].text or ""), timeout=5)
        # The trickling downloads are cut off by the minimum rate (5 s windows), not
        # left to run for the minute the whole image would take.
        await comet.wait_for_disconnects(4, timeout=10)
        for user in slow_users:
            assert not any(m.media_type == "photo" for m in tg.messages(user))


async def test_a_result_that_cannot_be_fetched_is_reported_and_refunded(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location) as world:
            tg.inject_private_message("/imagine a vanished boat", user_id=USER)
            await tg.wait_for(
                lambda: any("could not be fetched" in (m.text or "") for m in tg.messages(USER)),
                timeout=15,
            )
            usage = await world.core.store.usage_today(f"tg:{USER}")
        (status,) = tg.messages(USER)
        assert status.text == (
            "🎨 Imagine: a vanished boat\n❌ The result could not be fetched from Midjourney, "
            "so it does not count against your quota. Please try again."
        )
        assert usage.get("imagine", 0) == 0  # refunded
        assert len(comet.requests_to("/mj/image/")) == 2  # tried once more, then given up
        metrics = world.core.metrics.render().decode()
        assert 'cometbot_results_unfetched_total{provider="mj",reason="not_found"} 1.0' in metrics
