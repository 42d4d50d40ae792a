"""Images inside a streamed chat answer: split from the visible text as the chunks arrive.

Image models answer with Markdown such as ``![image](data:image/png;base64,...)`` (often a
megabyte of base64) or ``![gen_x](https://.../x.png)`` (gpt-4o-image). Neither may reach a
person as text, not even half of it mid-stream, so :class:`ImageScanner` sits between the model
stream and the reply: it passes on the visible text, holds back an unfinished ``![...`` at the
tail until it closes or proves not to be an image, decodes a data URI's base64 as it arrives
(never holding the text and the bytes of a whole image twice) and remembers URLs to download.
The text to store has a short ``[image N]`` placeholder per image, never base64: history is
resent with every later question.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

__all__ = ["MAX_IMAGE_BYTES", "AnswerImage", "ImageScanner", "placeholder"]

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
"""A decoded or downloaded image larger than this is refused (both platforms' upload caps)."""
_MAX_ALT: Final = 300  # an alt text longer than this is prose with a "![" in it, not an image
_MAX_HEADER: Final = 100  # "data:image/png;base64" and parameters
_MAX_URL: Final = 2048
_PREFIXES: Final = ("data:", "http://", "https://")
_SPACE: Final = " \t\r\n"


def placeholder(number: int) -> str:
    return f"[image {number}]"


@dataclass(slots=True)
class AnswerImage:
    """One image of an answer: decoded bytes (a data URI) or a URL to download."""

    number: int
    url: str | None = None
    mime_type: str = "image/png"
    problem: str | None = None
    """Why it cannot be shown, as the end of "Image N could not be shown: ..."."""
    buffer: bytearray = field(default_factory=bytearray, repr=False)
    """A data URI's bytes, decoded as its base64 arrives."""

    @property
    def data(self) -> bytes:
        return bytes(self.buffer)

    def fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.buffer = bytearray()  # its memory goes at once


class _State(Enum):
    TEXT = auto()
    BANG = auto()  # "!" seen: maybe an image
    ALT = auto()  # "![" seen, reading the alt text up to "]"
    OPEN = auto()  # "![alt]" seen, "(" expected
    TARGET = auto()  # "![alt](" seen, reading enough of the target to decide
    HEADER = auto()  # a data URI's "data:image/png;base64" up to ","
    BASE64 = auto()
    URL = auto()
    SKIP = auto()  # the rest of an image's markup up to ")", not shown


class ImageScanner:
    """Splits a streamed answer into visible text and images (see the module docstring).

    :meth:`feed` takes each chunk and returns the text that may be shown now;
    :meth:`finish` returns the held-back rest. :attr:`images` lists the images in order;
    :meth:`stored_text` is the answer with a placeholder where each image was.
    """

    def __init__(self, max_bytes: int = MAX_IMAGE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._state = _State.TEXT
        self._held = ""  # markup that may still turn out to be text
        self._target = ""  # the target's start, a data URI's header or a URL
        self._pending = ""  # base64 characters not yet a multiple of four
        self._stored: list[str] = []
        self._flushed = 0  # how much of this feed's visible text is in ``_stored``
        self.images: list[AnswerImage] = []

    def stored_text(self) -> str:
        return "".join(self._stored)

    def feed(self, chunk: str) -> str:
        out: list[str] = []
        self._flushed = 0
        i, n = 0, len(chunk)
        while i < n:
            i = self._step(chunk, i, out)
        self._stored.extend(out[self._flushed :])
        return "".join(out)

    def finish(self) -> str:
        """The end of the answer: markup that never closed is text again, unless it had
        already become an image (then that image was cut off)."""
        state = self._state
        visible = ""
        if state in (_State.BANG, _State.ALT, _State.OPEN, _State.TARGET):
            visible = self._held + self._target
        elif state is not _State.TEXT:
            self.images[-1].fail("the answer ended in the middle of it")
        self._state, self._held, self._target, self._pending = _State.TEXT, "", "", ""
        if visible:
            self._stored.append(visible)
        return visible

    # -- the states ------------------------------------------------------------------------

    def _release(self, out: list[str]) -> None:
        """The held markup proved not to be an image: it is text."""
        out.append(self._held + self._target)
        self._held, self._target, self._state = "", "", _State.TEXT

    def _step(self, chunk: str, i: int, out: list[str]) -> int:
        """Consume some of ``chunk`` from ``i``; the next index."""
        state = self._state
        if state is _State.TEXT:
            j = chunk.find("!", i)
            if j < 0:
                out.append(chunk[i:])
                return len(chunk)
            out.append(chunk[i:j])
            self._held, self._state = "!", _State.BANG
            return j + 1
        if state is _State.BANG:
            if chunk[i] != "[":
                self._release(out)
                return i  # rescanned as text (it may be another "!")
            self._held += "["
            self._state = _State.ALT
            return i + 1
        if state is _State.ALT:
            j = chunk.find("]", i)
            piece = chunk[i:] if j < 0 else chunk[i : j + 1]
            if len(self._held) + len(piece) > _MAX_ALT:
                self._release(out)
                return i
            self._held += piece
            if j < 0:
                return len(chunk)
            self._state = _State.OPEN
            return j + 1
        if state is _State.OPEN:
            if chunk[i] != "(":
                self._release(out)
                return i
            self._held += "("
            self._state = _State.TARGET
            return i + 1
        if state is _State.TARGET:
            return self._decide(chunk, i, out)
        if state is _State.HEADER:
            return self._header(chunk, i)
        if state is _State.BASE64:
            return self._base64(chunk, i)
        if state is _State.URL:
            return self._url(chunk, i)
        j = chunk.find(")", i)  # SKIP
        if j < 0:
            return len(chunk)
        self._close()
        return j + 1

    def _decide(self, chunk: str, i: int, out: list[str]) -> int:
        """Read the target one character at a time until it is clearly an image or not."""
        self._target += chunk[i]
        lowered = self._target.lower()
        if lowered == "data:":
            self._start(None, out)
            self._state = _State.HEADER
        elif lowered in ("http://", "https://"):
            self._start(self._target, out)
            self._state = _State.URL
        elif not any(p.startswith(lowered) for p in _PREFIXES):
            self._target = self._target[:-1]
            self._release(out)
            return i
        return i + 1

    def _start(self, url: str | None, out: list[str]) -> None:
        self._stored.extend(out[self._flushed :])  # the text before it, then its placeholder
        self._flushed = len(out)
        image = AnswerImage(number=len(self.images) + 1, url=url)
        self.images.append(image)
        self._stored.append(placeholder(image.number))
        self._held, self._target = "", url or ""

    def _close(self) -> None:
        image = self.images[-1]
        if self._pending and image.problem is None:
            image.fail("its data was not valid base64")
        self._state, self._target, self._pending = _State.TEXT, "", ""

    def _skip(self, chunk: str, i: int, problem: str | None) -> int:
        if problem is not None:
            self.images[-1].fail(problem)
        self._state = _State.SKIP
        return i

    def _header(self, chunk: str, i: int) -> int:
        j = chunk.find(",", i)
        piece = chunk[i:] if j < 0 else chunk[i:j]
        self._target += piece
        if ")" in piece or len(self._target) > _MAX_HEADER:
            return self._skip(chunk, i, "it was not a valid data URI")
        if j < 0:
            return len(chunk)
        mime, _, params = self._target.partition(";")
        if not mime.lower().startswith("image/") or "base64" not in params.lower().split(";"):
            return self._skip(chunk, j + 1, "it was not a base64 image")
        self.images[-1].mime_type = mime.lower()
        self._target = ""
        self._state = _State.BASE64
        return j + 1

    def _base64(self, chunk: str, i: int) -> int:
        j = chunk.find(")", i)
        end = len(chunk) if j < 0 else j
        stop = end
        for k in range(i, end):  # a title or a space: the base64 ends there
            if chunk[k] in _SPACE:
                stop = k
                break
        image = self.images[-1]
        text = self._pending + chunk[i:stop]
        cut = len(text) - len(text) % 4
        try:
            image.buffer += binascii.a2b_base64(text[:cut], strict_mode=True)
        except binascii.Error:
            return self._skip(chunk, stop, "its data was not valid base64")
        self._pending = text[cut:]
        if len(image.buffer) > self._max_bytes:
            return self._skip(chunk, stop, "it is too large")
        if stop < end:
            if self._pending:
                image.fail("its data was not valid base64")
            self._pending = ""
            return self._skip(chunk, stop, None)
        if j < 0:
            return len(chunk)
        self._close()
        return j + 1

    def _url(self, chunk: str, i: int) -> int:
        j = chunk.find(")", i)
        end = len(chunk) if j < 0 else j
        stop = end
        for k in range(i, end):
            if chunk[k] in _SPACE:
                stop = k
                break
        self._target += chunk[i:stop]
        if len(self._target) > _MAX_URL:
            return self._skip(chunk, stop, "its address is too long")
        self.images[-1].url = self._target
        if stop < end:
            return self._skip(chunk, stop, None)
        if j < 0:
            return len(chunk)
        self._close()
        return j + 1
