"""Markdown helpers shared by every platform: fences, safe split points, lengths.

Pure functions, no I/O. The central one is :func:`cut_markdown`: given a text that is too long
for one message, it picks where the first message ends, preferring (within the last half of
what fits) a paragraph break, then a line break, then a line break inside a code fence (closing
the fence at the end of the message and reopening it, with the same info string, at the start
of the next), then a sentence end, then a space, and only then a hard cut, which never falls
inside a UTF-16 surrogate pair, a ``"\\r\\n"`` or before a combining mark.

The cut is *stable*: for measures that grow with the text (``len``, :func:`utf16_len`) it
depends only on the text up to the first character that no longer fits. A streaming reply can
therefore seal a message as soon as it overflows and end up with exactly the chunks that
:func:`split_markdown` gives for the final text.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "Cut",
    "Fence",
    "Measure",
    "close_open_fence",
    "cut_markdown",
    "open_fence",
    "scan_fences",
    "split_markdown",
    "utf16_len",
]

Measure = Callable[[str], int]

# Lenient on indentation on purpose: models indent fences inside list items.
_FENCE_RE = re.compile(r"^([ \t]*)(`{3,}|~{3,})([^\n]*)", re.MULTILINE)
_SENTENCE_END = frozenset(".!?…")
_CJK_SENTENCE_END = frozenset("。！？")
_MAX_REOPEN_INFO = 20
_TRIES_PER_TIER = 8


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts message length in."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block found in a text (indices are into that text)."""

    start: int
    """Where the opening line starts."""
    body: int
    """Just after the opening line (after its newline)."""
    close: int | None
    """Where the closing line starts; ``None`` while the fence is still open."""
    end: int | None
    """Just after the closing line; ``None`` while the fence is still open."""
    indent: str
    marker: str
    """The fence characters, e.g. ``"```"`` or ``"~~~~"``."""
    info: str
    """The info string after the opening marker, e.g. ``"python"``."""

    @property
    def language(self) -> str:
        """The first word of the info string (``""`` when there is none)."""
        return self.info.split(maxsplit=1)[0] if self.info.strip() else ""

    @property
    def closer(self) -> str:
        """A line that closes this fence."""
        return self.indent + self.marker

    @property
    def reopener(self) -> str:
        """The opening line to repeat in the next message (no newline): the language only,
        so a long info string cannot eat the next message's room."""
        return self.indent + self.marker + self.language[:_MAX_REOPEN_INFO]


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a too-long text ends its first message.

    ``head`` is the message to send: ``text[:consumed] + closer``. The next message is
    ``reopen + text[consumed:]``. ``closer``/``reopen`` are empty unless the cut fell inside a
    code fence.
    """

    head: str
    consumed: int
    closer: str = ""
    reopen: str = ""


def scan_fences(text: str) -> list[Fence]:
    """Every fenced code block of ``text`` in order; the last one may still be open."""
    fences: list[Fence] = []
    opened: tuple[int, int, str, str, str] | None = None
    size = len(text)
    for m in _FENCE_RE.finditer(text):
        indent, marker, rest = m.group(1), m.group(2), m.group(3)
        line_end = m.end() + 1 if m.end() < size else size
        if opened is None:
            if marker[0] == "`" and "`" in rest:
                continue  # CommonMark: a backtick fence's info string has no backtick
            opened = (m.start(), line_end, indent, marker, rest.strip())
        elif marker[0] == opened[3][0] and len(marker) >= len(opened[3]) and not rest.strip():
            start, body, o_indent, o_marker, info = opened
            fences.append(Fence(start, body, m.start(), line_end, o_indent, o_marker, info))
            opened = None
    if opened is not None:
        start, body, o_indent, o_marker, info = opened
        fences.append(Fence(start, body, None, None, o_indent, o_marker, info))
    return fences


def open_fence(text: str) -> Fence | None:
    """The code fence still open at the end of ``text``, or ``None``.

    ``open_fence(prefix).language`` tells which language a cut-off prefix is in.
    """
    fences = scan_fences(text)
    if fences and fences[-1].close is None:
        return fences[-1]
    return None


def close_open_fence(text: str) -> str:
    """``text`` with a closing line appended if it ends inside a code fence."""
    fence = open_fence(text)
    if fence is None:
        return text
    return text + ("" if text.endswith("\n") else "\n") + fence.closer


def split_markdown(text: str, max_len: int, measure: Measure = len) -> list[str]:
    """Split ``text`` into messages with ``measure(chunk) <= max_len`` each.

    Chunks are cut as :func:`cut_markdown` describes; separators stay at the end of the
    earlier chunk, so joining the chunks after removing the added fence lines gives ``text``.
    Blank chunks (and a blank remainder) are dropped.
    """
    chunks: list[str] = []
    rest = text
    while True:
        cut = cut_markdown(rest, max_len, measure)
        if cut is None:
            if rest.strip():
                chunks.append(rest)
            return chunks
        if cut.head.strip():
            chunks.append(cut.head)
        tail = rest[cut.consumed :]
        if not tail.strip():
            return chunks
        rest = cut.reopen + tail


def cut_markdown(text: str, max_len: int, measure: Measure = len) -> Cut | None:
    """Where the first message of ``text`` should end, or ``None`` if all of it fits.

    Guarantees progress (``consumed`` > 0, and past a fence opening line the text starts
    with) and, for any sensible ``max_len`` (a few dozen units), ``measure(head) <= max_len``.
    """
    if max_len < 1:
        raise ValueError("max_len must be positive")
    if measure(text) <= max_len:
        return None
    fit = _longest_fit(text, max_len, measure)
    # fit + 1 is the first prefix that overflows; nothing past it is looked at (stability).
    scan = _Scan(text, fit + 1)
    for tier in scan.tiers(max(1, fit // 2), fit):
        for p, fence in itertools.islice(tier, _TRIES_PER_TIER):
            cut = _make_cut(text, p, fence)
            if measure(cut.head) <= max_len:
                return cut
    return scan.hard_cut(fit, max_len, measure)


# -- internals ------------------------------------------------------------------------------


def _longest_fit(text: str, max_len: int, measure: Measure) -> int:
    """The largest ``e < len(text)`` with ``measure(text[:e]) <= max_len`` (gallop + bisect)."""
    size = len(text)
    good, bad = 0, size
    probe = min(max_len, size - 1)
    while probe > good:
        if measure(text[:probe]) <= max_len:
            good = probe
            probe = min(probe * 2, size - 1)
        else:
            bad = probe
            break
    while bad - good > 1:
        mid = (good + bad) // 2
        if measure(text[:mid]) <= max_len:
            good = mid
        else:
            bad = mid
    return good


def _safe(text: str, p: int) -> bool:
    """Whether a cut before ``text[p]`` keeps characters whole."""
    if p <= 0 or p >= len(text):
        return p == len(text)
    a, b = text[p - 1], text[p]
    if a == "\r" and b == "\n":
        return False
    if "\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff":
        return False
    if a == "\u200d" or b == "\u200d" or "\ufe00" <= b <= "\ufe0f":
        return False
    if "\U0001f3fb" <= b <= "\U0001f3ff" or "\U000e0000" <= b <= "\U000e01ef":
        return False
    if "\U0001f1e6" <= a <= "\U0001f1ff" and "\U0001f1e6" <= b <= "\U0001f1ff":
        return False
    return not unicodedata.category(b).startswith("M")


def _make_cut(text: str, p: int, fence: Fence | None) -> Cut:
    if fence is None:
        return Cut(text[:p], p)
    prefix = text[:p]
    closer = ("" if prefix.endswith("\n") else "\n") + fence.closer
    return Cut(prefix + closer, p, closer, fence.reopener + "\n")


Candidate = tuple[int, Fence | None]


class _Scan:
    """The fences of ``text[:limit]`` and questions about cut positions below ``limit``."""

    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.fences = scan_fences(text[:limit])
        self.starts = [f.start for f in self.fences]
        self.ends = {f.end for f in self.fences}

    def zone(self, p: int) -> tuple[str, Fence | None]:
        """Is a cut at ``p`` outside any fence ("out"), inside a fence body ("in"), or not
        allowed ("bad": inside an opening or closing line, or leaving an empty block)?"""
        i = bisect.bisect_left(self.starts, p) - 1
        if i < 0:
            return "out", None
        f = self.fences[i]
        if p <= f.body:
            return "bad", f
        if f.close is None or p < f.close:
            return "in", f
        if f.end is not None and p >= f.end:
            return "out", None
        return "bad", f

    def closer_ahead(self, p: int, fence: Fence) -> bool:
        """Could the line at ``p`` be this fence's closing line, as far as we may look?
        (Cutting there would leave an empty reopened block in the next message.)"""
        end = self.text.find("\n", p, self.limit)
        seg = self.text[p : self.limit if end < 0 else end].lstrip(" \t").rstrip("\r")
        return all(ch == fence.marker[0] for ch in seg)

    def is_paragraph(self, p: int) -> bool:
        i = bisect.bisect_left(self.starts, p)
        if (i < len(self.starts) and self.starts[i] == p) or p in self.ends:
            return True  # just before or just after a fence
        prev = self.text.rfind("\n", 0, p - 1)
        return not self.text[prev + 1 : p - 1].strip()

    def tiers(self, lo: int, fit: int) -> Iterator[Iterator[Candidate]]:
        """Candidate cuts in ``[lo, fit]``, best tier first, each tier latest first."""
        text = self.text
        breaks: list[tuple[int, str, Fence | None]] = []
        i = text.rfind("\n", lo - 1, fit)
        while i >= 0:
            p = i + 1
            zone, fence = self.zone(p)
            if _safe(text, p):
                if zone == "in" and fence is not None and self.closer_ahead(p, fence):
                    zone = "bad"
                breaks.append((p, zone, fence))
            i = text.rfind("\n", lo - 1, i)
        yield ((p, None) for p, z, _ in breaks if z == "out" and self.is_paragraph(p))
        yield ((p, None) for p, z, _ in breaks if z == "out")
        yield ((p, f) for p, z, f in breaks if z == "in")
        spaces = list(self.spaces(lo, fit))  # only computed when no line break would do
        yield ((p, f) for p, z, f, sentence in spaces if z == "out" and sentence)
        yield ((p, f) for p, z, f, _ in spaces if z == "out")
        yield ((p, f) for p, z, f, _ in spaces if z == "in")

    def spaces(self, lo: int, fit: int) -> Iterator[tuple[int, str, Fence | None, bool]]:
        text = self.text
        for p in range(fit, lo - 1, -1):
            ch = text[p - 1]
            if ch in " \t":
                sentence = p >= 2 and text[p - 2] in _SENTENCE_END
            elif ch in _CJK_SENTENCE_END:
                sentence = True
            else:
                continue
            zone, fence = self.zone(p)
            if zone != "bad" and _safe(text, p):
                yield p, zone, fence, sentence

    def hard_cut(self, fit: int, max_len: int, measure: Measure) -> Cut:
        """The latest allowed cut at or before ``fit`` whose head fits."""
        text = self.text
        p = fit
        fallback: Cut | None = None
        while p >= 1:
            zone, fence = self.zone(p)
            if zone != "bad" and _safe(text, p):
                cut = _make_cut(text, p, fence if zone == "in" else None)
                over = measure(cut.head) - max_len
                if over <= 0:
                    return cut
                fallback = cut
                p -= max(1, over)
            else:
                p -= 1
        if fallback is not None:
            return fallback
        # Nothing fits (max_len is smaller than a fence line): still make progress.
        whole = _Scan(text, len(text))
        for q in range(1, len(text) + 1):
            zone, fence = whole.zone(q)
            if zone != "bad" and _safe(text, q):
                return _make_cut(text, q, fence if zone == "in" else None)
        return Cut(text, len(text))
