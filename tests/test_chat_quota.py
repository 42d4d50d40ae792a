"""The daily chat token quota under bursts, on virtual time: admission happens before a
message waits for its conversation, so the quota is checked again when its turn comes, and a
quota-limited user's turns run one at a time in every conversation."""

from __future__ import annotations

import asyncio

from bot.core.access.limits import Limits, LimitsConfig, QuotaExceeded
from bot.core.chat.service import ChatConfig, ChatResult, ChatService
from bot.core.models import ConversationKey, Incoming, Platform
from bot.core.pacing import Pacer, telegram_rules
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.test_chat_service import ScriptedModel, reply_for

USER = "tg:1"


def message(chat: str, user: str = USER) -> Incoming:
    key = ConversationKey(Platform.TELEGRAM, chat)
    return Incoming(key=key, user_id=user, user_name="Ann", text="hello there")


async def burst(
    chats: list[str], *, quota: int, exempt: frozenset[str] = frozenset()
) -> tuple[list[ChatResult | BaseException], ScriptedModel]:
    """Five messages (one per entry of ``chats``) admitted at once, then answered at once."""
    clock = FakeClock()
    model = ScriptedModel(clock)
    for _ in chats:
        model.script(["Fine", "."], delay=1.0)  # 11 prompt + 2 completion tokens
    async with Store.open(":memory:") as store, clock.auto():
        limits = Limits(LimitsConfig(daily_chat_tokens=quota, exempt=exempt), store, wall=clock)
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="-")
        chat = ChatService(model=model, store=store, config=config, clock=clock, turns=limits)
        pacer = Pacer(telegram_rules(), clock=clock)
        for _ in chats:  # every one is admitted before any usage is stored
            await limits.admit_chat(USER)
        answers = [chat.answer(message(c), reply_for(clock, pacer)[0]) for c in chats]
        return await asyncio.gather(*answers, return_exceptions=True), model


async def test_a_burst_in_one_chat_sends_one_request_when_it_uses_the_quota_up() -> None:
    results, model = await burst(["42"] * 5, quota=10)  # one answer costs 13 tokens
    assert len(model.requests) == 1
    assert isinstance(results[0], ChatResult)
    assert all(isinstance(r, QuotaExceeded) for r in results[1:])


async def test_a_burst_across_chats_is_held_to_one_turn_at_a_time() -> None:
    results, model = await burst(["1", "2", "3", "4", "5"], quota=30)  # room for three
    assert len(model.requests) == 3
    assert model.max_active == 1  # never two of this user's answers upstream at once
    assert [type(r).__name__ for r in results].count("QuotaExceeded") == 2


async def test_no_quota_or_an_exempt_user_is_not_held_back() -> None:
    _, model = await burst(["1", "2", "3"], quota=0)
    assert len(model.requests) == 3
    _, model = await burst(["1", "2", "3"], quota=10, exempt=frozenset({USER}))
    assert len(model.requests) == 3
