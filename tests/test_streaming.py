"""StreamingReply against a recording FakeSurface and a shared Pacer, all on virtual time."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Sequence

import pytest

from bot.core.chat.markdown import cut_markdown, open_fence, split_markdown
from bot.core.chat.streaming import CANCEL_NOTE, EMPTY_TEXT, FAIL_NOTE, ReplyResult, StreamingReply
from bot.core.errors import RetryLater, UserFacingError
from bot.core.pacing import (
    TELEGRAM_GROUP,
    TELEGRAM_PRIVATE,
    Pacer,
    PacerRules,
    Window,
    telegram_rules,
)
from tests.fakes.clock import FakeClock
from tests.fakes.surface import Call, FakeSurface

EPS = 1e-6
FAST = PacerRules(lanes={"fast": (Window(100, 1.0),)})


def make(
    clock: FakeClock,
    *,
    rules: PacerRules | None = None,
    pacer: Pacer | None = None,
    lane: str = "chat",
    kind: str = TELEGRAM_PRIVATE,
    max_len: int = 4096,
    log: list[Call] | None = None,
    name: str = "",
) -> tuple[StreamingReply, FakeSurface, Pacer]:
    pacer = pacer or Pacer(rules or telegram_rules(), clock=clock)
    surface = FakeSurface(clock, max_len=max_len, log=log, name=name)
    reply = StreamingReply(surface, pacer=pacer, lane=lane, lane_kind=kind, clock=clock)
    return reply, surface, pacer


async def stream(
    reply: StreamingReply, clock: FakeClock, tokens: Sequence[str], gap: float | Sequence[float]
) -> ReplyResult:
    async with reply:
        for i, token in enumerate(tokens):
            reply.feed(token)
            await clock.sleep(gap if isinstance(gap, float) else gap[i])
        return await reply.finish()


def assert_final(surface: FakeSurface, result: ReplyResult, final: str) -> None:
    """Every message ends showing exactly its chunk of the final text."""
    chunks = split_markdown(final, surface.max_len, surface.measure)
    assert list(result.chunks) == chunks
    assert surface.final_texts() == chunks
    assert list(result) == surface.order
    assert result.complete
    assert not surface.violations
    assert surface.redundant_edits == 0
    for chunk in chunks:
        assert open_fence(chunk) is None or open_fence(final) is not None


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def max_in_window(times: Sequence[float], per: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - per + EPS:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_typing_until_first_text_then_text_at_once() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto(), reply:
        await clock.sleep(9.0)
        reply.feed("Hello")
        await clock.sleep(10.0)
        result = await reply.finish()
    assert surface.typing_at == [0.0, 4.0, 8.0]
    assert surface.calls == [Call(9.0, "send", None, "Hello")]
    assert result == ReplyResult(("m1",), ("Hello",), True)


async def test_tokens_are_coalesced_into_the_newest_text() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    tokens = [f"t{i} " for i in range(100)]
    async with clock.auto():
        result = await stream(reply, clock, tokens, 0.01)
    full = "".join(tokens)
    assert [(c.t, c.op, c.text) for c in surface.calls] == [
        (0.0, "send", "t0 "),
        (pytest.approx(1.1), "edit", full),
    ]
    assert_final(surface, result, full)


async def test_identical_payload_is_not_sent_and_costs_no_slot() -> None:
    clock = FakeClock()
    reply, surface, pacer = make(clock)
    async with clock.auto(), reply:
        reply.feed("Hello")
        await clock.sleep(5.0)
        result = await reply.finish()
    assert len(surface.calls) == 1
    assert pacer.granted == 1
    assert result.chunks == ("Hello",)


async def test_blank_tokens_send_nothing_until_text_appears() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto():
        result = await stream(reply, clock, ["\n", "  ", "\n", "Hi"], 1.0)
    assert [(c.t, c.op) for c in surface.calls] == [(3.0, "send")]
    assert result.chunks == ("\n  \nHi",)


async def test_edits_in_a_private_chat_keep_their_pace() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    tokens = [f"w{i} " for i in range(300)]
    async with clock.auto():
        result = await stream(reply, clock, tokens, 0.1)
    times = [c.t for c in surface.calls]
    assert min(gaps(times)) >= 1.1 - EPS
    assert len(times) <= 30 / 1.1 + 2
    assert_final(surface, result, "".join(tokens))


async def test_three_replies_share_a_group_budget_for_twenty_minutes() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    log: list[Call] = []
    replies = [
        make(clock, pacer=pacer, lane="group", kind=TELEGRAM_GROUP, log=log, name=f"r{i}")
        for i in range(3)
    ]
    tokens = [f"word{i} " for i in range(2400)]  # one every 0.5 s for 20 minutes
    async with clock.auto():
        results = await asyncio.gather(*(stream(r, clock, tokens, 0.5) for r, _, _ in replies))
    times = [c.t for c in log]
    assert max_in_window(times, 60.0) <= 18
    assert min(gaps(times)) >= 1.1 - EPS
    for (_, surface, _), result in zip(replies, results, strict=True):
        assert len(result) > 1  # long enough to continue in further messages
        assert_final(surface, result, "".join(tokens))


async def test_retry_after_stops_everything_then_resumes_with_the_newest_text() -> None:
    clock = FakeClock()
    reply, surface, pacer = make(clock)
    surface.failures = {2: RetryLater(30)}
    tokens = [f"t{i} " for i in range(120)]
    async with clock.auto():
        result = await stream(reply, clock, tokens, 0.5)
    limited = surface.calls[1]
    assert not limited.ok and limited.t == pytest.approx(1.1)
    after = surface.calls[2]
    assert after.t == pytest.approx(31.1)
    assert after.text == "".join(tokens[:63])  # the newest text at t=31.1
    assert all(not limited.t < c.t < 31.1 - EPS for c in surface.calls)
    assert_final(surface, result, "".join(tokens))
    assert not pacer.is_blocked("chat")


async def test_no_typing_during_a_penalty() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    surface.failures = {1: RetryLater(10)}
    async with clock.auto(), reply:
        await clock.sleep(0.5)
        reply.feed("Hi")
        await clock.sleep(20.0)
        result = await reply.finish()
    assert surface.typing_at[0] == 0.0
    assert all(not 0.5 <= t < 10.5 - EPS for t in surface.typing_at)
    assert [(c.t, c.op, c.ok) for c in surface.calls] == [
        (0.5, "send", False),
        (pytest.approx(10.5), "send", True),
    ]
    assert result.chunks == ("Hi",)


async def test_typing_429_penalizes_the_lane() -> None:
    clock = FakeClock()
    reply, surface, pacer = make(clock)
    surface.typing_failures = {1: RetryLater(6)}
    async with clock.auto(), reply:
        await clock.sleep(1.0)
        assert pacer.is_blocked("chat")
        reply.feed("Hi")
        await clock.sleep(10.0)
    assert surface.typing_at == [0.0]
    assert surface.calls[0].t == pytest.approx(6.0)


def long_answer() -> str:
    rng = random.Random(7)
    parts: list[str] = []
    while sum(map(len, parts)) < 10_000:
        if rng.random() < 0.2:
            lines = "\n".join(f"    value_{i} = compute({i}, {i * 7})" for i in range(40))
            parts.append(f"```python\ndef f():\n{lines}\n```\n\n")
        else:
            words = " ".join(rng.choice(["alpha", "beta", "gamma.", "delta,"]) for _ in range(60))
            parts.append(words + ("\n\n" if rng.random() < 0.5 else "\n"))
    return "".join(parts)


def tokenize(text: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 25)
        out.append(text[i : i + n])
        i += n
    return out


async def test_a_long_answer_is_split_with_fences_closed_and_reopened() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock, rules=FAST, kind="fast", max_len=500)
    text = long_answer()
    assert len(text) >= 10_000
    async with clock.auto():
        result = await stream(reply, clock, tokenize(text, 1), 0.02)
    assert len(result) >= 20
    assert_final(surface, result, text)
    for chunk in result.chunks:
        assert len(chunk) <= 500
        assert open_fence(chunk) is None  # balanced in every message
    assert any(c.startswith("```python\n") for c in result.chunks)  # reopened at least once
    # Joining the chunks without the added fence lines gives the text back.
    pieces, rest, reopen = [], text, ""
    for chunk in result.chunks:
        cut = cut_markdown(rest, 500)
        if cut is None:
            pieces.append(chunk[len(reopen) :])
            break
        assert chunk == cut.head
        pieces.append(chunk[len(reopen) : len(chunk) - len(cut.closer)])
        rest, reopen = cut.reopen + rest[cut.consumed :], cut.reopen
    assert "".join(pieces) == text
    # Sealed messages never change again once their successor exists.
    sends = [c for c in surface.calls if c.op == "send"]
    for k, mid in enumerate(surface.order[:-1]):
        next_send = sends[k + 1].t
        assert not [c for c in surface.calls if c.mid == mid and c.t > next_send]


@pytest.mark.parametrize("seed", range(8))
async def test_chunks_do_not_depend_on_timing(seed: int) -> None:
    clock = FakeClock()
    rng = random.Random(seed)
    reply, surface, _ = make(clock, rules=telegram_rules(), max_len=rng.randint(80, 300))
    text = long_answer()[: rng.randint(500, 3000)]
    tokens = tokenize(text, seed)
    delays = [rng.choice([0.0001, 0.05, 0.3, 2.0]) for _ in tokens]
    async with clock.auto():
        result = await stream(reply, clock, tokens, delays)
    assert_final(surface, result, text)


async def test_overflow_during_a_penalty_is_delivered_in_order() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock, max_len=100)
    surface.failures = {2: RetryLater(20)}
    text = "".join(f"Sentence number {i}. " for i in range(60))
    async with clock.auto():
        result = await stream(reply, clock, tokenize(text, 3), 0.05)
    assert_final(surface, result, text)
    assert all(c.t >= 21.1 - EPS for c in surface.calls[2:])


async def test_final_text_is_exact_after_many_failed_edits() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock, max_len=200)
    surface.failures = {k: ConnectionError("network down") for k in range(2, 12)}
    tokens = [f"piece{i} " for i in range(200)]
    async with clock.auto():
        result = await stream(reply, clock, tokens, 0.1)
    assert sum(not c.ok for c in surface.calls) == 10
    assert_final(surface, result, "".join(tokens))


async def test_final_delivery_is_retried_with_backoff_then_given_up() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    surface.failures = {k: OSError("down") for k in range(2, 100)}
    async with clock.auto(), reply:
        reply.feed("Hello")
        await clock.sleep(0.5)
        reply.feed(" world")
        result = await reply.finish()
    final_attempts = [c for c in surface.calls if c.op == "edit"]
    assert len(final_attempts) == 5
    times = [c.t for c in final_attempts]
    assert gaps(times) == pytest.approx([1.1, 1.1, 2.0, 4.0])  # backoff or pace, whichever is later
    assert not result.complete
    assert result.chunks == ("Hello",)


async def test_message_gone_continues_in_a_new_message() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto(), reply:
        reply.feed("Hello")
        await clock.sleep(0.5)
        surface.vanish("m1")
        reply.feed(" world")
        result = await reply.finish()
    assert [(c.op, c.mid, c.text) for c in surface.calls] == [
        ("send", None, "Hello"),
        ("edit", "m1", "Hello world"),
        ("send", None, "Hello world"),
    ]
    assert result == ReplyResult(("m2",), ("Hello world",), True)


async def test_failure_note_closes_an_open_fence() -> None:
    clock = FakeClock()
    reply, _surface, _ = make(clock)
    note = "⚠️ The answer stopped early: upstream error"
    async with clock.auto(), reply:
        reply.feed("Partial answer\n```python\nx = 1")
        await clock.sleep(2.0)
        result = await reply.finish(note)
    assert result.chunks == (f"Partial answer\n```python\nx = 1\n```\n\n{note}",)


@pytest.mark.parametrize(
    ("note", "shown"), [(None, EMPTY_TEXT), ("⚠️ The model is busy.", "⚠️ The model is busy.")]
)
async def test_no_text_at_all(note: str | None, shown: str) -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto(), reply:
        await clock.sleep(1.0)
        result = await reply.finish(note)
    assert result.chunks == (shown,)
    assert [c.op for c in surface.calls] == ["send"]


async def test_an_exception_in_the_block_finishes_with_a_note() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto():
        with pytest.raises(ValueError, match="bug"):
            async with reply:
                reply.feed("Some text")
                await clock.sleep(1.0)
                raise ValueError("bug")
    assert surface.final_texts() == [f"Some text\n\n{FAIL_NOTE}"]

    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto():
        with pytest.raises(UserFacingError):
            async with reply:
                raise UserFacingError("Quota exhausted.")
    assert surface.final_texts() == ["⚠️ Quota exhausted."]


async def test_leaving_the_block_finishes_implicitly() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)
    async with clock.auto(), reply:
        reply.feed("a")
        await clock.sleep(0.1)
        reply.feed("b")
    assert surface.final_texts() == ["ab"]


async def test_cancellation_flushes_the_text_so_far() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock)

    async def handler() -> None:
        async with reply:
            reply.feed("Some text")
            await clock.sleep(1000)

    async with clock.auto():
        task = asyncio.ensure_future(handler())
        await clock.sleep(2.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert surface.final_texts() == [f"Some text\n\n{CANCEL_NOTE}"]
    assert surface.calls[-1].t == 2.0


async def test_cancellation_flush_is_bounded() -> None:
    clock = FakeClock()
    reply, surface, pacer = make(clock)

    async def handler() -> None:
        async with reply:
            reply.feed("Some text")
            await clock.sleep(1000)

    async with clock.auto():
        task = asyncio.ensure_future(handler())
        await clock.sleep(2.0)
        pacer.penalize("chat", 300)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert clock.now() == pytest.approx(7.0)  # the 5 s shutdown grace, not 300 s
    assert surface.final_texts() == ["Some text"]
    assert len(surface.calls) == 1


async def test_first_messages_go_before_any_intermediate_edit() -> None:
    clock = FakeClock()
    rules = PacerRules(lanes={"lane": (Window(1, 0.5),)}, global_windows=(Window(5, 1.0),))
    pacer = Pacer(rules, clock=clock)
    log: list[Call] = []
    replies = [
        make(clock, pacer=pacer, lane=f"c{i}", kind="lane", log=log, name=f"c{i}")
        for i in range(30)
    ]
    tokens = [f"t{i} " for i in range(100)]
    async with clock.auto():
        results = await asyncio.gather(*(stream(r, clock, tokens, 0.1) for r, _, _ in replies))
    ops = [c.op for c in log]
    assert ops[:30] == ["send"] * 30
    assert "send" not in ops[30:]
    assert max_in_window([c.t for c in log], 1.0) <= 5
    for (_, surface, _), result in zip(replies, results, strict=True):
        assert_final(surface, result, "".join(tokens))


async def test_feed_is_cheap_no_measuring_per_token() -> None:
    clock = FakeClock()
    reply, surface, _ = make(clock, max_len=1000)
    async with clock.auto(), reply:
        for i in range(20_000):
            reply.feed(f"{i} ")
            if i % 2000 == 0:
                await clock.sleep(1.0)
        result = await reply.finish()
    assert surface.measured < 3_000  # per flush and per cut, never per token
    assert_final(surface, result, "".join(f"{i} " for i in range(20_000)))


async def test_paced_typing_takes_a_background_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(telegram_rules(), clock=clock)
    surface = FakeSurface(clock)
    reply = StreamingReply(
        surface, pacer=pacer, lane="chat", lane_kind=TELEGRAM_PRIVATE, clock=clock,
        typing_paced=True,
    )  # fmt: skip
    async with clock.auto(), reply:
        await clock.sleep(0.5)
        reply.feed("Hi")
        await clock.sleep(5.0)
    assert surface.typing_at == [0.0]
    assert surface.calls[0].t == pytest.approx(1.1)  # after the typing call's slot
    assert pacer.granted == 2


async def test_typing_waits_for_slow_first_words_only() -> None:
    clock = FakeClock()
    async with clock.auto():
        pacer = Pacer(telegram_rules(), clock=clock)
        fast_surface = FakeSurface(clock)
        fast = StreamingReply(
            fast_surface,
            pacer=pacer,
            lane="a",
            lane_kind=TELEGRAM_PRIVATE,
            clock=clock,
            typing_after=1.0,
        )
        async with fast:
            await clock.sleep(0.3)
            fast.feed("quick")
            await fast.finish()
        slow_surface = FakeSurface(clock)
        slow = StreamingReply(
            slow_surface,
            pacer=pacer,
            lane="b",
            lane_kind=TELEGRAM_PRIVATE,
            clock=clock,
            typing_after=1.0,
        )
        start = clock.now()
        async with slow:
            await clock.sleep(6.0)
            slow.feed("finally")
            await slow.finish()
    assert fast_surface.typing_at == []
    assert [t - start for t in slow_surface.typing_at] == pytest.approx([1.0, 5.0])
