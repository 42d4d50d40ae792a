"""The context sent upstream: system prompt + newest turns within a conservative budget."""

from __future__ import annotations

from bot.core.chat.context import IMAGE_TOKENS, build_context, estimate_tokens
from bot.core.models import ImageInput, Role, Turn


def test_estimate_over_counts_english_and_cjk() -> None:
    english = "The quick brown fox jumps over the lazy dog. " * 20  # ~200 real tokens
    assert estimate_tokens(english) >= len(english) // 4
    cjk = "你好世界" * 50
    assert estimate_tokens(cjk) >= len(cjk)  # at least one token per character
    assert estimate_tokens("") > 0  # every message has overhead


def test_estimate_is_monotonic() -> None:
    text = ""
    last = estimate_tokens(text)
    for ch in "hello, world! 👋🏽 ünïcödé" * 3:
        text += ch
        now = estimate_tokens(text)
        assert now >= last
        last = now


def turns(n: int, size: int = 40) -> list[Turn]:
    out = []
    for i in range(n):
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        out.append(Turn(role=role, content=f"{i:04d} " + "x" * size, speaker="Ann"))
    return out


def test_newest_turns_that_fit_are_kept_in_order() -> None:
    history = turns(100)
    budget = 300
    messages = build_context(
        system_prompt="sys",
        history=history,
        question="q?",
        speaker="Bob",
        group=False,
        budget=budget,
    )
    assert messages[0].role is Role.SYSTEM and messages[0].content == "sys"
    assert messages[-1].content == "q?"
    kept = messages[1:-1]
    assert 0 < len(kept) < 100
    # the kept turns are the newest ones, oldest first
    assert [m.content for m in kept] == [t.content for t in history[-len(kept) :]]
    assert sum(estimate_tokens(m.content) for m in messages) <= budget


def test_system_and_question_always_go_even_past_the_budget() -> None:
    messages = build_context(
        system_prompt="s" * 3000,
        history=turns(5),
        question="q",
        speaker=None,
        group=False,
        budget=10,
    )
    assert [m.role for m in messages] == [Role.SYSTEM, Role.USER]


def test_group_turns_carry_the_speaker() -> None:
    history = [
        Turn(role=Role.USER, content="hi", speaker="Ann"),
        Turn(role=Role.ASSISTANT, content="hello"),
    ]
    messages = build_context(
        system_prompt="s",
        history=history,
        question="and me?",
        speaker="Bob",
        group=True,
        budget=10_000,
    )
    assert [m.content for m in messages[1:]] == ["[Ann] hi", "hello", "[Bob] and me?"]
    private = build_context(
        system_prompt="s", history=history, question="x", speaker="Bob", group=False, budget=10_000
    )
    assert private[1].content == "hi"


def test_images_cost_tokens_and_ride_on_the_question() -> None:
    image = ImageInput(b"\x89PNG", "image/png")
    history = turns(10, size=10)
    without = build_context(
        system_prompt="s",
        history=history,
        question="what?",
        speaker=None,
        group=False,
        budget=IMAGE_TOKENS,
    )
    with_image = build_context(
        system_prompt="s",
        history=history,
        question="what?",
        speaker=None,
        images=[image],
        group=False,
        budget=IMAGE_TOKENS,
    )
    assert len(with_image) < len(without)
    assert with_image[-1].images == (image,)


def test_stored_token_count_is_respected_when_higher() -> None:
    history = [Turn(role=Role.ASSISTANT, content="short", tokens=5000)]
    messages = build_context(
        system_prompt="s", history=history, question="q", speaker=None, group=False, budget=1000
    )
    assert len(messages) == 2
