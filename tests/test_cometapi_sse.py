"""The pure SSE decoder: framing, splits anywhere, CRLF, comments, multi-line data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.providers.cometapi.sse import ServerSentEvent, SSEDecoder, aiter_events

STREAM = (
    ": keep-alive\r\n\r\n"
    'data: {"a": "héllo ✓"}\r\n\r\n'
    "event: note\r\nid: 7\r\nretry: 1500\r\ndata: line one\r\ndata: line two\r\n\r\n"
    "data: [DONE]\r\n\r\n"
).encode()

EXPECTED = [
    ServerSentEvent(data='{"a": "héllo ✓"}'),
    ServerSentEvent(data="line one\nline two", event="note", id="7", retry=1500),
    ServerSentEvent(data="[DONE]", id="7", retry=1500),
]


def decode(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def test_whole_stream_in_one_chunk() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_split_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode(chunks) == EXPECTED


def test_every_two_way_split() -> None:
    # Covers splits between \r and \n and inside multi-byte UTF-8 characters.
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_all_line_endings(newline: str) -> None:
    text = f"data: a{newline}data: b{newline}{newline}data: c{newline}{newline}"
    assert [e.data for e in decode([text.encode()])] == ["a\nb", "c"]


def test_lone_cr_at_chunk_end_waits_for_the_next_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent(data="x")]


def test_comments_and_blank_events_dispatch_nothing() -> None:
    assert decode([b": ping\n\n:another\n\n\n\nevent: lonely\n\n"]) == []


def test_field_parsing_rules() -> None:
    text = b"data:no-space\ndata:  two spaces\ndata\nunknown: x\nid: bad\x00id\n\n"
    [event] = decode([text])
    assert event.data == "no-space\n two spaces\n"
    assert event.id is None  # an id containing NUL is ignored


def test_bom_is_stripped_even_when_split() -> None:
    assert decode([b"\xef", b"\xbb\xbfdata: x\n\n"]) == [ServerSentEvent(data="x")]


def test_pending_event_is_dispatched_at_end_of_stream() -> None:
    # Lenient on purpose: some gateways omit the blank line after [DONE].
    assert decode([b"data: [DONE]"]) == [ServerSentEvent(data="[DONE]")]
    assert decode([b"data: [DONE]\r"]) == [ServerSentEvent(data="[DONE]")]


async def test_aiter_events_over_an_async_byte_iterator() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(STREAM), 4):
            yield STREAM[i : i + 4]

    assert [event async for event in aiter_events(chunks())] == EXPECTED
