"""Error mapping and retry rules against the fake CometAPI over TCP."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.providers.cometapi import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CometAPI,
    CometAPIError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    SubmitUncertainError,
    WrongBaseURLError,
)
from bot.providers.cometapi.client import parse_retry_after
from bot.providers.cometapi.errors import extract_request_id
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep

MODELS = "/v1/models"


@pytest.fixture
async def client(fake: FakeCometAPI, sleep: RecordingSleep) -> AsyncIterator[CometAPI]:
    async with CometAPI(api_key=fake.api_key, base_url=fake.base_url, sleep=sleep) as api:
        yield api


async def test_429_twice_then_success_honours_retry_after(
    client: CometAPI, fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(2, 429, path_prefix=MODELS, retry_after=1.5)
    assert "gpt-4o-mini" in await client.list_models()
    assert sleep.calls == [1.5, 1.5]
    assert len(fake.requests_to(MODELS)) == 3


async def test_429_without_retry_after_backs_off_exponentially(
    client: CometAPI, fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(3, 429, path_prefix=MODELS)
    await client.list_models()
    for attempt, delay in enumerate(sleep.calls):
        base = INITIAL_RETRY_DELAY * 2**attempt
        assert base <= delay <= base * 1.25
    assert len(sleep.calls) == 3


async def test_retry_after_beyond_the_cap_is_left_to_the_caller(
    client: CometAPI, fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(1, 429, path_prefix=MODELS, retry_after=MAX_RETRY_AFTER + 60)
    with pytest.raises(RateLimitError) as caught:
        await client.list_models()
    assert caught.value.retry_after == MAX_RETRY_AFTER + 60
    assert sleep.calls == []


async def test_retries_are_bounded(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    fake.fail_next(10, 429, path_prefix=MODELS)
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=2, sleep=sleep
    ) as api:
        with pytest.raises(RateLimitError):
            await api.list_models()
    assert len(fake.requests_to(MODELS)) == 3


async def test_401_is_not_retried(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    async with CometAPI(api_key="sk-wrong-key-42", base_url=fake.base_url, sleep=sleep) as api:
        with pytest.raises(AuthenticationError) as caught:
            await api.list_models()
    assert len(fake.requests) == 1
    assert sleep.calls == []
    error = caught.value
    assert error.status_code == 401
    assert error.request_id is not None and error.request_id in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (413, RequestTooLargeError),
        (409, APIStatusError),
    ],
)
async def test_client_errors_are_not_retried(
    client: CometAPI, fake: FakeCometAPI, status: int, cls: type[APIStatusError]
) -> None:
    fake.fail_next(1, status, path_prefix=MODELS)
    with pytest.raises(cls) as caught:
        await client.list_models()
    assert caught.value.status_code == status
    assert len(fake.requests_to(MODELS)) == 1


async def test_500_invalid_request_is_not_retried(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.fail_next(1, 500, path_prefix=MODELS, code="invalid_request", message="bad field")
    with pytest.raises(InternalServerError) as caught:
        await client.list_models()
    assert caught.value.code == "invalid_request"
    assert "bad field" in str(caught.value)
    assert len(fake.requests_to(MODELS)) == 1


@pytest.mark.parametrize("status", [500, 503, 504, 524])
async def test_retryable_server_errors(client: CometAPI, fake: FakeCometAPI, status: int) -> None:
    fake.fail_next(1, status, path_prefix=MODELS)
    assert await client.list_models()
    assert len(fake.requests_to(MODELS)) == 2


async def test_502_is_not_in_the_retry_list(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.fail_next(1, 502, path_prefix=MODELS)
    with pytest.raises(InternalServerError):
        await client.list_models()
    assert len(fake.requests_to(MODELS)) == 1


async def test_unknown_model_is_a_503_retried_then_raised(
    fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=1, sleep=sleep
    ) as api:
        with pytest.raises(InternalServerError) as caught:
            await api.chat.create("no-such-model", [{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert "no-such-model" in str(caught.value)
    assert len(fake.requests_to("/v1/chat")) == 2


async def test_html_from_a_wrong_base_url(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    async with CometAPI(api_key=fake.api_key, base_url=fake.website_url, sleep=sleep) as api:
        with pytest.raises(WrongBaseURLError) as caught:
            await api.chat.create("gpt-4o-mini", [{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.base_url == fake.website_url
    assert fake.website_url in str(error) and "https://api.cometapi.com" in str(error)
    assert len(fake.requests) == 1


async def test_redirect_is_not_followed(fake: FakeCometAPI, sleep: RecordingSleep) -> None:
    async with CometAPI(api_key=fake.api_key, base_url=fake.redirect_url, sleep=sleep) as api:
        with pytest.raises(WrongBaseURLError) as caught:
            await api.list_models()
    assert caught.value.status_code == 301
    assert "redirect" in str(caught.value)
    assert [r.path for r in fake.requests] == ["/redirect/v1/models"]


async def test_html_stream_answer_is_a_wrong_base_url(fake: FakeCometAPI) -> None:
    async with CometAPI(api_key=fake.api_key, base_url=fake.website_url) as api:
        with pytest.raises(WrongBaseURLError):
            async with api.chat.stream("gpt-4o-mini", [{"role": "user", "content": "x"}]) as s:
                [d async for d in s]


async def test_read_timeout_is_retried_then_raised(
    fake: FakeCometAPI, sleep: RecordingSleep
) -> None:
    fake.fail_next(5, hang=True, path_prefix=MODELS)
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, read_timeout=0.2, max_retries=1, sleep=sleep
    ) as api:
        with pytest.raises(APITimeoutError):
            await api.list_models()
    assert len(fake.requests_to(MODELS)) == 2
    assert len(sleep.calls) == 1


async def test_connection_refused_is_retried_then_raised(sleep: RecordingSleep) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with CometAPI(
        api_key="sk-x", base_url=f"http://127.0.0.1:{port}", max_retries=2, sleep=sleep
    ) as api:
        with pytest.raises(APIConnectionError) as caught:
            await api.list_models()
    assert not isinstance(caught.value, APITimeoutError)
    assert len(sleep.calls) == 2


async def test_the_key_never_leaks_into_errors_or_logs(
    fake: FakeCometAPI, sleep: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[CometAPIError] = []
    wrong = "sk-wrong-but-secret-123"
    async with CometAPI(api_key=wrong, base_url=fake.base_url, sleep=sleep) as api:
        with pytest.raises(AuthenticationError) as auth:
            await api.list_models()  # the fake echoes the presented key in its message
        errors.append(auth.value)
        assert wrong not in repr(api)
    key = fake.api_key
    async with CometAPI(api_key=key, base_url=fake.base_url, max_retries=1, sleep=sleep) as api:
        fake.fail_next(3, 500, path_prefix=MODELS, message=f"upstream rejected key {key}")
        fake.fail_next(2, 429, path_prefix="/mj/submit", message=f"busy {key}", retry_after=1)
        for call in (api.list_models(), api.midjourney.imagine("a cat")):
            with pytest.raises(CometAPIError) as caught:
                await call
            errors.append(caught.value)
        assert key not in repr(api)
    fake.fail_next(1, hang=True, path_prefix="/suno/submit")
    async with CometAPI(api_key=key, base_url=fake.base_url, read_timeout=0.2) as api:
        with pytest.raises(SubmitUncertainError) as uncertain:
            await api.suno.music(gpt_description_prompt="a song")
        errors.append(uncertain.value)
    assert [type(e) for e in errors] == [
        AuthenticationError,
        InternalServerError,
        RateLimitError,
        SubmitUncertainError,
    ]
    for error in errors:
        for secret in (wrong, key):
            assert secret not in str(error) and secret not in repr(error)
            assert secret not in getattr(error, "body", "")
            assert secret not in str(error.__cause__ or "")
    assert "Retrying" in caplog.text
    assert wrong not in caplog.text and key not in caplog.text


def test_request_id_extraction() -> None:
    assert extract_request_id("model name is required (request id: 2025ABC)") == "2025ABC"
    assert extract_request_id("no id here") is None


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 30


def test_base_url_and_key_validation() -> None:
    assert CometAPI(api_key="k", base_url="https://api.cometapi.com/").base_url == (
        "https://api.cometapi.com"
    )
    assert CometAPI(api_key="k", base_url="https://api.cometapi.com/v1").base_url == (
        "https://api.cometapi.com"
    )
    with pytest.raises(ValueError, match="https://"):
        CometAPI(api_key="k", base_url="api.cometapi.com")
    with pytest.raises(ValueError, match="api_key"):
        CometAPI(api_key="")
