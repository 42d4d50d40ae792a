"""Chat against the fake CometAPI over TCP: streaming, early exits, in-band errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.cometapi import (
    APITimeoutError,
    ChatDelta,
    CometAPI,
    StreamError,
    StreamTruncatedError,
    user_message,
)
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep, tiny_png

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def client(fake: FakeCometAPI, sleep: RecordingSleep) -> AsyncIterator[CometAPI]:
    async with CometAPI(api_key=fake.api_key, base_url=fake.base_url, sleep=sleep) as api:
        yield api


async def collect(client: CometAPI) -> list[ChatDelta]:
    async with client.chat.stream(MODEL, HELLO) as stream:
        return [delta async for delta in stream]


async def test_stream_read_in_full(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["Hel", "lo", ", wor", "ld ✓"], usage=(9, 4))
    async with client.chat.stream(MODEL, HELLO, temperature=0.2) as stream:
        deltas = [delta async for delta in stream]
    assert "".join(d.content for d in deltas) == "Hello, world ✓"
    assert stream.text == "Hello, world ✓"
    assert deltas[0].role == "assistant"
    assert deltas[-1].usage is not None and deltas[-1].content == ""  # the choices: [] chunk
    assert stream.usage is not None
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (9, 4)
    assert stream.usage.total_tokens == 13
    assert stream.finish_reason == "stop"
    [sent] = fake.requests_to("/v1/chat/completions")
    assert sent.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["temperature"] == 0.2


async def test_stream_with_crlf_framing(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.sse_newline = "\r\n"
    fake.script_chat(tokens=["a", "b", "c"])
    assert "".join(d.content for d in await collect(client)) == "abc"


async def test_reasoning_content_arrives_separately(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["42"], reasoning=["Let me ", "think."])
    deltas = await collect(client)
    assert "".join(d.reasoning_content for d in deltas) == "Let me think."
    assert "".join(d.content for d in deltas) == "42"
    usage = next(d.usage for d in deltas if d.usage)
    assert usage.reasoning_tokens == 2


async def test_default_answer_echoes_the_last_user_message(client: CometAPI) -> None:
    assert "".join(d.content for d in await collect(client)) == "Echo: hello there"


async def test_break_inside_async_with_closes_the_connection(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    async with client.chat.stream(MODEL, HELLO) as stream:
        async for delta in stream:
            if delta.content:
                break
    assert await fake.wait_for_disconnects(1) == 1


async def test_aclose_without_async_with_closes_the_connection(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    stream = client.chat.stream(MODEL, HELLO)
    async for delta in stream:
        if delta.content:
            break
    await stream.aclose()
    assert await fake.wait_for_disconnects(1) == 1
    assert [d async for d in stream] == []  # closed streams stay closed


async def test_anext_by_hand_and_async_for_share_one_stream(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=["a", "b", "c"], usage=(5, 3))
    async with client.chat.stream(MODEL, HELLO) as stream:
        first = await anext(stream)
        rest = [delta async for delta in stream]  # carries on where anext() stopped
    contents = [d.content for d in (first, *rest)]
    assert "".join(contents) == "abc" == stream.text
    assert stream.usage is not None and stream.usage.completion_tokens == 3
    assert stream.finish_reason == "stop"


async def test_read_interval_is_asked_for_only_once_text_has_begun(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=["\n", "Hel", "lo"])
    stream = client.chat.stream(MODEL, HELLO, read_interval=0.25)
    waits = {"": stream._gather_for()}  # the transport asks this after every chunk
    async with stream:
        async for delta in stream:
            waits[delta.content] = stream._gather_for()
            if delta.content == "Hel":
                break
    # Nothing shown yet (a role chunk, a blank line): the first words are never held back.
    assert waits[""] == waits["\n"] == 0.0
    assert waits["Hel"] == 0.25


async def test_a_stream_closed_before_reading_sends_nothing(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    stream = client.chat.stream(MODEL, HELLO)
    await stream.aclose()
    assert [d async for d in stream] == []
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert fake.requests_to("/v1/chat/completions") == []


async def test_cancelled_consumer_closes_the_connection(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    first = asyncio.Event()

    async def consume() -> None:
        async with client.chat.stream(MODEL, HELLO) as stream:
            async for delta in stream:
                if delta.content:
                    first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake.wait_for_disconnects(1) == 1


async def test_error_object_mid_stream(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["par", "tial", "never"], error_mid=2, message="upstream boom")
    seen: list[str] = []
    with pytest.raises(StreamError) as caught:
        async with client.chat.stream(MODEL, HELLO) as stream:
            async for delta in stream:
                seen.append(delta.content)
    assert "".join(seen) == "partial"
    assert "upstream boom" in str(caught.value)
    assert caught.value.request_id is not None
    assert not isinstance(caught.value, StreamTruncatedError)


async def test_stream_ending_without_done_is_truncated(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.script_chat(tokens=["a", "b"], omit_done=True)
    with pytest.raises(StreamTruncatedError):
        await collect(client)


async def test_connection_dropped_mid_stream_is_truncated_and_not_retried(
    client: CometAPI, fake: FakeCometAPI
) -> None:
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
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, stream_read_timeout=0.2
    ) as impatient:
        with pytest.raises(APITimeoutError):
            await collect(impatient)
    assert len(fake.requests_to("/v1/chat")) == 1  # never retried once streaming
    assert await fake.wait_for_disconnects(1) == 1


async def test_stream_retries_a_429_before_the_first_byte(
    client: CometAPI, fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(1, 429, path_prefix="/v1/chat", retry_after=2)
    fake.script_chat(tokens=["ok"])
    assert "".join(d.content for d in await collect(client)) == "ok"
    assert sleep.calls == [2.0]
    assert len(fake.requests_to("/v1/chat")) == 2


async def test_create_returns_a_typed_completion(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["Fo", "ur"], usage=(29, 2), model="gpt-4o-mini-2024-07-18")
    reply = await client.chat.create(MODEL, HELLO, max_tokens=5, stream=True)
    assert reply.text == "Four"
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.id.startswith("chatcmpl-")
    assert reply.usage is not None and reply.usage.total_tokens == 31
    [sent] = fake.requests_to("/v1/chat")
    assert "stream" not in sent.json and sent.json["max_tokens"] == 5


async def test_user_message_with_image_bytes(client: CometAPI, fake: FakeCometAPI) -> None:
    png = tiny_png()
    message = user_message("what is this?", [png], detail="low")
    reply = await client.chat.create(MODEL, [message])
    assert reply.text == "Echo: what is this? [+1 image]"
    [sent] = fake.requests_to("/v1/chat")
    text_part, image = sent.json["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "what is this?"}
    assert image["image_url"]["detail"] == "low"
    prefix, encoded = image["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == png
    assert user_message("plain") == {"role": "user", "content": "plain"}


async def test_list_models_and_public_catalog(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.models.append("kimi-k2")
    assert "kimi-k2" in await client.list_models()
    catalog = await client.list_catalog()
    assert "kimi-k2" in [m.id for m in catalog]
    [public] = fake.requests_to("/api/models")
    assert "Authorization" not in public.headers


async def test_gateway_answering_json_to_a_stream_request() -> None:
    completion = {
        "id": "x",
        "model": "m",
        "choices": [{"message": {"content": "whole"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, json=completion)

    async with CometAPI(api_key="k", transport=httpx.MockTransport(handler)) as api:
        [delta] = await collect(api)
    assert delta.content == "whole" and delta.finish_reason == "stop"
    assert delta.usage is not None and delta.usage.total_tokens == 2


async def test_surrogate_pair_split_across_chunks_is_joined(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    # The upstream escapes 😀 as two JSON surrogates and cuts the stream between them.
    fake.script_chat(tokens=["Smile ", "\ud83d", "\ude00", " done."], ascii_json=True)
    async with client.chat.stream(MODEL, HELLO) as stream:
        text = "".join([d.content async for d in stream])
    assert text == stream.text == "Smile 😀 done."
    text.encode("utf-8")  # encodable everywhere


async def test_lone_surrogates_become_replacement_characters(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    # A high half whose pair never comes (mid-stream and at the very end), a stray low half,
    # and a reasoning stream split the same way.
    fake.script_chat(
        tokens=["a\ud83d", " b \ude00", "c\ud83d"],
        reasoning=["think \ud83e", "\udd14"],
        ascii_json=True,
    )
    async with client.chat.stream(MODEL, HELLO) as stream:
        deltas = [d async for d in stream]
    assert stream.text == "a\ufffd b \ufffdc\ufffd"
    assert "".join(d.reasoning_content for d in deltas) == "think 🤔"
    assert stream.finish_reason == "stop"


async def test_create_replaces_a_lone_surrogate(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_chat(tokens=["x", "\ud83d"], ascii_json=True)
    completion = await client.chat.create(MODEL, HELLO)
    assert completion.text == "x\ufffd"
