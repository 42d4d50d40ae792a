"""An httpx transport that sends requests through an :class:`aiohttp.ClientSession`.

httpx stays the API everyone uses (``httpx.AsyncClient``, ``httpx.Response``, httpx's
exceptions); only the wire moves to aiohttp, whose HTTP parser is written in C, instead of
httpcore + h11 + anyio. Pass it as ``transport=`` to ``httpx.AsyncClient`` (or to
:class:`~bot.providers.cometapi.CometAPI`, or in python-telegram-bot's ``httpx_kwargs``)::

    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        response = await client.get("https://example.com")

What it does, and where it differs from httpx's own transport:

* connections are pooled by aiohttp's ``TCPConnector`` (``limit`` connections in all);
* the response body is streamed: :class:`AiohttpStream` yields chunks as they arrive, and
  its ``aclose()`` releases the connection, or closes it when the body was not read to the
  end (so an abandoned stream drops its connection at once);
* redirects are never followed here (httpx follows them itself when asked), cookies are
  left to httpx, and bodies are not decompressed here (httpx decodes ``Content-Encoding``);
* timeouts: ``connect`` bounds waiting for a pooled connection plus opening one
  (:class:`httpx.ConnectTimeout`, or :class:`httpx.PoolTimeout` when every connection was
  busy), ``read`` the silence between two reads (:class:`httpx.ReadTimeout`); aiohttp has no
  write timeout, so ``write`` is ignored (a stalled upload is bounded by ``read``);
* failures become httpx's: refused/unresolvable → :class:`httpx.ConnectError`, a peer that
  hangs up mid-answer → :class:`httpx.RemoteProtocolError`, other socket errors →
  :class:`httpx.ReadError`;
* request bodies (JSON, bytes, multipart built by httpx) are read into memory and sent with
  httpx's headers; httpx's proxy settings (and ``HTTP(S)_PROXY``) do not apply;
* the request extension ``"read_interval"`` (a zero-argument callable returning seconds) lets
  a streamed body gather: after each chunk handed out, reading from the socket pauses for
  that long (aiohttp's own flow control, so the read timeout is suspended meanwhile), and
  whatever arrived meanwhile comes out as one chunk. A token stream read by a consumer that
  shows text once a second then costs one wake-up per interval instead of one per token.
  The callable is asked again after every chunk; 0 reads on at once.

The session is created on first use, inside the running event loop, and closed by
:meth:`AiohttpTransport.aclose`; a later request opens a new one (python-telegram-bot closes
its client on shutdown and may rebuild it with the same transport). A session passed in is
used as is and never closed here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
from yarl import URL

from bot.providers.cometapi.requester import READ_INTERVAL

__all__ = ["AiohttpStream", "AiohttpTransport"]

_URL_PATH = re.compile(r"(https?://[^/\s'\"]+)[^\s'\"]*")

DEFAULT_LIMIT = 1000
"""Connections open at once; a chat stream holds one for the whole answer."""
DEFAULT_KEEPALIVE = 15.0
_PROTOCOL_ERRORS = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
)


def _map_error(exc: BaseException, request: httpx.Request, *, pool_full: bool) -> Exception:
    """The httpx exception for an aiohttp (or asyncio) failure, with the message kept."""
    # aiohttp puts the request URL in some messages; a Telegram URL carries the bot token.
    message = _URL_PATH.sub(r"\1/…", f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls: type[httpx.TransportError] = httpx.PoolTimeout if pool_full else httpx.ConnectTimeout
        return cls(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, _PROTOCOL_ERRORS):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    return httpx.ReadError(message, request=request)


class AiohttpStream(httpx.AsyncByteStream):
    """A response body read from aiohttp as it arrives; ``aclose()`` ends the response."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        interval = request.extensions.get(READ_INTERVAL)
        self._interval: Callable[[], float] | None = interval if callable(interval) else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
                if self._interval is not None and (wait := self._interval()) > 0:
                    await self._gather(wait)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_error(exc, self._request, pool_full=False) from exc

    async def _gather(self, seconds: float) -> None:
        """Leave the socket unread for ``seconds``: what arrives meanwhile is read at once."""
        connection = self._response.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is None:  # the body is complete: nothing more will arrive
            return
        protocol.pause_reading()
        try:
            await asyncio.sleep(seconds)
        finally:
            if protocol.transport is not None:
                protocol.resume_reading()

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # back to the pool
        else:
            response.close()  # unread body: drop the connection rather than drain it


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` backed by one :class:`aiohttp.ClientSession`.

    ``limit`` caps the connections open at once (all hosts), ``keepalive`` is how long an
    idle connection stays pooled. ``session`` injects a ready session instead (not closed by
    :meth:`aclose`; its own redirect, cookie and decompression settings are overridden per
    request where aiohttp allows it).
    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        keepalive: float = DEFAULT_KEEPALIVE,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._session = session
        self._owns_session = session is None
        self._active = 0  # requests holding a connection (sent, body not closed yet)

    def _open_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or (session.closed and self._owns_session):
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, keepalive_timeout=self._keepalive
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
            self._session = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open_session()
        timeouts = request.extensions.get("timeout", {})
        connect = timeouts.get("connect")
        timeout = aiohttp.ClientTimeout(
            total=None, connect=connect, sock_connect=connect, sock_read=timeouts.get("read")
        )
        body = await request.aread()
        pool_full = self._active >= self._limit
        self._active += 1
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=None,
                auto_decompress=False,
                timeout=timeout,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type", "Accept"),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._active -= 1
            raise _map_error(exc, request, pool_full=pool_full) from exc
        except BaseException:
            self._active -= 1
            raise
        version = response.version
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_CountedStream(self, response, request),
            request=request,
            extensions={
                "http_version": f"HTTP/{version.major}.{version.minor}".encode()
                if version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        """Close the session this transport opened (idempotent)."""
        session, self._session = self._session, None if self._owns_session else self._session
        if self._owns_session and session is not None and not session.closed:
            await session.close()


class _CountedStream(AiohttpStream):
    """Keeps the transport's count of busy connections (for telling pool waits apart)."""

    def __init__(
        self, transport: AiohttpTransport, response: aiohttp.ClientResponse, request: httpx.Request
    ) -> None:
        super().__init__(response, request)
        self._transport: AiohttpTransport | None = transport

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport._active -= 1
        await super().aclose()
