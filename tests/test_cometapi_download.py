"""The safe downloader (``CometAPI.download``), against real aiohttp servers on 127.0.0.1.

``origin`` plays the CometAPI host (``base_url``), ``other`` another server on the same
machine: a place a hostile redirect would like to reach (a metadata service, an admin port).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.providers.cometapi import (
    CometAPI,
    DownloadLimits,
    DownloadRefusedError,
    DownloadTooLargeError,
    DownloadTooSlowError,
    NotFoundError,
)
from bot.providers.cometapi.addresses import PublicResolver, forbidden_reason

KEY = "sk-download-test-key"
BODY = b"\x89PNG" + bytes(96)


@dataclass
class Server:
    """One aiohttp server; ``seen`` holds (path, Authorization or None) per request."""

    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def auth_for(self, path: str) -> list[str | None]:
        return [auth for p, auth in self.seen if p == path]


async def _serve(server: Server) -> web.AppRunner:
    async def record(request: web.Request) -> web.StreamResponse:
        server.seen.append((request.path, request.headers.get("Authorization")))
        return await ROUTES[request.match_info["name"]](request)

    app = web.Application()
    app.router.add_get("/{name}", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    server.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    return runner


async def _file(request: web.Request) -> web.StreamResponse:
    return web.Response(body=BODY, content_type="image/png")


async def _redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(location=request.query["to"])


async def _loop(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(location="/loop")


async def _missing(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, text="not found")


async def _chunked(request: web.Request) -> web.StreamResponse:
    """1,000 bytes with no Content-Length: only counting while reading can stop it."""
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(10):
        await response.write(bytes(100))
    await response.write_eof()
    return response


async def _trickle(request: web.Request) -> web.StreamResponse:
    """A declared 100-byte body sent one byte every 50 ms (a few seconds in all)."""
    response = web.StreamResponse(headers={"Content-Length": "100"})
    await response.prepare(request)
    for _ in range(100):
        await response.write(b"x")
        await asyncio.sleep(0.05)
    return response


async def _steady(request: web.Request) -> web.StreamResponse:
    """Fast enough for any minimum rate, but endless."""
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(1000):
        await response.write(bytes(1000))
        await asyncio.sleep(0.02)
    return response


async def _silent(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(10)
    return web.Response(body=b"late")


ROUTES: dict[str, Any] = {
    "file": _file,
    "redirect": _redirect,
    "loop": _loop,
    "missing": _missing,
    "chunked": _chunked,
    "trickle": _trickle,
    "steady": _steady,
    "silent": _silent,
}


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Server, Server]]:
    origin, other = Server(), Server()
    runners = [await _serve(origin), await _serve(other)]
    try:
        yield origin, other
    finally:
        for runner in runners:
            await runner.cleanup()


def _client(base_url: str, **kwargs: Any) -> CometAPI:
    return CometAPI(api_key=KEY, base_url=base_url, **kwargs)


def _port(server: Server) -> str:
    return server.url.rsplit(":", 1)[1]


async def test_the_origin_itself_is_fetched_with_the_key(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    async with _client(origin.url) as client:
        got = await client.download(f"{origin.url}/file")
        assert (got.data, got.content_type) == (BODY, "image/png")
        await client.download(f"{origin.url}/file", auth=False)  # a URL someone else named
    assert origin.auth_for("/file") == [f"Bearer {KEY}", None]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://{host}/file",
        "file:///etc/passwd",
        "gopher://{host}/file",
        "http://user:secret@{host}/file",
    ],
)
async def test_only_plain_http_and_https_urls_are_fetched(
    servers: tuple[Server, Server], url: str
) -> None:
    origin, _ = servers
    async with _client(origin.url) as client:
        with pytest.raises(DownloadRefusedError):
            await client.download(url.format(host=origin.url.removeprefix("http://")))
    assert origin.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/file",  # another port of the API's own host
        "http://[::1]:{port}/file",
        "http://localhost:{port}/file",  # a name that resolves to loopback
        "http://0.0.0.0:{port}/file",
        "http://[::ffff:127.0.0.1]:{port}/file",
        "http://2130706433:{port}/file",  # 127.0.0.1 spelled as one number
        "http://127.1:{port}/file",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://10.0.0.1/file",
        "http://192.168.1.1/file",
        "http://224.0.0.1/file",
    ],
)
async def test_loopback_private_and_metadata_addresses_are_refused(
    servers: tuple[Server, Server], url: str
) -> None:
    origin, other = servers
    async with _client(origin.url) as client:
        with pytest.raises(DownloadRefusedError):
            await client.download(url.format(port=_port(other)))
    assert other.seen == []


async def test_a_redirect_to_a_private_address_is_refused(servers: tuple[Server, Server]) -> None:
    origin, other = servers
    async with _client(origin.url) as client:
        for target in (f"{other.url}/file", f"http://localhost:{_port(other)}/file"):
            with pytest.raises(DownloadRefusedError):
                await client.download(f"{origin.url}/redirect?to={target}")
        got = await client.download(f"{origin.url}/redirect?to=/redirect?to=/file")  # relative
        assert got.data == BODY
        with pytest.raises(DownloadRefusedError, match="more than 5 redirects"):
            await client.download(f"{origin.url}/loop")
    assert other.seen == []
    assert len(origin.auth_for("/loop")) == 6


async def test_the_key_goes_only_to_the_exact_origin(servers: tuple[Server, Server]) -> None:
    origin, other = servers
    # Both may be fetched (trusted, as a private mirror could be); only base_url gets the key.
    trusted = [other.url, f"http://localhost:{_port(origin)}"]
    async with _client(origin.url, trusted_download_origins=trusted) as client:
        await client.download(f"{other.url}/file")  # another port of the same host
        await client.download(f"{origin.url}/redirect?to={other.url}/file")  # off the origin
        back = f"{other.url}/redirect?to={origin.url}/file"
        await client.download(f"{origin.url}/redirect?to={back}")  # and back: still no key
        await client.download(f"http://localhost:{_port(origin)}/file")  # same server, other name
    assert other.auth_for("/file") == [None, None]
    assert other.auth_for("/redirect") == [None]
    assert origin.auth_for("/redirect") == [f"Bearer {KEY}", f"Bearer {KEY}"]
    assert origin.auth_for("/file") == [None, None]


async def test_no_key_over_http_to_an_https_origin(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    https_origin = origin.url.replace("http://", "https://")
    async with _client(https_origin, trusted_download_origins=[origin.url]) as client:
        await client.download(f"{origin.url}/file")
    assert origin.auth_for("/file") == [None]


async def test_the_size_cap_holds_by_content_length_and_while_reading(
    servers: tuple[Server, Server],
) -> None:
    origin, _ = servers
    async with _client(origin.url) as client:
        with pytest.raises(DownloadTooLargeError, match="is 100 bytes"):
            await client.download(f"{origin.url}/file", max_bytes=99)
        assert len((await client.download(f"{origin.url}/chunked", max_bytes=1000)).data) == 1000
        with pytest.raises(DownloadTooLargeError, match="over the cap"):
            await client.download(f"{origin.url}/chunked", max_bytes=999)
    limits = DownloadLimits(max_bytes=50)  # the client's own cap wins over a larger request
    async with _client(origin.url, download_limits=limits) as client:
        with pytest.raises(DownloadTooLargeError):
            await client.download(f"{origin.url}/file", max_bytes=10_000)


async def test_a_trickling_server_is_cut_off_by_the_minimum_rate(
    servers: tuple[Server, Server],
) -> None:
    origin, _ = servers
    limits = DownloadLimits(min_rate=200, rate_window=0.4)  # 80 bytes per 0.4 s; it sends 8
    async with _client(origin.url, download_limits=limits) as client:
        started = time.monotonic()
        with pytest.raises(DownloadTooSlowError, match="slower than"):
            await client.download(f"{origin.url}/trickle")
        assert time.monotonic() - started < 1.5  # the whole body would take 5 s


async def test_the_total_deadline_and_the_headers_timeout(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    limits = DownloadLimits(deadline=0.6, min_rate=1000, rate_window=0.2, headers_timeout=0.3)
    async with _client(origin.url, download_limits=limits) as client:
        started = time.monotonic()
        with pytest.raises(DownloadTooSlowError, match=r"took over 0\.6 s"):
            await client.download(f"{origin.url}/steady")  # fast, but never ends
        with pytest.raises(DownloadTooSlowError, match=r"no answer within 0\.3 s"):
            await client.download(f"{origin.url}/silent")
        assert time.monotonic() - started < 2.5


async def test_an_error_status_is_a_status_error(servers: tuple[Server, Server]) -> None:
    origin, _ = servers
    async with _client(origin.url) as client:
        with pytest.raises(NotFoundError) as info:
            await client.download(f"{origin.url}/missing")
    assert info.value.status_code == 404 and KEY not in str(info.value)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("fe80::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("::", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 around 169.254.169.254
        ("240.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert (forbidden_reason(ipaddress.ip_address(address)) is None) is public


class _Fixed(AbstractResolver):
    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0)
            for h in self.hosts
        ]

    async def close(self) -> None:
        return None


async def test_a_name_with_any_private_address_is_refused() -> None:
    assert len(await PublicResolver(_Fixed("93.184.216.34")).resolve("cdn.test", 443)) == 1
    with pytest.raises(DownloadRefusedError, match="private"):
        await PublicResolver(_Fixed("93.184.216.34", "10.0.0.7")).resolve("cdn.test", 443)
    with pytest.raises(DownloadRefusedError, match="no address"):
        await PublicResolver(_Fixed()).resolve("cdn.test", 443)


async def test_api_calls_take_paths_only_so_the_key_never_leaves_base_url(
    servers: tuple[Server, Server],
) -> None:
    origin, other = servers
    async with _client(origin.url) as client:
        with pytest.raises(ValueError, match="paths"):
            await client.request("GET", f"{other.url}/file")
    assert other.seen == []
