"""python-telegram-bot's HTTP layer written straight on aiohttp.

PTB's own ``HTTPXRequest`` builds an httpx request (URL parsing, header merging, cookie
extraction) for every call before anything reaches the wire; a streaming bot makes one to
three Telegram calls per answer, so that bookkeeping is a measurable share of its CPU (see
docs/benchmarks.md, "Streaming: Telegram"). :class:`AiohttpRequest` hands PTB's prepared
parameters to one :class:`aiohttp.ClientSession` instead, whose HTTP parser is written in C.

It keeps ``HTTPXRequest``'s contract: the same default timeouts (5 s read, write and connect,
1 s waiting for a pooled connection, 20 s to upload media), parameters sent as a form (files
as multipart), :class:`telegram.error.TimedOut` for timeouts and
:class:`telegram.error.NetworkError` for every other failure. Differences: aiohttp has no
write timeout, so an upload is bounded by the read timeout instead; environment proxies are
not used; error messages never carry the request URL (it holds the bot token).
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest"]

# A URL's path is where the token is (…/bot<token>/sendMessage): keep scheme and host only.
_URL_PATH = re.compile(r"(https?://[^/\s'\"]+)[^\s'\"]*")


# PTB marks "not given, use your default" with instances of this class (DEFAULT_NONE and kin).
_Default = type(BaseRequest.DEFAULT_NONE)


def _given(value: object, default: float | None) -> float | None:
    if isinstance(value, _Default):
        return default
    assert value is None or isinstance(value, int | float)
    return value


def _redacted(exc: BaseException) -> str:
    return _URL_PATH.sub(r"\1/…", f"aiohttp.{type(exc).__name__}: {exc}".rstrip(": "))


class AiohttpRequest(BaseRequest):
    """A :class:`telegram.request.BaseRequest` on aiohttp; ``connection_pool_size``
    connections at most. The session opens in :meth:`initialize` (inside the running loop)
    and closes in :meth:`shutdown`; PTB calls both, and may initialize again after."""

    __slots__ = (
        "_connect_timeout",
        "_limit",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_session",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        *,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._limit = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, limit_per_host=0),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(  # noqa: PLR0917  (PTB calls it positionally)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        fields = request_data.json_parameters if request_data is not None else None
        files = request_data.multipart_data if request_data is not None else None
        body: aiohttp.FormData | dict[str, str] | None = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mime_type) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime_type)
            body = form
        read = _given(read_timeout, self._read_timeout)
        if files and isinstance(write_timeout, _Default) and read is not None:
            # No write timeout in aiohttp: an upload gets the media write budget on top.
            read += self._media_write_timeout or 0.0
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's ``connect`` covers waiting for a pooled connection and opening one.
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with session.request(
                method, url, data=body, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut(_redacted(exc)) from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(_redacted(exc)) from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise NetworkError(_redacted(exc)) from exc
