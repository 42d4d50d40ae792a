"""Graceful shutdown: the gate refuses new work, and draining lets replies in flight finish."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.core.chat.service import ChatConfig, ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.clock import SystemClock
from bot.core.errors import UserFacingError
from bot.core.lifecycle import SHUTDOWN, ShutdownBudget, ShuttingDown, WorkGate
from bot.core.models import ReplyControls
from bot.core.pacing import Pacer, PacerRules
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.fakes.surface import FakeSurface
from tests.test_chat_service import KEY, ScriptedModel, incoming


async def test_gate_counts_work_and_refuses_after_close() -> None:
    gate = WorkGate()
    with gate.work():
        assert gate.active == 1
    assert gate.active == 0
    gate.close()
    with pytest.raises(ShuttingDown) as info, gate.work():
        pass
    assert isinstance(info.value, UserFacingError)
    assert info.value.message == "The bot is restarting; please try again in a minute."


def test_the_shutdown_budget_keeps_the_readmes_promise() -> None:
    # Replies in flight finish for up to 3 s, then are cut short; the platforms are done
    # well inside Docker's 10 s stop timeout.
    assert SHUTDOWN.finish == 3.0
    assert SHUTDOWN.finish + SHUTDOWN.handlers + SHUTDOWN.flush_wait < 10.0
    assert ShutdownBudget(flush=2.0).flush_wait == 3.0  # derived, not a copy


async def test_drain_gives_up_after_the_grace_period() -> None:
    clock = FakeClock()
    gate = WorkGate()
    release = asyncio.Event()

    async def stuck() -> None:
        with gate.work():
            await release.wait()

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    drain = asyncio.create_task(gate.drain(5.0, clock))
    await clock.advance(4.9)
    assert not drain.done()
    await clock.advance(0.2)
    assert await drain is False
    assert gate.closed
    release.set()
    await task
    assert await gate.drain(5.0, clock) is True  # nothing in flight: at once


class _WatchedSurface(FakeSurface):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_send = asyncio.Event()

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        message_id = await super().send(text, controls=controls)
        self.first_send.set()
        return message_id


async def test_sigterm_lets_the_reply_in_flight_finish_and_refuses_new_ones() -> None:
    # Real (short) time: the store works on its own thread, which virtual time cannot wait for.
    clock = SystemClock()
    model = ScriptedModel(clock)  # type: ignore[arg-type]
    pacer = Pacer(PacerRules(lanes={"test": ()}), clock=clock)
    gate = WorkGate()
    model.script(["one ", "two ", "three"], delay=0.05)
    async with Store.open(":memory:") as store:
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="Be brief.")
        chat = ChatService(model=model, store=store, config=config)
        surface = _WatchedSurface(clock)  # type: ignore[arg-type]
        reply = StreamingReply(surface, pacer=pacer, lane="1", lane_kind="test", clock=clock)

        async def handle(text: str) -> None:
            with gate.work():
                await chat.answer(incoming(text), reply)

        in_flight = asyncio.create_task(handle("count to three"))
        await surface.first_send.wait()  # the first token is out
        # SIGTERM: close the gate, then wait for the work in flight.
        drained = asyncio.create_task(gate.drain(SHUTDOWN.finish, clock))
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await handle("another question")
        assert await drained is True
        assert in_flight.done()
        await in_flight
        assert surface.final_texts() == ["one two three"]  # the final text was flushed
        assert len(model.requests) == 1
        assert len(await store.recent_turns(KEY, limit=10)) == 2
