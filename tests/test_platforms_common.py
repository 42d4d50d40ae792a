"""The guard both platforms run their handlers in: errors become one line, work is counted
and tracked, and the drain lets it finish before cutting it short."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.limits import Limits, LimitsConfig
from bot.core.access.policy import AccessPolicy, Requester
from bot.core.errors import UserFacingError
from bot.core.lifecycle import RESTARTING, WorkGate
from bot.core.models import Platform
from bot.core.telemetry import NullTelemetry
from bot.platforms.common import GENERIC_APOLOGY, Guard
from bot.store import Store
from tests.fakes.clock import FakeClock

ALICE = Requester(Platform.TELEGRAM, "42", chat="42", is_private=True)
STRANGER = Requester(Platform.TELEGRAM, "7", chat="7", is_private=True)


@pytest.fixture
async def gatekeeper() -> AsyncIterator[Gatekeeper]:
    clock = FakeClock()
    async with Store.open(":memory:") as store:
        yield Gatekeeper(
            policy=AccessPolicy.build(users=["tg:42"]),
            limits=Limits(LimitsConfig(), store),
            gate=WorkGate(),
            stats=store,
            telemetry=NullTelemetry(),
            clock=clock,
        )


async def run(
    guard: Guard, work: object, who: Requester = ALICE, *, admit: bool = False
) -> list[str]:
    said: list[str] = []

    async def report(text: str) -> None:
        said.append(text)

    async def handler() -> None:
        if isinstance(work, BaseException):
            raise work

    await guard.run(handler, report, what="update 1", who=who, admit=admit)
    return said


async def test_expected_errors_are_said_and_the_rest_get_an_apology(
    gatekeeper: Gatekeeper, caplog: pytest.LogCaptureFixture
) -> None:
    guard = Guard(gatekeeper, Platform.TELEGRAM)
    assert await run(guard, None) == []
    assert await run(guard, UserFacingError("That is too long.")) == ["That is too long."]
    quiet = UserFacingError("again")
    quiet.quiet = True
    assert await run(guard, quiet) == []
    assert await run(guard, RuntimeError("boom")) == [GENERIC_APOLOGY]
    assert "telegram: update 1 failed" in caplog.text


async def test_admission_is_checked_inside_the_guard(gatekeeper: Gatekeeper) -> None:
    guard = Guard(gatekeeper, Platform.TELEGRAM)
    said = await run(guard, None, STRANGER, admit=True)
    assert len(said) == 1 and "tg:7" in said[0]  # the refusal names the id to send
    assert await run(guard, None, STRANGER) == []  # not asked to admit: runs
    gatekeeper.gate.close()
    assert await run(guard, None) == [RESTARTING]


async def test_a_report_that_fails_is_logged_not_raised(
    gatekeeper: Gatekeeper, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(text: str) -> None:
        raise OSError("connection reset")

    async def fail() -> None:
        raise UserFacingError("nope")

    await Guard(gatekeeper, Platform.DISCORD).run(fail, broken, what="/model in 5", who=ALICE)
    assert "discord: could not answer /model in 5: connection reset" in caplog.text


async def test_drain_waits_then_cuts_the_rest_short(gatekeeper: Gatekeeper) -> None:
    guard = Guard(gatekeeper, Platform.TELEGRAM)
    quick_done = asyncio.Event()
    cancelled = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        quick_done.set()

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    tasks = [
        asyncio.create_task(guard.run(work, _ignore, what="w", who=ALICE))
        for work in (quick, stuck)
    ]
    await asyncio.sleep(0)
    assert gatekeeper.gate.active == 2
    await guard.drain(0.1)
    assert quick_done.is_set() and cancelled.is_set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert gatekeeper.gate.active == 0
    await guard.drain(0.1)  # nothing in flight: at once


async def _ignore(text: str) -> None:
    return None
