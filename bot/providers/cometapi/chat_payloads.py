"""OpenAI-format chat payloads: the messages sent and the answers read.

Messages are plain OpenAI-format dicts, image parts included; :func:`user_message` builds one
with text and attached image bytes as data URIs (platform file URLs expire or embed bot
tokens, so images are always sent inline). Answers are read leniently into
:class:`ChatCompletion` and :class:`ChatDelta`: fields of the wrong type read as empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.providers.cometapi._unicode import fix_surrogates
from bot.providers.cometapi.errors import APIResponseError, StreamError, extract_request_id
from bot.providers.cometapi.media import data_uri

__all__ = [
    "ChatCompletion",
    "ChatDelta",
    "Message",
    "Usage",
    "image_part",
    "parse_chunk",
    "parse_completion",
    "single_delta",
    "stream_error",
    "user_message",
]

Message = Mapping[str, Any]
"""An OpenAI-format chat message: ``{"role": ..., "content": str | list[part]}``."""


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


def parse_chunk(payload: dict[str, Any]) -> ChatDelta | None:
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


def single_delta(data: dict[str, Any]) -> ChatDelta:
    if "error" in data:
        raise stream_error(data["error"])
    completion = parse_completion(data)
    return ChatDelta(
        content=completion.text,
        reasoning_content=completion.reasoning,
        role="assistant",
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        tool_calls=completion.tool_calls,
        model=completion.model,
    )


def parse_completion(data: dict[str, Any]) -> ChatCompletion:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise APIResponseError("chat completion: the answer has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    message = message if isinstance(message, dict) else {}
    return ChatCompletion(
        id=_str(data.get("id")),
        model=_str(data.get("model")),
        # A lone surrogate (from a JSON escape) would fail wherever the text is encoded.
        text=fix_surrogates(_content_text(message.get("content"))),
        finish_reason=choice.get("finish_reason") or None,
        usage=Usage.parse(data.get("usage")),
        reasoning=fix_surrogates(_str(message.get("reasoning_content"))),
        tool_calls=tuple(t for t in message.get("tool_calls") or () if isinstance(t, dict)),
    )


def _content_text(content: Any) -> str:
    # Some providers return content as a list of parts instead of a string.
    if isinstance(content, list):
        return "".join(_str(part.get("text")) for part in content if isinstance(part, dict))
    return _str(content)


def stream_error(raw: Any) -> StreamError:
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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
