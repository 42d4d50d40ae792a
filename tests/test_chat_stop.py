"""Stopping an answer (the ⏹ button and /stop) in the core, on virtual time: a scripted
model, a real in-memory store, a recording surface."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.limits import Limits, LimitsConfig
from bot.core.access.policy import AccessPolicy, Requester
from bot.core.chat.commands import ChatCommands, Dialect, Picker
from bot.core.chat.service import ChatConfig, ChatResult, ChatService
from bot.core.chat.stops import ENDED, NOT_YOURS, NOTHING_TO_STOP, STOPPED, STOPPED_NOTE
from bot.core.chat.streaming import StreamingReply
from bot.core.lifecycle import WorkGate
from bot.core.models import ChatDelta, ChatMessage, Platform, ReplyControls, Role
from bot.core.pacing import TELEGRAM_GROUP, Pacer, telegram_rules
from bot.core.telemetry import NullTelemetry
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.surface import FakeSurface
from tests.test_chat_service import KEY, ScriptedModel, incoming

ASKER = Requester(Platform.TELEGRAM, "1", chat="42")  # incoming() asks as tg:1
STRANGER = Requester(Platform.TELEGRAM, "2", chat="42")
ADMIN = Requester(Platform.TELEGRAM, "9", chat="42")
TOKENS = [f"w{i} " for i in range(20)]  # 20 words, 0.5 s apart: 10 s of answer


@dataclass
class Rig:
    chat: ChatService
    model: SignallingModel
    store: Store
    clock: FakeClock
    pacer: Pacer
    commands: ChatCommands

    def reply(self) -> tuple[StreamingReply, FakeSurface]:
        surface = FakeSurface(self.clock)
        reply = StreamingReply(
            surface, pacer=self.pacer, lane="42", lane_kind=TELEGRAM_GROUP, clock=self.clock
        )
        return reply, surface

    async def ask(self, text: str = "tell me") -> tuple[asyncio.Task[ChatResult], FakeSurface]:
        """Start answering ``text``; returns as the model starts streaming (the store works
        on a thread of its own, which virtual time does not wait for)."""
        reply, surface = self.reply()
        self.model.started.clear()
        task = asyncio.ensure_future(self.chat.answer(incoming(text), reply))
        await self.model.started.wait()
        return task, surface


class SignallingModel(ScriptedModel):
    """A ScriptedModel that says when a stream starts."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.started = asyncio.Event()

    async def stream(
        self, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncGenerator[ChatDelta, None]:
        self.started.set()
        async with contextlib.aclosing(super().stream(model, messages)) as inner:
            async for delta in inner:
                yield delta


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    model = SignallingModel(clock)
    async with Store.open(":memory:") as store, clock.auto():
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="Be brief.")
        chat = ChatService(model=model, store=store, config=config)
        gatekeeper = Gatekeeper(
            policy=AccessPolicy.build(admins=["tg:9"]),
            limits=Limits(LimitsConfig(), store),
            gate=WorkGate(),
            stats=store,
            telemetry=NullTelemetry(),
            clock=clock,
        )
        commands = ChatCommands(chat, gatekeeper, Dialect("x", Picker.BUTTONS))
        yield Rig(chat, model, store, clock, Pacer(telegram_rules(), clock=clock), commands)


def button_on(surface: FakeSurface) -> ReplyControls:
    """The controls the reply's payloads carried first."""
    shown = [c.controls for c in surface.calls if c.controls is not None]
    assert shown, "no payload carried the button"
    return shown[0]


async def test_a_stop_mid_stream_keeps_the_text_adds_the_note_stores_it_and_closes_upstream(
    rig: Rig,
) -> None:
    rig.model.script(TOKENS, delay=0.5)
    answer, surface = await rig.ask()
    await rig.clock.sleep(5.2)  # ten words are in, and the group's first edit has been made
    assert rig.model.active == 1
    stopped_at = rig.clock.now()
    assert rig.commands.stop(ASKER, KEY).text == STOPPED
    result = await answer
    # the upstream stream was closed at once, long before its last word
    assert rig.model.active == 0 and rig.model.closed == 1
    assert rig.clock.now() - stopped_at < 5.0
    assert result.text == "".join(TOKENS[:10])
    (shown,) = surface.final_texts()
    assert shown == result.text + "\n\n" + STOPPED_NOTE
    # the button rode on the streaming edits (not the first send: a short answer never needs
    # it, and taking it away again would cost an edit) and left with the final payload
    assert surface.calls[0].controls is None and surface.calls[1].controls is not None
    assert surface.controls == {"m1": None}
    assert surface.calls[-1].text == shown
    turns = await rig.store.recent_turns(KEY, limit=10)
    assert [(t.role, t.content) for t in turns] == [
        (Role.USER, "tell me"),
        (Role.ASSISTANT, result.text),  # the text so far, without the note
    ]
    # the conversation is free: the next message is answered
    rig.model.script(["next"], delay=0.1)
    nxt, nxt_surface = await rig.ask("again")
    await asyncio.wait_for(nxt, 60)
    assert nxt_surface.final_texts() == ["next"]
    assert rig.chat.running.running(KEY) is None


async def test_the_button_names_its_answer_and_someone_else_cannot_stop_it(rig: Rig) -> None:
    rig.model.script(TOKENS[:12], delay=0.5)
    answer, surface = await rig.ask()
    await rig.clock.sleep(5.2)  # past the first edit (a group's: 4 s on), which brings the button
    controls = button_on(surface)
    assert 0 < len("stop:" + controls.stop) <= 64
    assert rig.commands.stop(STRANGER, KEY, controls.stop).text == NOT_YOURS
    assert rig.commands.stop(STRANGER, KEY).text == NOT_YOURS
    assert rig.commands.stop(ASKER, KEY, "not-this-one").text == ENDED  # an old button
    result = await answer
    assert result.text == "".join(TOKENS[:12])  # it ran to its end
    assert surface.final_texts() == [result.text]
    assert surface.controls == {"m1": None}
    # the same button after the end
    assert rig.commands.stop(ASKER, KEY, controls.stop).text == ENDED


async def test_an_admin_may_stop_anyones_answer_by_its_button(rig: Rig) -> None:
    rig.model.script(TOKENS, delay=0.5)
    answer, surface = await rig.ask()
    await rig.clock.sleep(5.2)
    controls = button_on(surface)
    result_of_stop = rig.commands.stop(ADMIN, KEY, controls.stop)
    assert result_of_stop.stopped and result_of_stop.text == STOPPED
    result = await answer
    assert surface.final_texts() == [result.text + "\n\n" + STOPPED_NOTE]


async def test_stop_with_nothing_running_answers_one_line(rig: Rig) -> None:
    result = rig.commands.stop(ASKER, KEY)
    assert not result.stopped and result.text == NOTHING_TO_STOP
    assert "\n" not in result.text


async def test_a_stop_before_the_first_words_shows_the_note_alone_and_stores_no_answer(
    rig: Rig,
) -> None:
    rig.model.script(["late"], delay=20.0)
    answer, surface = await rig.ask()
    await rig.clock.sleep(1.0)
    assert rig.commands.stop(ASKER, KEY).stopped
    result = await answer
    assert result.text == ""
    assert surface.final_texts() == [STOPPED_NOTE]
    turns = await rig.store.recent_turns(KEY, limit=10)
    assert [t.role for t in turns] == [Role.USER]


async def test_a_shutdown_during_a_stop_still_cancels_the_handler(rig: Rig) -> None:
    rig.model.script(TOKENS, delay=0.5)
    answer, _surface = await rig.ask()
    await rig.clock.sleep(1.2)
    assert rig.commands.stop(ASKER, KEY).stopped
    answer.cancel()  # SIGTERM's drain cancels the same task at the same moment
    with pytest.raises(asyncio.CancelledError):
        await answer
    assert rig.model.active == 0


async def test_only_the_growing_message_carries_the_button_and_each_one_loses_it(
    rig: Rig,
) -> None:
    rig.model.script(["abcdefgh "] * 40, delay=0.3)
    surface = FakeSurface(rig.clock, max_len=60)
    reply = StreamingReply(
        surface, pacer=rig.pacer, lane="42", lane_kind=TELEGRAM_GROUP, clock=rig.clock
    )
    await rig.chat.answer(incoming("long"), reply)
    assert len(surface.order) >= 4  # continued in further messages
    assert any(c.controls is not None for c in surface.calls)
    assert all(v is None for v in surface.controls.values())  # none kept its button
    sends = [i for i, c in enumerate(surface.calls) if c.op == "send"]
    for k, mid in enumerate(surface.order[:-1]):  # once the next message is out, no button
        after = surface.calls[sends[k + 1] :]
        assert all(c.controls is None for c in after if c.mid == mid)
    assert surface.redundant_edits == 0


def test_help_mentions_stop(rig: Rig) -> None:
    assert "/stop" in rig.commands.help().text
