"""The CometAPI client: one httpx.AsyncClient, auth, timeouts, retries, error mapping.

Every HTTP call of every family goes through :meth:`CometAPI._send`, the one
place that retries, by the rules of :mod:`bot.providers.cometapi.retries`. A stream is
retried only until its response headers arrive; nothing that has started yielding is ever
retried.

The API families (``client.chat``, ``.midjourney``, ``.suno``, ``.kling``) reach the client
through :class:`~bot.providers.cometapi.requester.Requester`, which :class:`CometAPI`
implements.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from pydantic import Field

from bot.providers.cometapi._base import LenientModel
from bot.providers.cometapi._mapping import check_response, parse_retry_after, transport_error
from bot.providers.cometapi.audio import Audio
from bot.providers.cometapi.chat import Chat
from bot.providers.cometapi.download import Download, Downloader, DownloadLimits
from bot.providers.cometapi.errors import APIResponseError, CometAPIError, redact
from bot.providers.cometapi.images import Images
from bot.providers.cometapi.kling import Kling
from bot.providers.cometapi.midjourney import Midjourney
from bot.providers.cometapi.requester import Multipart
from bot.providers.cometapi.retries import MAX_RETRIES, next_delay
from bot.providers.cometapi.suno import Suno

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "CatalogModel",
    "CometAPI",
    "Download",
    "DownloadLimits",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.cometapi.com"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_STREAM_READ_TIMEOUT = 60.0
"""Longest silence allowed between two chunks of a stream (and before its headers)."""
DEFAULT_TIMEOUT = httpx.Timeout(DEFAULT_READ_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
"""The defaults above as one httpx.Timeout, e.g. for an injected ``http_client``."""
# A chat stream holds its connection for the whole answer: httpx's default pool of 100 would
# queue every stream past the hundredth (measured: 2.5 s extra first-token delay at 200 chats).
MAX_CONNECTIONS = 1000
MAX_KEEPALIVE_CONNECTIONS = 100

# Failures that prove the request never left this process.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Sleep = Callable[[float], Awaitable[None]]


class CatalogModel(LenientModel):
    """One entry of the public catalog (``GET /api/models``)."""

    id: str
    provider: str = ""
    model_type: str = ""
    features: list[str] = Field(default_factory=list)


class CometAPI:
    """Async client for CometAPI's chat, Midjourney, Suno and Kling APIs.

    ::

        async with CometAPI(api_key=key) as client:
            reply = await client.chat.create("gpt-4o-mini", [{"role": "user", "content": "Hi"}])
            async with client.chat.stream("gpt-4o-mini", messages) as stream:
                async for delta in stream:
                    print(delta.content, end="")
            job = await client.midjourney.imagine("a paper boat")
            task = await client.midjourney.fetch(job.task_id)

    ``base_url`` is the host without ``/v1`` (a trailing ``/v1`` is stripped
    with a warning). ``http_client`` or ``transport`` may be injected (tests);
    an injected client is not closed by :meth:`aclose`. ``sleep`` replaces
    :func:`asyncio.sleep` between retries so tests can record delays instead
    of waiting.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        stream_read_timeout: float = DEFAULT_STREAM_READ_TIMEOUT,
        max_retries: int = MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        download_limits: DownloadLimits | None = None,
        trusted_download_origins: Sequence[str] = (),
    ) -> None:
        if not api_key:
            raise ValueError("api_key is empty")
        base = base_url.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with https:// (got {base!r})")
        if base.endswith("/v1"):
            log.warning("base_url %s ends in /v1; the client adds it itself, stripping it", base)
            base = base.removesuffix("/v1")
        self.base_url = base
        self.max_retries = max_retries
        self._api_key = api_key
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        self._stream_timeout = httpx.Timeout(
            connect=connect_timeout,
            read=stream_read_timeout,
            write=read_timeout,
            pool=connect_timeout,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport,
            timeout=self._timeout,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
            ),
        )
        self._sleep: Sleep = sleep or asyncio.sleep
        self._downloader = Downloader(
            origin=base,
            api_key=api_key,
            limits=download_limits,
            trusted_origins=trusted_download_origins,
        )
        self.chat = Chat(self)
        self.images = Images(self)
        self.midjourney = Midjourney(self)
        self.suno = Suno(self)
        self.kling = Kling(self)
        self.audio = Audio(self)

    def __repr__(self) -> str:
        return f"CometAPI(base_url={self.base_url!r})"

    async def __aenter__(self) -> CometAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the owned HTTP client and the downloader's connections (idempotent)."""
        await self._downloader.aclose()
        if self._owns_http:
            await self._http.aclose()

    async def list_models(self) -> list[str]:
        """Ids of the models this key may call (``GET /v1/models``)."""
        body = await self.request("GET", "/v1/models")
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise APIResponseError("GET /v1/models: the answer has no 'data' list")
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    async def list_catalog(self) -> list[CatalogModel]:
        """The public model catalog (``GET /api/models``, no key sent)."""
        body = await self.request("GET", "/api/models", auth=False)
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise APIResponseError("GET /api/models: the answer has no 'data' list")
        return [
            CatalogModel.model_validate(item)
            for item in items
            if isinstance(item, dict) and item.get("id")
        ]

    async def download(
        self, url: str, *, max_bytes: int | None = None, auth: bool = True
    ) -> Download:
        """Fetch a result asset (an ``imageUrl``, ``audio_url``, video url) by the rules of
        :mod:`bot.providers.cometapi.download`: the key goes only to the exact ``base_url``
        origin; private addresses, oversize, slow or hostile answers are refused.

        ``max_bytes`` lowers the size cap of ``download_limits`` for this call; ``auth=False``
        never sends the key (URLs a model or a person named). Raises
        :class:`DownloadRefusedError`, :class:`DownloadTooLargeError`,
        :class:`DownloadTooSlowError`, an :class:`APIStatusError` or
        :class:`APIConnectionError`.
        """
        return await self._downloader.get(url, max_bytes=max_bytes, auth=auth)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        auth: bool = True,
        paid: bool = False,
    ) -> Any:
        """Send one call (with retries) and return its decoded JSON body.

        A low-level escape hatch for endpoints without a wrapper; ``paid=True``
        applies the submit rules (no resubmission after an unclear outcome). Multipart
        bodies (image edits, audio to transcribe) go through :meth:`post`.
        """
        response = await self._send(method, path, json=json, auth=auth, paid=paid)
        return self._decoded(response, method, path)

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        form: Multipart | None = None,
        paid: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        """:meth:`request` for a POST with a JSON or multipart body (the images and audio
        APIs); ``read_timeout``: seconds to wait for the answer instead of the client's."""
        response = await self._send(
            "POST", path, json=json, paid=paid, form=form, read_timeout=read_timeout
        )
        return self._decoded(response, "POST", path)

    def _decoded(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            excerpt = redact(response.text[:200], self._api_key)
            raise APIResponseError(f"{method} {path}: the answer is not JSON: {excerpt!r}") from exc

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Open a streaming call; returns a 2xx response with its body unread.

        The caller owns the response and must ``aclose()`` it. ``extensions`` go to the
        transport with the request (httpx request extensions).
        """
        return await self._send(method, path, json=json, stream=True, extensions=extensions)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        auth: bool = True,
        paid: bool = False,
        stream: bool = False,
        extensions: Mapping[str, Any] | None = None,
        form: Multipart | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        if not path.startswith("/"):
            # Only paths: an absolute URL here would carry the key to another host.
            raise ValueError(f"API paths start with '/': {path!r}")
        url = self.base_url + path
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._api_key}"
        timeout = self._stream_timeout if stream else self._timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(
                connect=timeout.connect, read=read_timeout, write=read_timeout, pool=timeout.pool
            )
        attempt = 0
        while True:
            request = self._http.build_request(
                method,
                url,
                json=json,
                data=form.fields if form else None,
                files=form.files if form else None,
                headers=headers,
                timeout=timeout,
                extensions=dict(extensions) if extensions else None,
            )
            try:
                # API calls never follow redirects (a redirect means a wrong base URL).
                response = await self._http.send(request, stream=stream, follow_redirects=False)
            except httpx.TransportError as exc:
                error: CometAPIError = transport_error(exc, method, path, self._api_key)
                error.__cause__ = exc
                reached = not isinstance(exc, _NOT_SENT)
                delay = next_delay(
                    error,
                    attempt,
                    method,
                    path,
                    max_retries=self.max_retries,
                    paid=paid,
                    reached=reached,
                )
                if delay is None:
                    raise error from exc
            else:
                try:
                    checked = await check_response(
                        response,
                        method=method,
                        path=path,
                        base_url=self.base_url,
                        secret=self._api_key,
                    )
                except BaseException:
                    await response.aclose()
                    raise
                if checked is None:
                    return response
                delay = next_delay(
                    checked,
                    attempt,
                    method,
                    path,
                    max_retries=self.max_retries,
                    paid=paid,
                    reached=True,
                )
                if delay is None:
                    raise checked
            await self._sleep(delay)
            attempt += 1
