"""ChatService on virtual time: a scripted model, a real in-memory store, a recording surface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import pytest

from bot.core.chat.service import ChatConfig, ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import ModelAuthError, StreamCut, UserFacingError
from bot.core.models import (
    ChatDelta,
    ChatMessage,
    ConversationKey,
    ImageInput,
    Incoming,
    Platform,
    Role,
    Usage,
)
from bot.core.pacing import TELEGRAM_PRIVATE, Pacer, telegram_rules
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.surface import FakeSurface

KEY = ConversationKey(Platform.TELEGRAM, "42")


class ScriptedModel:
    """Yields scripted tokens with virtual delays; records every request."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[tuple[str, list[ChatMessage]]] = []
        self.scripts: list[tuple[list[str], float, Exception | None]] = []
        self.active = 0
        self.max_active = 0
        self.closed = 0

    def script(self, tokens: list[str], delay: float = 0.1, fail: Exception | None = None) -> None:
        self.scripts.append((tokens, delay, fail))

    async def stream(
        self, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[ChatDelta, None]:
        self.requests.append((model, list(messages)))
        tokens, delay, fail = self.scripts.pop(0) if self.scripts else (["ok"], 0.1, None)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            for token in tokens:
                await self.clock.sleep(delay)
                yield ChatDelta(text=token)
            if fail is not None:
                raise fail
            yield ChatDelta(usage=Usage(prompt_tokens=11, completion_tokens=len(tokens)))
        finally:
            self.active -= 1
            self.closed += 1

    async def list_models(self) -> list[str]:
        return ["gpt-4o-mini", "gpt-4o", "some-rare-model"]


World = tuple[ChatService, ScriptedModel, Store, FakeClock, Pacer]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    clock = FakeClock()
    model = ScriptedModel(clock)
    async with Store.open(":memory:") as store, clock.auto():
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="Be brief.")
        chat = ChatService(model=model, store=store, config=config)
        yield chat, model, store, clock, Pacer(telegram_rules(), clock=clock)


def reply_for(clock: FakeClock, pacer: Pacer) -> tuple[StreamingReply, FakeSurface]:
    surface = FakeSurface(clock)
    reply = StreamingReply(surface, pacer=pacer, lane="42", lane_kind=TELEGRAM_PRIVATE, clock=clock)
    return reply, surface


def incoming(text: str, **kw: object) -> Incoming:
    return Incoming(key=KEY, user_id="tg:1", user_name="Ann", text=text, **kw)  # type: ignore[arg-type]


async def test_answer_streams_and_stores_both_turns_with_usage(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script(["Hello", " there", "!"])
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("hi"), reply)
    assert result.text == "Hello there!"
    assert surface.final_texts() == ["Hello there!"]
    turns = await store.recent_turns(KEY, limit=10)
    assert [(t.role, t.content) for t in turns] == [
        (Role.USER, "hi"),
        (Role.ASSISTANT, "Hello there!"),
    ]
    assert turns[1].tokens == 3  # the real completion tokens from usage
    assert (await store.usage_today("tg:1"))["completion_tokens"] == 3


async def test_second_message_waits_for_the_first_answer(world: World) -> None:
    chat, model, _store, clock, pacer = world
    model.script(["one "] * 10, delay=0.2)
    model.script(["two"])
    first_reply, _first_surface = reply_for(clock, pacer)
    second_reply, _second_surface = reply_for(clock, pacer)
    first = asyncio.ensure_future(chat.answer(incoming("first"), first_reply))
    await clock.sleep(0.5)
    second = asyncio.ensure_future(chat.answer(incoming("second"), second_reply))
    await asyncio.gather(first, second)
    assert model.max_active == 1  # never interleaved
    # the second request saw the first exchange in its context
    _, messages = model.requests[1]
    assert [m.content for m in messages[1:]] == ["first", "one " * 10, "second"]


async def test_model_error_without_text_shows_the_sentence_only(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script([], fail=ModelAuthError())
    reply, surface = reply_for(clock, pacer)
    result = await chat.answer(incoming("hi"), reply)
    assert isinstance(result.error, ModelAuthError)
    (shown,) = surface.final_texts()
    assert "key was refused" in shown
    turns = await store.recent_turns(KEY, limit=10)
    assert [t.role for t in turns] == [Role.USER]  # the question is kept; no empty answer


async def test_cut_stream_keeps_partial_text_and_adds_a_note(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script(["Part", "ial"], fail=StreamCut())
    reply, surface = reply_for(clock, pacer)
    await chat.answer(incoming("hi"), reply)
    (shown,) = surface.final_texts()
    assert shown.startswith("Partial\n\n⚠️ The answer stopped early")
    turns = await store.recent_turns(KEY, limit=10)
    assert turns[-1].content == "Partial"  # stored verbatim, without the note
    assert model.closed == 1


async def test_bad_input_is_refused_before_anything_happens(world: World) -> None:
    chat, model, store, clock, pacer = world
    for bad in ("", "   ", "x" * 9000):
        reply, _ = reply_for(clock, pacer)
        with pytest.raises(UserFacingError):
            await chat.answer(incoming(bad), reply)
    assert model.requests == []
    assert await store.recent_turns(KEY, limit=10) == []


async def test_image_only_message_is_accepted_and_marked_in_history(world: World) -> None:
    chat, model, store, clock, pacer = world
    reply, _ = reply_for(clock, pacer)
    await chat.answer(incoming("", images=(ImageInput(b"png", "image/png"),)), reply)
    _, messages = model.requests[0]
    assert messages[-1].images == (ImageInput(b"png", "image/png"),)
    turns = await store.recent_turns(KEY, limit=10)
    assert turns[0].content == "[1 image]"


async def test_model_and_persona_per_channel(world: World) -> None:
    chat, model, _store, clock, pacer = world
    assert await chat.current_model(KEY) == "gpt-4o-mini"
    assert await chat.set_model(KEY, " gpt-4o ") == "gpt-4o"
    with pytest.raises(UserFacingError, match="Unknown model 'gpt-5'"):
        await chat.set_model(KEY, "gpt-5")
    await chat.set_persona(KEY, "You are a pirate.")
    reply, _ = reply_for(clock, pacer)
    await chat.answer(incoming("ahoy"), reply)
    used_model, messages = model.requests[0]
    assert used_model == "gpt-4o"
    assert messages[0] == ChatMessage(role=Role.SYSTEM, content="You are a pirate.")
    other = ConversationKey(Platform.TELEGRAM, "43")
    assert await chat.current_model(other) == "gpt-4o-mini"
    assert (await chat.persona(other)) == ("Be brief.", True)
    await chat.set_persona(KEY, None)
    assert (await chat.persona(KEY)) == ("Be brief.", True)


async def test_reset_waits_for_the_answer_in_flight(world: World) -> None:
    chat, model, store, clock, pacer = world
    model.script(["slow "] * 5, delay=0.5)
    reply, _ = reply_for(clock, pacer)
    answering = asyncio.ensure_future(chat.answer(incoming("q"), reply))
    await clock.sleep(0.7)
    await chat.reset(KEY)  # waits until the answer is stored, then resets after it
    await answering
    assert await store.recent_turns(KEY, limit=10) == []  # both turns are before the reset
    assert (await store.usage_today("tg:1"))["chat"] == 1  # the answer was stored


async def test_model_menu_prefers_well_known_models(world: World) -> None:
    chat, *_ = world
    assert await chat.model_menu() == ["gpt-4o-mini", "gpt-4o"]
