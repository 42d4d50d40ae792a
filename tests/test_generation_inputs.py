"""Hostile and unlucky input, end to end (issue 12): Midjourney parameter injection, invisible
prompts, buttons pressed out of place or twice, captions for other bots, albums out of order.

The real python-telegram-bot and discord.py against the fakes, the real CometAPI client
against the fake CometAPI, a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.generation_world import generation_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
OTHER = 43
GROUP = -100555
ONE_IMAGINE = {"limits": {"daily_imagine": 1}}


def submits(comet: FakeCometAPI) -> list[str]:
    return [r.path for r in comet.requests if "/submit" in r.path]


def photos(tg: FakeTelegram, chat: int) -> list[StoredMessage]:
    return [m for m in tg.messages(chat) if m.media_type == "photo"]


async def test_injected_midjourney_parameters_are_refused_before_any_quota(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, sections=ONE_IMAGINE):
            for text, reply in [
                ("/imagine a cat \u2014turbo --repeat 40 --q 4", "Please remove --turbo"),
                ("/imagine a cat \u2013fast", "Please remove --fast"),
                ("/imagine a cat --repeat 40", "Please remove --repeat"),
                ("/imagine a cat \u2014r 40", "Please remove --r"),
                ("/imagine a cat --q 4", "--q must be .25, .5 or 1"),
            ]:
                tg.inject_private_message(text, user_id=USER)
                await tg.wait_for_message(USER, reply, timeout=10)
            assert submits(comet) == []
            tg.inject_private_message("/imagine a cat \u2014ar 16:9", user_id=USER)
            await tg.wait_for(lambda: photos(tg, USER), timeout=15)  # the quota of 1 is intact
        assert comet.requests_to("/mj/submit/imagine")[0].json == {"prompt": "a cat --ar 16:9"}


async def test_speed_flags_pass_when_the_operator_allows_them(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, mj_allow_speed_flags=True):
            tg.inject_private_message("/imagine a cat \u2014turbo", user_id=USER)
            await tg.wait_for(lambda: photos(tg, USER), timeout=15)
        assert comet.requests_to("/mj/submit/imagine")[0].json == {"prompt": "a cat --turbo"}


async def test_invisible_prompts_and_messages_are_empty(tmp_path: Path) -> None:
    async with (
        FakeCometAPI(task_steps=2) as comet,
        FakeTelegram(rate_limits=False) as tg,
        generation_service(tmp_path, comet, tg, sections=ONE_IMAGINE),
    ):
        tg.inject_private_message("/imagine \u200b\u200b \u2060\ufeff", user_id=USER)
        await tg.wait_for_message(USER, "Tell me what to imagine", timeout=10)
        tg.inject_private_message("/music \u200c\u200d", user_id=USER)
        await tg.wait_for_message(USER, "Describe the song", timeout=10)
        tg.inject_private_message("\u200b\u200c\u200d\u2060\ufeff", user_id=USER)
        await tg.wait_for_message(USER, "Send me some text", timeout=10)
        assert submits(comet) == [] and comet.requests_to("/v1/chat") == []
        tg.inject_private_message("/imagine a cat", user_id=USER)
        await tg.wait_for(lambda: photos(tg, USER), timeout=15)  # the quota of 1 is intact
