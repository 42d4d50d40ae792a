"""What the API families need from the client, and what a stream may ask of a transport.

The family modules (chat, images, midjourney, suno, kling) depend on :class:`Requester` alone;
:class:`~bot.providers.cometapi.client.CometAPI` implements it and builds the families, so
imports run one way: the client imports the families, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx

__all__ = ["READ_INTERVAL", "Multipart", "Requester"]

READ_INTERVAL: Final = "read_interval"
"""httpx request extension: ``() -> float``, seconds a transport may let a streamed body
gather between two reads. :class:`~bot.providers.cometapi.aiohttp_transport.AiohttpTransport`
honours it; other transports ignore extensions they do not know."""


@dataclass(frozen=True, slots=True)
class Multipart:
    """A ``multipart/form-data`` body: text fields, and files as ``name -> (filename, bytes,
    content type)`` (the images edits; the API reads a file's format from its name)."""

    fields: Mapping[str, str]
    files: Mapping[str, tuple[str, bytes, str]] = field(default_factory=dict)


class Requester(Protocol):
    """Sends one API call with the client's auth, timeouts, retries and error mapping."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        auth: bool = True,
        paid: bool = False,
    ) -> Any:
        """The decoded JSON body; ``paid=True`` never resubmits after an unclear outcome."""
        ...

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """A 2xx response with its body unread; the caller must ``aclose()`` it."""
        ...

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        form: Multipart | None = None,
        paid: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        """A POST whose body is ``json`` or a multipart ``form``; ``read_timeout`` (seconds)
        replaces the client's read timeout for this call (pictures take minutes)."""
        ...
