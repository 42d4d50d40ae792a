"""split_markdown / cut_markdown / fences: safe split points, fences closed and reopened."""

from __future__ import annotations

import random

import pytest

from bot.core.chat.markdown import (
    Measure,
    close_open_fence,
    cut_markdown,
    open_fence,
    scan_fences,
    split_markdown,
    utf16_len,
)


def rebuild(text: str, max_len: int, measure: Measure = len) -> tuple[list[str], str]:
    """Split with cut_markdown step by step; return the chunks and the text they rebuild."""
    chunks: list[str] = []
    pieces: list[str] = []
    rest, reopen = text, ""
    while True:
        cut = cut_markdown(rest, max_len, measure)
        if cut is None:
            chunks.append(rest)
            pieces.append(rest[len(reopen) :])
            return chunks, "".join(pieces)
        chunks.append(cut.head)
        pieces.append(cut.head[len(reopen) : len(cut.head) - len(cut.closer)])
        rest, reopen = cut.reopen + rest[cut.consumed :], cut.reopen


def test_fitting_text_is_one_chunk() -> None:
    assert split_markdown("hello", 10) == ["hello"]
    assert cut_markdown("hello", 5) is None
    assert split_markdown("", 10) == []
    assert split_markdown("  \n ", 10) == []


def test_prefers_paragraph_then_line_then_sentence_then_space() -> None:
    para = "aaaa aaaa\n\nbbbb\nbbbb. cccc dddd"
    assert split_markdown(para, 20)[0] == "aaaa aaaa\n\n"
    line = "aaaa aaaa\nbbbb. cccc dddd"
    assert split_markdown(line, 20)[0] == "aaaa aaaa\n"
    sentence = "aaaa bbbb cc. dddd eeee"
    assert split_markdown(sentence, 20)[0] == "aaaa bbbb cc. "
    space = "aaaa bbbb cccc dddd eeee"
    assert split_markdown(space, 20)[0] == "aaaa bbbb cccc dddd "


def test_a_break_too_early_is_not_taken() -> None:
    # The only paragraph break is in the first half of what fits: use a later line break.
    text = "ab\n\n" + "x" * 30 + "\n" + "y" * 30 + "\n" + "z" * 30
    first = split_markdown(text, 80)[0]
    assert first == "ab\n\n" + "x" * 30 + "\n" + "y" * 30 + "\n"


def test_no_safe_point_means_a_hard_cut() -> None:
    text = "x" * 250
    assert split_markdown(text, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_very_long_single_line_with_spaces_splits_at_spaces() -> None:
    words = " ".join(f"w{i:03d}" for i in range(500))
    chunks = split_markdown(words, 100)
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks) == words
    assert all(c.endswith(" ") for c in chunks[:-1])


def test_fence_across_the_boundary_is_closed_and_reopened() -> None:
    code = "\n".join(f"print({i})" for i in range(30))
    text = "Intro text.\n\n```python\n" + code + "\n```\nAfter."
    chunks = split_markdown(text, 80)
    assert len(chunks) > 2
    for chunk in chunks:
        assert len(chunk) <= 80
        assert open_fence(chunk) is None, chunk
    assert chunks[0].startswith("Intro text.\n\n```python\nprint(0)\n")
    assert chunks[0].endswith("\n```")
    assert all(c.startswith("```python\n") and c.endswith("\n```") for c in chunks[1:-1])
    assert chunks[-1].startswith("```python\n")
    assert chunks[-1].endswith("\n```\nAfter.")
    _, rebuilt = rebuild(text, 80)
    assert rebuilt == text


def test_fence_with_tildes_indent_and_long_marker() -> None:
    body = "\n".join(f"  line {i} ````" for i in range(20))
    text = "- item\n  ~~~~ruby extra\n" + body + "\n  ~~~~\ndone"
    chunks = split_markdown(text, 90)
    for chunk in chunks:
        assert len(chunk) <= 90
        assert open_fence(chunk) is None, chunk
    assert chunks[1].startswith("  ~~~~ruby\n")  # reopened with the language only
    assert chunks[0].endswith("\n  ~~~~")
    assert rebuild(text, 90)[1] == text


def test_hard_cut_inside_a_code_line_adds_a_line_break_before_the_closer() -> None:
    text = "```\n" + "y" * 200 + "\n```"
    chunks, rebuilt = rebuild(text, 50)
    assert rebuilt == text
    assert all(len(c) <= 50 for c in chunks)
    assert chunks[0] == "```\n" + "y" * 42 + "\n```"
    assert chunks[1].startswith("```\n")


def test_closing_fence_at_the_boundary_is_not_split_off() -> None:
    # The closing line straddles the limit: never leave an empty reopened block behind.
    text = "```\n" + "a\n" * 20 + "```\nafter"
    for limit in range(30, 50):
        for chunk in split_markdown(text, limit):
            assert chunk.strip() not in ("```\n```", "```")
            assert len(chunk) <= limit


def test_surrogate_pairs_and_crlf_are_never_split() -> None:
    pair = "\ud83d\ude00"  # a surrogate pair as two code points, as surrogatepass leaves it
    text = "a" + pair * 100
    for chunk in split_markdown(text, 11):
        assert not chunk.endswith("\ud83d") and not chunk.startswith("\ude00")
    crlf = "x" + "\r\n" * 40
    for chunk in split_markdown(crlf, 7):
        assert not chunk.endswith("\r")


def test_emoji_measured_in_utf16_units() -> None:
    text = "😀" * 300
    chunks = split_markdown(text, 100, utf16_len)
    assert [utf16_len(c) for c in chunks] == [100] * 6
    assert "".join(chunks) == text


def test_combining_marks_and_zwj_stay_attached() -> None:
    text = "e\u0301" * 60  # e + combining acute
    for chunk in split_markdown(text, 9):
        assert chunk.startswith("e")
    family = "👨\u200d👩\u200d👧" * 10
    for chunk in split_markdown(family, 7):
        assert not chunk.startswith("\u200d") and not chunk.endswith("\u200d")


def test_open_fence_reports_language() -> None:
    fence = open_fence("text\n```python\nprint(1)\n")
    assert fence is not None and fence.language == "python"
    assert open_fence("```js\nx\n```\n") is None
    bare = open_fence("``` \nx")
    assert bare is not None and bare.language == ""
    assert open_fence("inline ```not a fence``` here") is None
    assert open_fence("~~~\n```\n") is not None  # a backtick line does not close tildes
    assert open_fence("````\n```\n") is not None  # a shorter marker does not close
    assert close_open_fence("```py\nx") == "```py\nx\n```"
    assert close_open_fence("done") == "done"


def test_scan_fences_positions() -> None:
    text = "a\n```py\nx\n```\nb"
    [fence] = scan_fences(text)
    assert text[fence.start : fence.body] == "```py\n"
    assert fence.close is not None and fence.end is not None
    assert text[fence.close : fence.end] == "```\n"
    assert fence.info == "py"


ALPHABET = ["a", "b", " ", " ", ".", "\n", "\n\n", "```", "```py\n", "\n```\n", "~~~", "😀", "**"]


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_fit_balance_and_rebuild(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(50, 600)))
    max_len = rng.randint(30, 120)
    chunks, rebuilt = rebuild(text, max_len, utf16_len)
    assert rebuilt == text
    for chunk in chunks:
        assert utf16_len(chunk) <= max_len
    # Every chunk but the last leaves no fence open; the last one may, like the text itself.
    if open_fence(text) is None:
        assert all(open_fence(c) is None for c in chunks)


@pytest.mark.parametrize("seed", range(25))
def test_cut_is_stable_under_appending(seed: int) -> None:
    """A streaming reply seals at the first overflow; the final split must agree."""
    rng = random.Random(1000 + seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(400))
    max_len = rng.randint(30, 90)
    final = cut_markdown(text, max_len, utf16_len)
    assert final is not None
    for end in range(1, len(text)):
        cut = cut_markdown(text[:end], max_len, utf16_len)
        if cut is not None:
            assert cut == final, end
            break
