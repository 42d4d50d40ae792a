"""Chat completions (OpenAI format): one-shot and streamed.

Messages are plain OpenAI-format dicts, image parts included; :func:`user_message`
builds one with text and attached image bytes as data URIs (platform file URLs
expire or embed bot tokens, so images are always sent inline).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from bot.providers.cometapi.aiohttp_transport import READ_INTERVAL
from bot.providers.cometapi.errors import (
    APIResponseError,
    APITimeoutError,
    StreamError,
    StreamTruncatedError,
    extract_request_id,
)
from bot.providers.cometapi.media import data_uri
from bot.providers.cometapi.sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from bot.providers.cometapi.client import CometAPI

__all__ = [
    "Chat",
    "ChatCompletion",
    "ChatDelta",
    "ChatStream",
    "Message",
    "Usage",
    "image_part",
    "user_message",
]

log = logging.getLogger(__name__)

Message = Mapping[str, Any]
"""An OpenAI-format chat message: ``{"role": ..., "content": str | list[part]}``."""

_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting as the API reports it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def parse(cls, raw: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or not an object."""
        if not isinstance(raw, dict):
            return None
        completion_details = raw.get("completion_tokens_details") or {}
        prompt_details = raw.get("prompt_tokens_details") or {}
        prompt = _int(raw.get("prompt_tokens"))
        completion = _int(raw.get("completion_tokens"))
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
            reasoning_tokens=_int(_get(completion_details, "reasoning_tokens")),
            cached_tokens=_int(_get(prompt_details, "cached_tokens")),
        )


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    """A finished, non-streamed answer."""

    id: str
    model: str
    text: str
    finish_reason: str | None
    usage: Usage | None
    reasoning: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One piece of a streamed answer.

    ``usage`` arrives once, in a chunk of its own (``choices: []``) just before
    the end; ``tool_calls`` are raw OpenAI fragments, merged by ``index``.
    """

    content: str = ""
    reasoning_content: str = ""
    role: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    model: str = ""


def image_part(
    image: bytes | str, *, mime_type: str | None = None, detail: str | None = None
) -> dict[str, Any]:
    """An ``image_url`` content part from image bytes (-> data URI) or a URL."""
    image_url: dict[str, Any] = {"url": data_uri(image, mime_type)}
    if detail:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def user_message(
    text: str, images: Iterable[bytes | str] = (), *, detail: str | None = None
) -> dict[str, Any]:
    """A user message; plain text, or text plus image parts when images are given."""
    parts = [image_part(image, detail=detail) for image in images]
    if not parts:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [{"type": "text", "text": text}, *parts]}


class Chat:
    """``client.chat``: ``POST /v1/chat/completions``."""

    def __init__(self, client: CometAPI) -> None:
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
            raise APIResponseError(f"chat completion failed: {_stream_error(data['error'])}")
        return _completion(data)

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
        self, client: CometAPI, body: dict[str, Any], *, read_interval: float = 0.0
    ) -> None:
        self._client = client
        self._body = body
        self._read_interval = read_interval
        self._has_text = False
        self._gen: AsyncGenerator[ChatDelta, None] | None = None
        self._closed = False
        self._parts: list[str] = []
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
        """Keep ``text``, ``usage`` and ``finish_reason`` up to date as a delta goes out."""
        if delta.content:
            self._parts.append(delta.content)
            # Leading whitespace is not yet words a reader sees: keep reading at once.
            self._has_text = self._has_text or not delta.content.isspace()
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        return delta

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
                    yield self._seen(_single_delta(_json_object(response.text)))
                    return
                # Uncompressed (the usual case for SSE): skip httpx's decoder layer per chunk.
                plain = "content-encoding" not in response.headers
                chunks = response.aiter_raw() if plain else response.aiter_bytes()
                async for chunk in chunks:
                    for event in decoder.feed(chunk):
                        if _is_done(event):
                            return
                        if (delta := _event_delta(event)) is not None:
                            yield self._seen(delta)
                for event in decoder.flush():
                    if _is_done(event):
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
        raise _stream_error(payload["error"])
    return _chunk_delta(payload)


def _chunk_delta(payload: dict[str, Any]) -> ChatDelta | None:
    choices = payload.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    delta = choice.get("delta") or {}
    delta = delta if isinstance(delta, dict) else {}
    result = ChatDelta(
        content=_str(delta.get("content")),
        # DeepSeek-style reasoning models; some relays call the field "reasoning".
        reasoning_content=_str(delta.get("reasoning_content") or delta.get("reasoning")),
        role=delta.get("role") or None,
        finish_reason=choice.get("finish_reason") or None,
        usage=Usage.parse(payload.get("usage")),
        tool_calls=tuple(t for t in delta.get("tool_calls") or () if isinstance(t, dict)),
        model=_str(payload.get("model")),
    )
    empty = not (
        result.content
        or result.reasoning_content
        or result.role
        or result.finish_reason
        or result.usage
        or result.tool_calls
    )
    return None if empty else result


def _single_delta(data: dict[str, Any]) -> ChatDelta:
    if "error" in data:
        raise _stream_error(data["error"])
    completion = _completion(data)
    return ChatDelta(
        content=completion.text,
        reasoning_content=completion.reasoning,
        role="assistant",
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        tool_calls=completion.tool_calls,
        model=completion.model,
    )


def _completion(data: dict[str, Any]) -> ChatCompletion:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise APIResponseError("chat completion: the answer has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    message = message if isinstance(message, dict) else {}
    return ChatCompletion(
        id=_str(data.get("id")),
        model=_str(data.get("model")),
        text=_content_text(message.get("content")),
        finish_reason=choice.get("finish_reason") or None,
        usage=Usage.parse(data.get("usage")),
        reasoning=_str(message.get("reasoning_content")),
        tool_calls=tuple(t for t in message.get("tool_calls") or () if isinstance(t, dict)),
    )


def _content_text(content: Any) -> str:
    # Some providers return content as a list of parts instead of a string.
    if isinstance(content, list):
        return "".join(_str(part.get("text")) for part in content if isinstance(part, dict))
    return _str(content)


def _stream_error(raw: Any) -> StreamError:
    if isinstance(raw, dict):
        message = _str(raw.get("message")) or "unknown error"
        code, error_type = raw.get("code"), raw.get("type")
    else:
        message, code, error_type = _str(raw) or "unknown error", None, None
    return StreamError(
        f"error from the model: {message}",
        code=code if isinstance(code, str | int) else None,
        error_type=error_type if isinstance(error_type, str) else None,
        request_id=extract_request_id(message),
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise APIResponseError("chat stream: a JSON answer that does not parse") from exc
    if not isinstance(data, dict):
        raise APIResponseError("chat stream: the JSON answer is not an object")
    return data


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
