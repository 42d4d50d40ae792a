"""Answer limits on virtual time: a stream that goes quiet (keep-alives and empty chunks are
not progress), runs too long or grows too long is stopped; its text so far stays with a
"stopped early" note, is stored, and the conversation is free for the next message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import pytest

from bot.core.chat.service import ChatConfig, ChatService
from bot.core.chat.watch import AnswerLimits, EarlyStop, StreamWatch
from bot.core.models import ChatDelta, ChatMessage, Role, Usage
from bot.core.pacing import Pacer, telegram_rules
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.test_chat_service import KEY, incoming, reply_for

LIMITS = AnswerLimits(idle_timeout=30.0, deadline=300.0, max_chars=50)


class EndlessModel:
    """Sends ``text`` one piece per second, then ``after`` forever (every second), or the
    scripted answer once the endless ones are used up; records when each stream closed."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.scripts: list[tuple[list[ChatDelta], ChatDelta | None]] = []
        self.closed_at: list[float] = []

    def script(self, pieces: list[ChatDelta], after: ChatDelta | None = None) -> None:
        self.scripts.append((pieces, after))

    async def stream(
        self, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[ChatDelta, None]:
        pieces, after = self.scripts.pop(0)
        try:
            for piece in pieces:
                await self.clock.sleep(1.0)
                yield piece
            while after is not None:
                await self.clock.sleep(1.0)
                yield after
            yield ChatDelta(usage=Usage(prompt_tokens=5, completion_tokens=len(pieces)))
        finally:
            self.closed_at.append(self.clock.now())

    async def list_models(self) -> list[str]:
        return ["gpt-4o-mini"]


World = tuple[ChatService, EndlessModel, Store, FakeClock, Pacer]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    model = EndlessModel(clock)
    async with Store.open(":memory:") as store, clock.auto():
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="-", answer_limits=LIMITS)
        chat = ChatService(model=model, store=store, config=config, clock=clock)
        yield chat, model, store, clock, Pacer(telegram_rules(), clock=clock)


def text(*pieces: str) -> list[ChatDelta]:
    return [ChatDelta(text=p) for p in pieces]


async def test_empty_chunks_are_not_progress_and_the_channel_is_freed(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script(text("Half ", "an answer"), after=ChatDelta(text="", finish_reason=None))
    model.script(text("Next."))
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("go"), reply)
    assert result.stopped is EarlyStop.IDLE and result.error is None
    assert result.text == "Half an answer"
    assert model.closed_at == [2.0 + LIMITS.idle_timeout]  # 30 s after the last text
    assert surface.final_texts() == [f"Half an answer\n\n{EarlyStop.IDLE.note}"]
    # the lock is free: the next message is answered, and the cut answer is in its context
    second, _ = reply_for(clock, pacer)
    assert (await chat.answer(incoming("more"), second)).text == "Next."
    turns = await store.recent_turns(KEY, limit=10)
    assert [(t.role, t.content) for t in turns] == [
        (Role.USER, "go"),
        (Role.ASSISTANT, "Half an answer"),
        (Role.USER, "more"),
        (Role.ASSISTANT, "Next."),
    ]


async def test_reasoning_is_progress_but_the_deadline_still_holds(world: World) -> None:
    chat, model, _, clock, pacer = world
    model.script(text("Thinking:"), after=ChatDelta(reasoning="hmm "))
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("a hard one"), reply)
    assert result.stopped is EarlyStop.DEADLINE
    assert model.closed_at == [LIMITS.deadline]  # never idle: reasoning kept coming
    assert surface.final_texts() == [f"Thinking:\n\n{EarlyStop.DEADLINE.note}"]


async def test_an_answer_is_cut_at_the_length_limit(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script([], after=ChatDelta(text="0123456789 "))  # 11 characters a second, forever
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("count"), reply)
    assert result.stopped is EarlyStop.LENGTH
    assert result.text == ("0123456789 " * 5)[: LIMITS.max_chars]
    assert model.closed_at == [5.0]
    assert surface.final_texts() == [f"{result.text}\n\n{EarlyStop.LENGTH.note}"]
    turns = await store.recent_turns(KEY, limit=10)
    assert turns[-1].content == result.text


async def test_an_answer_within_the_limits_is_untouched(world: World) -> None:
    chat, model, _, clock, pacer = world
    model.script(text(*["word " for _ in range(9)], "end."))  # 10 s, 49 characters
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("talk"), reply)
    assert result.stopped is None and len(result.text) == 49
    assert surface.final_texts() == [result.text]


async def test_stop_from_outside_keeps_the_text_so_far(world: World) -> None:
    """The shared path: anything that ends an answer early gives a reason to ``stop``."""
    _, model, _, clock, _ = world
    model.script([], after=ChatDelta(text="la "))
    watch = StreamWatch(LIMITS, clock)
    fed: list[str] = []

    async def stop_soon() -> None:
        await clock.sleep(3.5)
        watch.stop(EarlyStop.DEADLINE)

    stopper = asyncio.create_task(stop_soon())
    streamed = await watch.run(model.stream("m", []), fed.append)
    await stopper
    assert streamed.stopped is EarlyStop.DEADLINE
    assert streamed.text == "".join(fed) == "la la la "
    assert model.closed_at == [3.5]
