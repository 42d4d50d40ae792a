"""FakeDiscord's global limit: 50 requests per rolling second per bot, like Discord."""

from __future__ import annotations

import aiohttp

from tests.fakes.clock import FakeClock
from tests.fakes.discord import FakeDiscord


async def test_the_51st_request_in_a_second_gets_a_global_429() -> None:
    clock = FakeClock(start=100.0)
    async with FakeDiscord(clock=clock) as dc, aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bot test-token"}
        statuses = []
        for _ in range(51):
            async with http.get(f"{dc.api_base_url}/users/@me", headers=headers) as response:
                statuses.append(response.status)
                last = (await response.json(), dict(response.headers))
        assert statuses[:50] == [200] * 50
        assert statuses[50] == 429
        body, answer_headers = last
        assert body["global"] is True and 0 < body["retry_after"] <= 1.0
        assert answer_headers["X-RateLimit-Global"] == "true"
        assert answer_headers["Via"]  # discord.py sleeps on it instead of assuming a ban
        await clock.advance(1.0)  # a rolling second later the bot may go on
        async with http.get(f"{dc.api_base_url}/users/@me", headers=headers) as response:
            assert response.status == 200
        assert dc.rest.global_429s == 1
