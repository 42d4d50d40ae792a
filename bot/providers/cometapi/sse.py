"""Server-Sent Events: bytes in, events out.

A pure, incremental decoder following the WHATWG event-stream rules: lines end
in ``\\r\\n``, ``\\n`` or ``\\r``; ``:`` starts a comment; ``data`` lines of one
event are joined with ``\\n``; a blank line dispatches. Chunks may be split
anywhere, including between ``\\r`` and ``\\n`` or inside a UTF-8 character.

One leniency over the spec: an event still pending when the stream ends is
dispatched rather than dropped, because some gateways omit the last blank line
after ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_events"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed raw bytes with :meth:`feed`, then call :meth:`flush` once at end of stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Add bytes; return the events they complete (possibly none)."""
        self._buffer += chunk
        if not self._started:
            if len(self._buffer) < len(_BOM) and _BOM.startswith(bytes(self._buffer)):
                return []  # could still be a split BOM
            self._started = True
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
        return self._drain(final=False)

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: process the unterminated last line and any pending event."""
        self._started = True
        events = self._drain(final=True)
        if self._buffer:
            event = self._line(self._buffer.decode("utf-8", errors="replace"))
            self._buffer.clear()
            if event is not None:
                events.append(event)
        pending = self._dispatch()
        if pending is not None:
            events.append(pending)
        return events

    def _drain(self, *, final: bool) -> list[ServerSentEvent]:
        buf = self._buffer
        if b"\r" not in buf:
            return self._drain_lf(buf)
        events: list[ServerSentEvent] = []
        start = 0
        size = len(buf)
        while start < size:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else size)
            if cr >= 0:
                if cr + 1 == size and not final:
                    break  # a lone \r at the end may be the first half of \r\n
                end, nxt = cr, cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            # \r and \n never occur inside a UTF-8 multi-byte sequence, so a whole
            # line is always decodable on its own.
            event = self._line(buf[start:end].decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
            start = nxt
        del buf[:start]
        return events

    def _drain_lf(self, buf: bytearray) -> list[ServerSentEvent]:
        """The common case, every line ending in ``\\n``: decode the complete lines at once."""
        end = buf.rfind(b"\n")
        if end < 0:
            return []
        # \n never occurs inside a UTF-8 multi-byte sequence: the cut is a character boundary.
        lines = buf[:end].decode("utf-8", errors="replace").split("\n")
        del buf[: end + 1]
        events: list[ServerSentEvent] = []
        for line in lines:
            if line.startswith("data:"):  # most lines
                value = line[5:]
                self._data.append(value[1:] if value.startswith(" ") else value)
            elif (event := self._line(line)) is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment, often a keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


async def aiter_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Decode an async byte iterator into events (convenience for simple callers)."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
