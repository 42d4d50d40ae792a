"""Markdown -> Telegram plain text + entities, so no model output can break parsing.

Telegram is never sent ``parse_mode``: telegramify-markdown parses the Markdown with a
CommonMark parser (pulldown-cmark) and returns plain text plus ``MessageEntity`` spans in
UTF-16 units. Cut-off input, as streaming produces, stays valid: an unclosed ``**`` or a
backtick stays literal and an unclosed fence renders as a ``pre`` block.

On top of the library this module (a) configures it for chat (headings become bold text
without emoji prefixes, bullets are "•"), (b) drops entities Telegram would refuse or that a
model should not produce (links that are not http(s) — ``tg://user`` links could mention
people —, custom emoji, text mentions, entities nested inside code, nested blockquotes,
partial overlaps, more than 100 entities), (c) trims surrounding whitespace and (d) falls back
to the raw Markdown as plain text if rendering fails or renders to nothing.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import telegramify_markdown
from telegram import MessageEntity
from telegram.constants import MessageLimit

from bot.core.chat.markdown import utf16_len

__all__ = ["measure", "render"]

log = logging.getLogger(__name__)

MAX_ENTITIES = int(MessageLimit.MESSAGE_ENTITIES)
_CODE = frozenset({"code", "pre"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})
_DROPPED_TYPES = frozenset({"custom_emoji", "text_mention", "mention", "date_time"})
_Span = tuple[str, int, int, str | None, str | None]  # type, offset, length, url, language


def _make_config() -> telegramify_markdown.RenderConfig:
    config = telegramify_markdown.RenderConfig.isolated()  # never the shared global one
    symbols = config.markdown_symbol
    for level in range(1, 7):
        setattr(symbols, f"heading_level_{level}", "")
    symbols.unordered_list_item = "•"
    return config


_CONFIG = _make_config()


def render(markdown: str) -> tuple[str, list[MessageEntity]]:
    """Render ``markdown`` to ``(text, entities)`` for ``sendMessage``/``editMessageText``.

    Never raises. The text may be empty only when ``markdown`` is blank.
    """
    text, entities = _render_cached(markdown)
    return text, list(entities)


def measure(markdown: str) -> int:
    """The length Telegram counts for ``markdown`` once rendered: UTF-16 units of the text."""
    return utf16_len(_render_cached(markdown)[0])


@lru_cache(maxsize=256)
def _render_cached(markdown: str) -> tuple[str, tuple[MessageEntity, ...]]:
    # Cached: a streaming reply measures a text and then sends the same text.
    if not markdown.strip():
        return "", ()
    try:
        text, raw = telegramify_markdown.convert(markdown, config=_CONFIG)
        spans = [(e.type, e.offset, e.length, e.url, e.language) for e in raw]
    except Exception:  # the converter is third-party code: never let it break a reply
        log.exception("markdown rendering failed; sending plain text")
        return _plain(markdown)
    text, spans = _trim(text, spans)
    if not text.strip():
        return _plain(markdown)
    return text, tuple(_to_entity(s) for s in _sanitize(spans, utf16_len(text)))


def _plain(markdown: str) -> tuple[str, tuple[MessageEntity, ...]]:
    return markdown.strip(), ()


def _trim(text: str, spans: list[_Span]) -> tuple[str, list[_Span]]:
    """Strip surrounding whitespace (Telegram would) and shift/clip entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, spans
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    out: list[_Span] = []
    for kind, offset, length, url, language in spans:
        start = max(0, offset - shift)
        end = min(size, offset + length - shift)
        if end > start:
            out.append((kind, start, end - start, url, language))
    return stripped, out


def _sanitize(spans: list[_Span], size: int) -> list[_Span]:
    """Keep only entities Telegram accepts: well-formed, properly nested, at most 100."""
    candidates = [s for s in spans if _allowed(s, size)]
    # Outer before inner; on identical spans code/pre first, so it wins over formatting.
    candidates.sort(key=lambda s: (s[1], -s[2], s[0] not in _CODE))
    kept: list[_Span] = []
    stack: list[_Span] = []  # kept entities still open at the current offset
    for span in candidates:
        kind, offset, length = span[0], span[1], span[2]
        end = offset + length
        while stack and stack[-1][1] + stack[-1][2] <= offset:
            stack.pop()
        if any(
            end > o[1] + o[2] or o[0] in _CODE or (kind in _QUOTES and o[0] in _QUOTES)
            for o in stack
        ):
            continue  # partial overlap, inside code, or a nested blockquote
        kept.append(span)
        stack.append(span)
        if len(kept) == MAX_ENTITIES:
            break
    return kept


def _allowed(span: _Span, size: int) -> bool:
    kind, offset, length, url, _ = span
    if length <= 0 or offset < 0 or offset + length > size or kind in _DROPPED_TYPES:
        return False
    if kind == "text_link":
        return url is not None and url.startswith(("http://", "https://")) and " " not in url
    return True


def _to_entity(span: _Span) -> MessageEntity:
    kind, offset, length, url, language = span
    return MessageEntity(
        type=kind,
        offset=offset,
        length=length,
        url=url if kind == "text_link" else None,
        language=language if kind == "pre" and language else None,
    )
