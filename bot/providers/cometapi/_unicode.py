"""UTF-16 surrogates in upstream text: pairs split across stream chunks, and lone halves.

Some upstreams escape non-BMP characters in JSON as two ``\\uXXXX`` surrogates and may cut a
stream chunk between them (``"\\ud83d"`` then ``"\\ude00"`` for 😀). ``json.loads`` turns each
half into a lone surrogate code point, which no encoder accepts: a reply showing such text
fails on every edit, so the halves are joined here before the text leaves the SDK, and a half
that never gets its partner becomes U+FFFD.
"""

from __future__ import annotations

import re

__all__ = ["REPLACEMENT", "SurrogateJoiner", "fix_surrogates"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    # UTF-16 round trip: a pair becomes one character; a lone half is a decoding error.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class SurrogateJoiner:
    """Joins surrogate pairs split between the pieces of one streamed text.

    A piece ending in a high surrogate keeps it back until the next piece; :meth:`flush`
    at the end of the stream returns U+FFFD if a half is still held.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def join(self, piece: str) -> str:
        """The part of ``piece`` (after what was held back) that can be shown now."""
        if self._held:
            piece, self._held = self._held + piece, ""
        elif piece.isascii():  # the common case: nothing to look at
            return piece
        if piece and "\ud800" <= piece[-1] <= "\udbff":
            piece, self._held = piece[:-1], piece[-1]
        return fix_surrogates(piece)

    def flush(self) -> str:
        """End of the text: U+FFFD for a held half that never got its partner, else ``""``."""
        held, self._held = self._held, ""
        return REPLACEMENT if held else ""
