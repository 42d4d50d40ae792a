"""Text checks shared by the chat and generation features (stdlib only)."""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["is_blank"]

# Characters that render as nothing but are not Unicode whitespace nor format (Cf)
# characters: the Hangul fillers, the Mongolian vowel separator and the blank Braille cell.
_BLANK_EXTRA: Final = frozenset("\u115f\u1160\u180e\u2800\u3164\uffa0")


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only whitespace and invisible characters (zero-width
    spaces and joiners, word joiners, byte-order marks and other format characters).

    ``str.strip`` keeps ``\\u200b`` and friends, so such input would reach the paid upstream
    as a "prompt" of nothing.
    """
    return all(
        ch.isspace() or ch in _BLANK_EXTRA or unicodedata.category(ch) == "Cf" for ch in text
    )
