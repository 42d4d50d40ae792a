"""Chat against hostile or unlucky upstreams and users, end to end: the real
python-telegram-bot against the fake Bot API, the real CometAPI client against the fake
CometAPI, a real SQLite file (issue 12: split surrogates, endless streams, quota bursts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.chat.watch import EarlyStop
from bot.core.models import ConversationKey, Platform, Turn
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.world import TelegramService, rendered, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
KEY = ConversationKey(Platform.TELEGRAM, str(USER))


async def stored_turns(svc: TelegramService, count: int) -> list[Turn]:
    """The conversation's turns once there are ``count`` (the answer is stored right after
    its final edit)."""
    for _ in range(250):
        turns = await svc.core.store.recent_turns(KEY, limit=20)
        if len(turns) >= count:
            return turns
        await asyncio.sleep(0.02)
    return await svc.core.store.recent_turns(KEY, limit=20)


async def test_an_emoji_split_across_two_chunks_is_shown_and_stored(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        # 😀 escaped as two JSON surrogates, cut between them; then a half that stays alone.
        comet.script_chat(tokens=["Smile ", "\ud83d", "\ude00", " done."], ascii_json=True)
        comet.script_chat(tokens=["Half ", "\ud83d", " gone."], ascii_json=True)
        async with telegram_service(tmp_path, comet, tg) as svc:
            tg.inject_private_message("smile please", user_id=USER)
            await tg.wait_for_message(USER, rendered("Smile 😀 done."), timeout=10)
            turns = await stored_turns(svc, 2)
            tg.inject_private_message("again", user_id=USER)
            await tg.wait_for_message(USER, rendered("Half \ufffd gone."), timeout=10)
            turns = await stored_turns(svc, 4)
            await tg.wait_idle(quiet=0.3)
        texts = [m.text for m in tg.messages(USER)]
        assert texts == ["Smile 😀 done.", "Half \ufffd gone."]
        assert [t.content for t in turns] == [
            "smile please",
            "Smile 😀 done.",
            "again",
            "Half \ufffd gone.",
        ]


async def test_a_stream_of_keep_alives_is_stopped_and_the_channel_is_free(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        # Two words, then keep-alive comments and empty deltas forever.
        comet.script_chat(tokens=["Partial ", "answer"], keepalive_after=2)
        comet.script_chat(tokens=["Second answer."])
        async with telegram_service(tmp_path, comet, tg, answer_idle_timeout=1.0) as svc:
            tg.inject_private_message("first", user_id=USER)
            await tg.wait_for_message(USER, "Partial", timeout=10)
            tg.inject_private_message("second", user_id=USER)  # waits for the channel
            await tg.wait_for_message(USER, "Second answer.", timeout=10)
            turns = await stored_turns(svc, 4)
            await tg.wait_idle(quiet=0.3)
        texts = [m.text for m in tg.messages(USER)]
        assert texts == [rendered(f"Partial answer\n\n{EarlyStop.IDLE.note}"), "Second answer."]
        assert [t.content for t in turns] == ["first", "Partial answer", "second", "Second answer."]
        assert comet.disconnects == 1  # the endless request was closed


async def test_a_burst_of_messages_does_not_overshoot_the_token_quota(tmp_path: Path) -> None:
    quota = {"limits": {"daily_chat_tokens": 40}}
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        for i in range(5):  # each answer costs 53 tokens: the first one uses the quota up
            comet.script_chat(tokens=[f"Answer {i}."], usage=(40, 13), delay=0.2)
        async with telegram_service(tmp_path, comet, tg, sections=quota) as svc:
            for i in range(5):  # all at once: admitted together, before any usage is stored
                tg.inject_private_message(f"question {i}", user_id=USER)
            await tg.wait_for_message(USER, "Answer 0.", timeout=10)
            await tg.wait_for_message(USER, "chat tokens for today", timeout=10)
            await tg.wait_idle(quiet=0.5)
            used = await svc.core.store.usage_today(f"tg:{USER}")
        assert len(comet.requests_to("/v1/chat")) == 1
        assert used["prompt_tokens"] + used["completion_tokens"] == 53
        texts = [m.text for m in tg.messages(USER)]
        # one answer and one refusal; the other refusals of the burst stay quiet
        assert texts[0] == "Answer 0."
        assert len(texts) == 2 and "40 chat tokens" in texts[1]
