"""telegram_render: Markdown -> text + entities that Telegram always accepts."""

from __future__ import annotations

import random

import pytest
from telegram import MessageEntity

from bot.core.chat.markdown import split_markdown, utf16_len
from bot.platforms.telegram.render import MAX_ENTITIES, measure, render


def spans(markdown: str) -> list[tuple[str, str]]:
    text, entities = render(markdown)
    return [(e.type, piece(text, e)) for e in entities]


def piece(text: str, entity: MessageEntity) -> str:
    data = text.encode("utf-16-le")
    return data[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def assert_valid(text: str, entities: list[MessageEntity]) -> None:
    """What Telegram checks: bounds in UTF-16 units, no split pairs, nesting, count."""
    size = utf16_len(text)
    assert len(entities) <= MAX_ENTITIES
    bounds = {0}
    pos = 0
    for ch in text:
        pos += 2 if ord(ch) > 0xFFFF else 1
        bounds.add(pos)
    for e in entities:
        assert e.length > 0 and e.offset >= 0 and e.offset + e.length <= size
        assert e.offset in bounds and e.offset + e.length in bounds
        if e.type == "text_link":
            assert e.url and e.url.startswith(("http://", "https://"))
    for i, a in enumerate(entities):
        for b in entities[i + 1 :]:
            a0, a1, b0, b1 = a.offset, a.offset + a.length, b.offset, b.offset + b.length
            if a1 <= b0 or b1 <= a0:
                continue
            a_in_b, b_in_a = b0 <= a0 and a1 <= b1, a0 <= b0 and b1 <= a1
            assert a_in_b or b_in_a, (a, b)
            outer, inner = (b, a) if a_in_b else (a, b)
            assert outer.type not in ("code", "pre"), (outer, inner)
            quotes = {"blockquote", "expandable_blockquote"}
            assert not ({outer.type, inner.type} <= quotes)


def test_bold_italic_code_and_links() -> None:
    assert spans("**bold** and _it_ and `x = 1` and [site](https://example.com/a_(b))") == [
        ("bold", "bold"),
        ("italic", "it"),
        ("code", "x = 1"),
        ("text_link", "site"),
    ]
    _, entities = render("[site](https://example.com/a_(b))")
    assert entities[0].url == "https://example.com/a_(b)"


def test_code_block_keeps_its_language_and_content_verbatim() -> None:
    text, entities = render("Look:\n\n```python\nprint('**not bold**')\n```\n")
    assert text == "Look:\n\nprint('**not bold**')"
    [pre] = entities
    assert pre.type == "pre" and pre.language == "python"
    assert piece(text, pre) == "print('**not bold**')"


def test_headings_and_bullets_are_plain_and_tidy() -> None:
    text, entities = render("# Title\n\n- one\n- two\n")
    assert text == "Title\n\n• one\n• two"
    assert ("bold", "Title") in [(e.type, piece(text, e)) for e in entities]


@pytest.mark.parametrize(
    "cut_off",
    [
        "Some **bold",
        "a `code",
        "```python\nprint(1)\nprint(",
        "[link](https://exa",
        "> quote\n>> in",
    ],
)
def test_cut_off_input_is_still_valid(cut_off: str) -> None:
    text, entities = render(cut_off)
    assert text.strip()
    assert_valid(text, entities)


def test_unclosed_fence_renders_as_pre() -> None:
    text, entities = render("```js\nlet x = 1;")
    assert text == "let x = 1;"
    assert [(e.type, e.language) for e in entities] == [("pre", "js")]


def test_emoji_are_measured_in_utf16_units() -> None:
    text, entities = render("😀 **hi** 👍🏽")
    assert text == "😀 hi 👍🏽"
    assert measure("😀 **hi** 👍🏽") == utf16_len(text) == 10  # 2 + 1 + 2 + 1 + 2 + 2
    assert [(e.type, e.offset, e.length) for e in entities] == [("bold", 3, 2)]


def test_unsafe_links_and_nested_quotes_are_dropped() -> None:
    text, entities = render("[me](tg://user?id=1) [x](javascript:alert(1)) [r](relative)")
    assert text == "me x r"
    assert entities == []
    text, entities = render("> a\n>> b")
    assert [e.type for e in entities] == ["blockquote"]


def test_blank_or_unrenderable_input_falls_back_to_plain_text() -> None:
    assert render("") == ("", [])
    assert render("  \n") == ("", [])
    assert render("<br>") == ("<br>", [])
    assert render("```\n") == ("```", [])


def test_too_many_entities_are_capped() -> None:
    text, entities = render(" ".join(f"**b{i}**" for i in range(150)))
    assert len(entities) == MAX_ENTITIES
    assert_valid(text, entities)


def test_measure_drives_splitting_within_telegram_limits() -> None:
    markdown = "\n\n".join(f"**Point {i}:** some `code` and 😀 text." for i in range(200))
    chunks = split_markdown(markdown, 300, measure)
    assert len(chunks) > 5
    for chunk in chunks:
        text, entities = render(chunk)
        assert 0 < utf16_len(text) <= 300
        assert_valid(text, entities)


ALPHABET = [
    "*", "**", "_", "__", "`", "```", "```py\n", "~~", "||", "[", "]", "(", ")", "](http://x.y/",
    "#", "# ", "> ", ">> ", "- ", "1. ", "|", "---", "\n", "\n\n", " ", "a", "bc", "😀", "👍🏽",
    "\\", "<b>", "</b>", "<br>", "&amp;", "$$", "\\(", "\\)", "é", "\t", "\r\n", "\u200d",
    "![i](http://x/y.png)", "[t](tg://user?id=1)", "- [ ] ", "| a | b |\n|---|---|\n",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_rendering_never_raises_and_is_always_valid(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):
        markdown = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
        text, entities = render(markdown)
        assert_valid(text, entities)
        assert measure(markdown) == utf16_len(text)
        if markdown.strip():
            assert text.strip()
