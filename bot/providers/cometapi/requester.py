"""What the API families need from the client, and what a stream may ask of a transport.

The family modules (chat, midjourney, suno, kling) depend on :class:`Requester` alone;
:class:`~bot.providers.cometapi.client.CometAPI` implements it and builds the families, so
imports run one way: the client imports the families, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import httpx

__all__ = ["READ_INTERVAL", "Requester"]

READ_INTERVAL: Final = "read_interval"
"""httpx request extension: ``() -> float``, seconds a transport may let a streamed body
gather between two reads. :class:`~bot.providers.cometapi.aiohttp_transport.AiohttpTransport`
honours it; other transports ignore extensions they do not know."""


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
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body; ``paid=True`` never resubmits after an unclear outcome.
        ``files`` (name -> (filename, bytes, content type)) and ``data`` send a multipart form
        instead of ``json``."""
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
