"""The one downloader for every URL the client fetches (task results, images in answers).

:class:`Downloader` follows the rules of the design (§10, "Safe downloads"):

* ``http`` and ``https`` only, no credentials in the URL;
* every hop, the first and each redirect (followed here, at most ``max_redirects``), is
  checked before it is fetched: the host must resolve to public addresses only
  (:mod:`bot.providers.cometapi.addresses`), except the configured CometAPI origin (exact
  scheme, host and port of ``base_url``) and the origins listed as trusted;
* the API key goes only to the CometAPI origin, and only while every hop so far was that
  origin: never to another scheme or port of its host, never after a redirect elsewhere;
* the size cap is checked against ``Content-Length`` and again while reading;
* a total deadline covers all hops, and the body must keep a minimum rate: fewer than
  ``min_rate * rate_window`` bytes in any ``rate_window`` seconds ends the download, so a
  server trickling one byte a second is cut off within one window.

Failures are :class:`~bot.providers.cometapi.errors.CometAPIError`\\ s:
:class:`DownloadRefusedError` (the rules), :class:`DownloadTooLargeError`,
:class:`DownloadTooSlowError`, an :class:`APIStatusError` subclass for a non-2xx answer
(:class:`NotFoundError` for 404) and :class:`APIConnectionError` for the network. No retries
here: the caller decides when to try again. Messages name the host, never the URL (signed
URLs carry tokens) and never the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from bot.providers.cometapi.addresses import (
    Origin,
    PublicResolver,
    forbidden_reason,
    literal_address,
)
from bot.providers.cometapi.errors import (
    APIConnectionError,
    APIResponseError,
    APITimeoutError,
    DownloadRefusedError,
    DownloadTooLargeError,
    DownloadTooSlowError,
    status_error,
)

__all__ = ["DEFAULT_MAX_DOWNLOAD", "Download", "DownloadLimits", "Downloader"]

DEFAULT_MAX_DOWNLOAD: Final = 50 * 1024 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class Download:
    """Bytes fetched by :meth:`Downloader.get`."""

    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    """How much and how long one download may take (every hop together)."""

    max_bytes: int = DEFAULT_MAX_DOWNLOAD
    deadline: float = 300.0
    """Seconds for the whole download, redirects included."""
    min_rate: float = 16 * 1024.0
    """Bytes per second the body must keep up, measured over each ``rate_window``; 0: off."""
    rate_window: float = 5.0
    headers_timeout: float = 30.0
    """Seconds from sending a hop's request to its response headers."""
    connect_timeout: float = 10.0
    max_redirects: int = 5


class Downloader:
    """Fetches URLs by the rules in the module docstring; :meth:`aclose` when done.

    ``origin`` is the CometAPI ``base_url``: requests to exactly that origin may reach a
    private address (tests and self-hosted gateways run there) and carry ``api_key``.
    ``trusted_origins`` (``"https://mirror.internal:8443"``) may also be on private
    addresses but never receive the key. ``resolver`` replaces the system resolver for the
    public connector (tests).
    """

    def __init__(
        self,
        *,
        origin: str,
        api_key: str,
        limits: DownloadLimits | None = None,
        trusted_origins: Sequence[str] = (),
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.limits = limits or DownloadLimits()
        self._origin = Origin.of(URL(origin))
        self._trusted = frozenset(Origin.of(URL(o)) for o in trusted_origins) | {self._origin}
        self._api_key = api_key
        self._resolver = resolver
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    async def aclose(self) -> None:
        """Close the connections (idempotent); a later :meth:`get` opens new ones."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def get(self, url: str, *, max_bytes: int | None = None, auth: bool = True) -> Download:
        """The body of ``url`` (at most ``max_bytes``, and never more than the limits allow).

        ``auth=False`` never sends the key, not even to the CometAPI origin: for URLs that a
        model or a person named.
        """
        cap = self.limits.max_bytes if max_bytes is None else min(max_bytes, self.limits.max_bytes)
        try:
            target = URL(url)
        except (ValueError, TypeError) as exc:
            raise DownloadRefusedError("not a valid URL") from exc
        deadline = self.limits.deadline
        try:
            async with asyncio.timeout(deadline):
                return await self._fetch(target, cap, auth)
        except TimeoutError as exc:
            host = target.raw_host or "?"
            raise DownloadTooSlowError(f"download from {host} took over {deadline:g} s") from exc

    async def _fetch(self, url: URL, cap: int, auth: bool) -> Download:
        keyed = auth
        for _hop in range(self.limits.max_redirects + 1):
            session = self._session_for(url)
            keyed = keyed and Origin.of(url) == self._origin  # once off the origin, never again
            headers = {"Accept-Encoding": "identity"}
            if keyed:
                headers["Authorization"] = f"Bearer {self._api_key}"
            response = await self._open(session, url, headers)
            try:
                answer = await self._answer(response, url, cap)
            except BaseException:
                response.close()  # unread body: drop the connection, never reuse it
                raise
            response.release()
            if isinstance(answer, Download):
                return answer
            url = answer
        raise DownloadRefusedError(f"more than {self.limits.max_redirects} redirects")

    async def _answer(self, response: aiohttp.ClientResponse, url: URL, cap: int) -> Download | URL:
        """The body of a 2xx answer, or the next hop of a redirect."""
        if response.status in _REDIRECTS:
            return _next_hop(url, response)
        if not 200 <= response.status < 300:
            reason = response.reason or "refused"
            raise status_error(response.status, f"download from {url.raw_host}: {reason}")
        return await self._read(response, url, cap)

    def _session_for(self, url: URL) -> aiohttp.ClientSession:
        """Check a hop against the rules; the session (connector) allowed to fetch it."""
        if url.scheme.lower() not in ("http", "https"):
            raise DownloadRefusedError(f"only http and https URLs are fetched, not {url.scheme!r}")
        host = url.raw_host
        if not host:
            raise DownloadRefusedError("the URL has no host")
        if url.raw_user is not None or url.raw_password is not None:
            raise DownloadRefusedError("URLs with credentials are not fetched")
        if Origin.of(url) in self._trusted:
            return self._session(trusted=True)
        address = literal_address(host)
        if address is not None and (reason := forbidden_reason(address)) is not None:
            raise DownloadRefusedError(f"{host} is {reason}; not downloading")
        return self._session(trusted=False)  # names are checked by its PublicResolver

    def _session(self, *, trusted: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(trusted)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                resolver=None if trusted else PublicResolver(self._resolver)
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # a proxy would resolve names where we cannot check them
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.limits.connect_timeout),
            )
            self._sessions[trusted] = session
        return session

    async def _open(
        self, session: aiohttp.ClientSession, url: URL, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        host = url.raw_host
        try:
            async with asyncio.timeout(self.limits.headers_timeout):
                return await session.get(url, headers=headers, allow_redirects=False)
        except aiohttp.ServerTimeoutError as exc:  # connecting took too long
            raise APITimeoutError(f"download from {host}: {type(exc).__name__}") from exc
        except TimeoutError as exc:  # only this hop's own timeout: the deadline cancels
            seconds = self.limits.headers_timeout
            raise DownloadTooSlowError(f"{host} sent no answer within {seconds:g} s") from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"download from {host}: {type(exc).__name__}") from exc

    async def _read(self, response: aiohttp.ClientResponse, url: URL, cap: int) -> Download:
        host = url.raw_host
        length = response.content_length
        if length is not None and length > cap:
            raise DownloadTooLargeError(
                f"download from {host} is {length} bytes, over the cap of {cap}", max_bytes=cap
            )
        loop = asyncio.get_running_loop()
        window, need = self.limits.rate_window, self.limits.min_rate * self.limits.rate_window
        chunks: list[bytes] = []
        size = 0
        window_start, window_bytes = loop.time(), 0
        while True:
            chunk: bytes | None = None
            try:
                async with asyncio.timeout_at(window_start + window):
                    chunk = await response.content.readany()
            except TimeoutError:
                pass  # the window is over (the total deadline cancels instead: not caught)
            except aiohttp.ClientError as exc:
                raise APIConnectionError(f"download from {host}: {type(exc).__name__}") from exc
            if chunk == b"":
                break
            if chunk:
                size += len(chunk)
                if size > cap:
                    raise DownloadTooLargeError(
                        f"download from {host} is over the cap of {cap} bytes", max_bytes=cap
                    )
                chunks.append(chunk)
                window_bytes += len(chunk)
            now = loop.time()
            if now >= window_start + window:
                if window_bytes < need:
                    rate = f"{self.limits.min_rate / 1024:g} KiB/s"
                    raise DownloadTooSlowError(f"download from {host} is slower than {rate}")
                window_start, window_bytes = now, 0
        return Download(b"".join(chunks), response.headers.get("Content-Type", ""))


def _next_hop(url: URL, response: aiohttp.ClientResponse) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise APIResponseError(f"{url.raw_host} answered {response.status} without a Location")
    try:
        return url.join(URL(location))
    except (ValueError, TypeError) as exc:
        raise DownloadRefusedError(f"{url.raw_host} redirected to an invalid URL") from exc
