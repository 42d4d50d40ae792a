"""Chat completions (OpenAI format): one-shot and streamed.

The payloads (messages sent, completions and deltas read) are in
:mod:`bot.providers.cometapi.chat_payloads`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import httpx

from bot.providers.cometapi._unicode import SurrogateJoiner
from bot.providers.cometapi.chat_payloads import (
    ChatCompletion,
    ChatDelta,
    Message,
    Usage,
    parse_chunk,
    parse_completion,
    single_delta,
    stream_error,
)
from bot.providers.cometapi.errors import APIResponseError, APITimeoutError, StreamTruncatedError
from bot.providers.cometapi.requester import READ_INTERVAL, Requester
from bot.providers.cometapi.sse import ServerSentEvent, SSEDecoder

__all__ = ["Chat", "ChatStream"]

log = logging.getLogger(__name__)

_PATH = "/v1/chat/completions"


class Chat:
    """``client.chat``: ``POST /v1/chat/completions``."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    async def create(
        self, model: str, messages: Sequence[Message], **params: Any
    ) -> ChatCompletion:
        """Ask for a complete answer. ``params`` pass through (temperature, tools, ...)."""
        params.pop("stream", None)
        body = {"model": model, "messages": list(messages), **params}
        data = await self._client.request("POST", _PATH, json=body)
        if not isinstance(data, dict):
            raise APIResponseError("chat completion: the answer is not an object")
        if "error" in data:  # some upstreams answer 200 with an error object
            raise APIResponseError(f"chat completion failed: {stream_error(data['error'])}")
        return parse_completion(data)

    def stream(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        read_interval: float = 0.0,
        **params: Any,
    ) -> ChatStream:
        """Start a streamed answer; see :class:`ChatStream` for how to consume it.

        ``read_interval``: once text has begun, read the socket at most every so many seconds
        and parse what gathered meanwhile at once (fewer wake-ups; text arrives in bursts at
        most that far apart). The first text is never held back. It needs the client's
        :class:`~bot.providers.cometapi.aiohttp_transport.AiohttpTransport`; other
        transports read as data arrives.
        """
        options = {"include_usage": True, **dict(params.pop("stream_options", None) or {})}
        body = {
            "model": model,
            "messages": list(messages),
            **params,
            "stream": True,
            "stream_options": options,
        }
        return ChatStream(self._client, body, read_interval=read_interval)


class ChatStream:
    """A streamed answer: an async iterator of :class:`ChatDelta`.

    Use it as a context manager; leaving the block closes the HTTP response at
    once, so the server sees the disconnect however the loop ended (break,
    exception, cancellation)::

        async with client.chat.stream(model, messages) as stream:
            async for delta in stream:
                ...

    Iterating without ``async with`` works too and closes the response when the
    stream ends or fails; after breaking out early, ``await stream.aclose()``.
    The request is sent on the first ``__anext__``; it is retried only until
    response headers arrive. Raises :class:`StreamError` for an in-band error
    object, :class:`StreamTruncatedError` when the stream ends or breaks before
    ``[DONE]`` and :class:`APITimeoutError` when no chunk arrives within the
    stream read timeout. ``text``, ``usage`` and ``finish_reason`` accumulate
    as deltas are read.
    """

    def __init__(
        self, client: Requester, body: dict[str, Any], *, read_interval: float = 0.0
    ) -> None:
        self._client = client
        self._body = body
        self._read_interval = read_interval
        self._has_text = False
        self._gen: AsyncGenerator[ChatDelta, None] | None = None
        self._closed = False
        self._parts: list[str] = []
        # A surrogate pair split between two chunks is joined before the text goes out.
        self._content = SurrogateJoiner()
        self._reasoning = SurrogateJoiner()
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        """The content received so far."""
        return "".join(self._parts)

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[ChatDelta]:
        # ``async for`` drives the generator itself: no extra Python frame per delta.
        return self._deltas()

    async def __anext__(self) -> ChatDelta:
        return await self._deltas().__anext__()

    def _deltas(self) -> AsyncGenerator[ChatDelta, None]:
        if self._gen is None:
            self._gen = self._run() if not self._closed else _nothing()
        return self._gen

    async def aclose(self) -> None:
        """Stop reading and close the HTTP response (idempotent)."""
        self._closed = True
        if self._gen is not None:
            await self._gen.aclose()

    def _seen(self, delta: ChatDelta) -> ChatDelta:
        """Keep ``text``, ``usage`` and ``finish_reason`` up to date as a delta goes out
        (its text with surrogate halves joined, see :mod:`._unicode`)."""
        content = self._content.join(delta.content)
        reasoning = self._reasoning.join(delta.reasoning_content)
        if content is not delta.content or reasoning is not delta.reasoning_content:
            delta = dataclasses.replace(delta, content=content, reasoning_content=reasoning)
        if delta.content:
            self._parts.append(delta.content)
            # Leading whitespace is not yet words a reader sees: keep reading at once.
            self._has_text = self._has_text or not delta.content.isspace()
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        return delta

    def _tail(self) -> ChatDelta | None:
        """At the end: U+FFFD for a surrogate half still held back (its pair never came)."""
        content, reasoning = self._content.flush(), self._reasoning.flush()
        if not (content or reasoning):
            return None
        return self._seen(ChatDelta(content=content, reasoning_content=reasoning))

    def _gather_for(self) -> float:
        """Seconds the transport may let the stream gather before its next read."""
        return self._read_interval if self._has_text else 0.0

    async def _run(self) -> AsyncGenerator[ChatDelta, None]:
        extensions = {READ_INTERVAL: self._gather_for} if self._read_interval > 0 else None
        response = await self._client.open_stream(
            "POST", _PATH, json=self._body, extensions=extensions
        )
        try:
            decoder = SSEDecoder()
            try:
                if "json" in response.headers.get("content-type", ""):
                    # A gateway may ignore stream=true and answer with one JSON object.
                    await response.aread()
                    yield self._seen(single_delta(_json_object(response.text)))
                    if (tail := self._tail()) is not None:
                        yield tail
                    return
                # Uncompressed (the usual case for SSE): skip httpx's decoder layer per chunk.
                plain = "content-encoding" not in response.headers
                chunks = response.aiter_raw() if plain else response.aiter_bytes()
                async for chunk in chunks:
                    for event in decoder.feed(chunk):
                        if _is_done(event):
                            if (tail := self._tail()) is not None:
                                yield tail
                            return
                        if (delta := _event_delta(event)) is not None:
                            yield self._seen(delta)
                for event in decoder.flush():
                    if _is_done(event):
                        if (tail := self._tail()) is not None:
                            yield tail
                        return
                    if (delta := _event_delta(event)) is not None:
                        yield self._seen(delta)
            except httpx.TimeoutException as exc:
                raise APITimeoutError("chat stream: no data within the read timeout") from exc
            except httpx.TransportError as exc:
                raise StreamTruncatedError(
                    f"chat stream broke before [DONE] ({type(exc).__name__})"
                ) from exc
            raise StreamTruncatedError("chat stream ended without [DONE]")
        finally:
            await response.aclose()


async def _nothing() -> AsyncGenerator[ChatDelta, None]:
    """The deltas of a stream closed before it was read: none."""
    return
    yield  # pragma: no cover  (makes this an async generator)


def _is_done(event: ServerSentEvent) -> bool:
    return event.data.strip() == "[DONE]"


def _event_delta(event: ServerSentEvent) -> ChatDelta | None:
    try:
        payload = json.loads(event.data)
    except ValueError:
        log.debug("Skipping a non-JSON stream event (%d chars)", len(event.data))
        return None
    if not isinstance(payload, dict):
        return None
    if "error" in payload:
        raise stream_error(payload["error"])
    return parse_chunk(payload)


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise APIResponseError("chat stream: a JSON answer that does not parse") from exc
    if not isinstance(data, dict):
        raise APIResponseError("chat stream: the JSON answer is not an object")
    return data
