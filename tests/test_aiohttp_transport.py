"""The aiohttp-backed httpx transport: the CometAPI client's behaviours over it (fake CometAPI
over TCP), plus request bodies, headers and lifecycle against a small echo server."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from bot.providers.cometapi import (
    APIConnectionError,
    APITimeoutError,
    ChatDelta,
    CometAPI,
    RateLimitError,
    StreamTruncatedError,
    WrongBaseURLError,
)
from bot.providers.cometapi.aiohttp_transport import AiohttpTransport
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello there"}]


def comet(base_url: str, api_key: str, sleep: RecordingSleep | None = None, **kw: Any) -> CometAPI:
    transport = AiohttpTransport()
    return CometAPI(api_key=api_key, base_url=base_url, sleep=sleep, transport=transport, **kw)


@pytest.fixture
async def client(fake: FakeCometAPI, sleep: RecordingSleep) -> AsyncIterator[CometAPI]:
    async with comet(fake.base_url, fake.api_key, sleep) as api:
        yield api


async def collect(client: CometAPI) -> list[ChatDelta]:
    async with client.chat.stream(MODEL, HELLO) as stream:
        return [delta async for delta in stream]


async def test_stream_read_in_full(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["Hel", "lo", ", wor", "ld ✓"], usage=(9, 4))
    async with client.chat.stream(MODEL, HELLO, temperature=0.2) as stream:
        deltas = [delta async for delta in stream]
    assert "".join(d.content for d in deltas) == "Hello, world ✓"
    assert stream.usage is not None and stream.usage.total_tokens == 13
    [sent] = fake.requests_to("/v1/chat/completions")
    assert sent.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["Accept"] == "text/event-stream"
    assert sent.json["stream"] is True and sent.json["temperature"] == 0.2
    # The connection went back to the pool: the next call reuses it, no disconnect seen.
    assert "".join(d.content for d in await collect(client)) == "Echo: hello there"
    assert fake.disconnects == 0


async def test_many_streams_at_once(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["a", "b"], delay=0.01)
    texts = await asyncio.gather(*(collect(client) for _ in range(30)))
    assert all("".join(d.content for d in t) for t in texts)


async def test_break_half_way_drops_the_connection(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    async with client.chat.stream(MODEL, HELLO) as stream:
        async for delta in stream:
            if delta.content:
                break
    assert await fake.wait_for_disconnects(1) == 1


# 30 s: once text has begun the transport leaves the socket unread, so the cancellation
# lands while the stream gathers.
@pytest.mark.parametrize("read_interval", [0.0, 30.0], ids=["reading", "gathering"])
async def test_cancelled_consumer_drops_the_connection(
    client: CometAPI, fake: FakeCometAPI, read_interval: float
) -> None:
    fake.script_chat(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    first = asyncio.Event()

    async def consume() -> None:
        async with client.chat.stream(MODEL, HELLO, read_interval=read_interval) as stream:
            async for delta in stream:
                if delta.content:
                    first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake.wait_for_disconnects(1) == 1
    fake.script_chat(tokens=["again"])  # the client still works afterwards
    assert "".join(d.content for d in await collect(client)) == "again"


async def test_connection_cut_mid_stream_is_truncated(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["a", "b", "c"], cut_after=2)
    seen: list[str] = []
    with pytest.raises(StreamTruncatedError):
        async with client.chat.stream(MODEL, HELLO) as stream:
            async for delta in stream:
                seen.append(delta.content)
    assert "".join(seen) == "ab"
    assert len(fake.requests_to("/v1/chat")) == 1


async def test_read_timeout_mid_stream(fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["a", "b"], hang_after=1)
    async with comet(fake.base_url, fake.api_key, stream_read_timeout=0.2) as impatient:
        with pytest.raises(APITimeoutError):
            await collect(impatient)
    assert len(fake.requests_to("/v1/chat")) == 1
    assert await fake.wait_for_disconnects(1) == 1


async def test_read_timeout_on_a_hang_is_retried_then_raised(
    fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(5, hang=True, path_prefix="/v1/models")
    async with CometAPI(
        api_key=fake.api_key,
        base_url=fake.base_url,
        read_timeout=0.2,
        max_retries=1,
        sleep=sleep,
        transport=AiohttpTransport(),
    ) as api:
        with pytest.raises(APITimeoutError):
            await api.list_models()
    assert len(fake.requests_to("/v1/models")) == 2


async def test_429_retry_after_is_visible(
    client: CometAPI, fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(2, 429, path_prefix="/v1/models", retry_after=1.5)
    assert MODEL in await client.list_models()
    assert sleep.calls == [1.5, 1.5]
    fake.fail_next(5, 429, path_prefix="/v1/models", retry_after=120)
    with pytest.raises(RateLimitError) as caught:
        await client.list_models()
    assert caught.value.retry_after == 120


async def test_html_answer_passes_through(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    async with comet(fake.website_url, fake.api_key, sleep) as api:
        with pytest.raises(WrongBaseURLError):
            await api.chat.create(MODEL, HELLO)
        with pytest.raises(WrongBaseURLError):
            await collect(api)


async def test_redirect_is_not_followed(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    async with comet(fake.redirect_url, fake.api_key, sleep) as api:
        with pytest.raises(WrongBaseURLError) as caught:
            await api.list_models()
    assert caught.value.status_code == 301
    assert [r.path for r in fake.requests] == ["/redirect/v1/models"]


async def test_connection_refused_is_a_connect_error(sleep: RecordingSleep) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with comet(f"http://127.0.0.1:{port}", "sk-x", sleep, max_retries=2) as api:
        with pytest.raises(APIConnectionError) as caught:
            await api.list_models()
    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleep.calls) == 2


# -- plain httpx over the transport ----------------------------------------------------------


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/gzip":
            payload = gzip.compress(b"zipped " * 10)
            return web.Response(body=payload, headers={"Content-Encoding": "gzip"})
        if request.path == "/drip":  # 30 chunks, 5 ms apart
            response = web.StreamResponse()
            await response.prepare(request)
            for i in range(30):
                await response.write(f"{i:02d};".encode())
                await asyncio.sleep(0.005)
            await response.write_eof()
            return response
        if request.path == "/v1/chat/completions":  # a gateway that compresses the stream
            events = [
                {"choices": [{"index": 0, "delta": {"content": piece}}]}
                for piece in ("Zipped ", "stream ✓")
            ]
            sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return web.Response(
                body=gzip.compress(sse.encode()),
                headers={"Content-Encoding": "gzip", "Content-Type": "text/event-stream"},
            )
        answer = {
            "method": request.method,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": body.decode("latin-1"),
        }
        return web.json_response(answer, headers={"X-Multi": "1", "Set-Cookie": "a=b"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_bodies_and_headers_pass_through(echo: str) -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as http:
        r = await http.post(echo + "/j", json={"x": "ü"}, headers={"X-Trace": "t1"})
        seen = r.json()
        headers = {k.lower(): v for k, v in seen["headers"]}
        assert json.loads(seen["body"].encode("latin-1")) == {"x": "ü"}
        assert headers["content-type"] == "application/json"
        assert headers["x-trace"] == "t1"
        assert headers["user-agent"].startswith("python-httpx/")
        assert r.headers["x-multi"] == "1"
        assert r.http_version == "HTTP/1.1" and r.reason_phrase == "OK"

        r = await http.post(echo + "/m", data={"chat_id": "5"}, files={"f": ("a.bin", b"\0\1")})
        seen = r.json()
        headers = {k.lower(): v for k, v in seen["headers"]}
        assert headers["content-type"].startswith("multipart/form-data; boundary=")
        assert 'name="chat_id"' in seen["body"] and "\0\1" in seen["body"]

        r = await http.get(echo + "/gzip")
        assert r.text == "zipped " * 10  # httpx decodes, aiohttp does not


async def test_a_compressed_chat_stream_is_decoded(echo: str, sleep: RecordingSleep) -> None:
    async with comet(echo, "sk-x", sleep) as api, api.chat.stream(MODEL, HELLO) as stream:
        text = "".join([delta.content async for delta in stream])
    assert text == "Zipped stream ✓"


async def test_read_interval_gathers_a_dripping_body_into_few_reads(echo: str) -> None:
    asked: list[int] = []

    def interval() -> float:
        asked.append(1)
        return 0.05

    expected = "".join(f"{i:02d};" for i in range(30))
    async with httpx.AsyncClient(transport=AiohttpTransport(limit=1)) as http:
        request = http.build_request("GET", echo + "/drip", extensions={"read_interval": interval})
        response = await http.send(request, stream=True)
        chunks = [chunk async for chunk in response.aiter_raw()]
        await response.aclose()
        assert b"".join(chunks).decode() == expected
        # 150 ms of drip read every 50 ms: a handful of reads, not thirty (an upper bound
        # only, so a slow machine that reads even less often still passes).
        assert len(chunks) <= 8
        assert len(asked) == len(chunks)  # asked after every chunk handed out
        # The one pooled connection was not left paused: the next call on it completes.
        plain = await http.get(echo + "/drip")
        assert plain.text == expected


async def test_a_chat_stream_read_at_intervals_is_still_exact(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    tokens = [f"t{i} " for i in range(40)]
    fake.script_chat(tokens=tokens, usage=(7, 40), delay=0.002)
    async with client.chat.stream(MODEL, HELLO, read_interval=0.02) as stream:
        deltas = [delta async for delta in stream]
    assert "".join(d.content for d in deltas) == "".join(tokens)
    assert stream.usage is not None and stream.usage.completion_tokens == 40
    assert stream.finish_reason == "stop"


async def test_session_reopens_after_aclose(echo: str) -> None:
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        assert (await http.get(echo)).status_code == 200
    async with httpx.AsyncClient(transport=transport) as http:  # as PTB does on re-initialize
        assert (await http.get(echo)).status_code == 200
    await transport.aclose()


def test_error_messages_never_carry_the_url_path() -> None:
    """A Telegram URL carries the bot token in its path: only scheme and host may show."""
    from bot.providers.cometapi.aiohttp_transport import _map_error

    request = httpx.Request("POST", "http://127.0.0.1:9/bot123456:SECRET-token/sendMessage")
    failure = aiohttp.ClientPayloadError(
        "cut at http://127.0.0.1:9/bot123456:SECRET-token/sendMessage"
    )
    error = _map_error(failure, request, pool_full=False)
    assert "SECRET-token" not in str(error)
    assert "http://127.0.0.1:9/" in str(error)
