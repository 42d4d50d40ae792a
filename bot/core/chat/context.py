"""Which stored turns go upstream with a question: the system prompt plus the newest
turns that fit the model's token budget.

No tokenizer is used (tiktoken downloads its vocabulary at run time). Instead
:func:`estimate_tokens` over-counts on purpose: one token per three UTF-8 bytes
plus a per-message overhead. English averages about four characters per token,
so the estimate runs ~30 % high there; CJK text is three bytes per character,
so every character counts as at least one token, which is what the common BPE
vocabularies give for most of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.models import ChatMessage, ImageInput, Role, Turn

MESSAGE_OVERHEAD_TOKENS = 4
# OpenAI bills a high-detail image at up to ~1,100 tokens; budget for the worst case.
IMAGE_TOKENS = 1100
# How many stored turns to read before trimming to the budget; bounds the query.
MAX_TURNS_LOADED = 200


def estimate_tokens(text: str) -> int:
    """A conservative (high) estimate of the tokens ``text`` costs as one message."""
    return (len(text.encode("utf-8")) + 2) // 3 + MESSAGE_OVERHEAD_TOKENS


def turn_text(turn: Turn, *, group: bool) -> str:
    """The content a stored turn contributes; group speakers are named so the
    model can tell people apart."""
    if group and turn.role is Role.USER and turn.speaker:
        return f"[{turn.speaker}] {turn.content}"
    return turn.content


def build_context(
    *,
    system_prompt: str,
    history: Sequence[Turn],
    question: str,
    speaker: str | None,
    images: Sequence[ImageInput] = (),
    group: bool,
    budget: int,
) -> list[ChatMessage]:
    """System prompt + as many of the newest ``history`` turns as fit + the question.

    ``history`` is oldest first. The system prompt and the question always go,
    even when they alone exceed the budget (the caller limits question length).
    """
    question_turn = Turn(role=Role.USER, content=question, speaker=speaker)
    question_text = turn_text(question_turn, group=group)
    used = estimate_tokens(system_prompt) + estimate_tokens(question_text)
    used += IMAGE_TOKENS * len(images)
    kept: list[ChatMessage] = []
    for turn in reversed(history):
        text = turn_text(turn, group=group)
        cost = max(turn.tokens, estimate_tokens(text))
        if used + cost > budget:
            break
        used += cost
        kept.append(ChatMessage(role=turn.role, content=text))
    kept.reverse()
    return [
        ChatMessage(role=Role.SYSTEM, content=system_prompt),
        *kept,
        ChatMessage(role=Role.USER, content=question_text, images=tuple(images)),
    ]
