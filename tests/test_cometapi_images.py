"""The images family and its adapter against the fake CometAPI over TCP: generations and
edits (multipart), ``b64_json`` and ``url`` answers, the content-policy 400, and the
sentences the adapter turns failures into."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.adapters.image_model import CometImageModel
from bot.core import errors as core
from bot.core.models import ImageInput
from bot.providers.cometapi import BadRequestError, CometAPI, SubmitUncertainError
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep, tiny_png


@pytest.fixture
async def client(fake: FakeCometAPI) -> AsyncIterator[CometAPI]:
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, sleep=RecordingSleep()
    ) as api:
        yield api


async def test_generate_sends_the_options_and_reads_b64_json(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    result = await client.images.generate("gpt-image-1", "a cat", size="1024x1024", quality="low")
    (item,) = result.data
    assert item.decoded() == fake.picture and not item.url
    assert fake.requests_to("/v1/images/generations")[0].json == {
        "model": "gpt-image-1",
        "prompt": "a cat",
        "n": 1,
        "size": "1024x1024",
        "quality": "low",
    }


async def test_dall_e_3_answers_a_url_that_the_adapter_downloads(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    result = await client.images.generate("dall-e-3", "a cat")
    assert result.data[0].url.startswith(fake.base_url + "/cdn/")
    pictures = await CometImageModel(client).draw(
        model="dall-e-3", prompt="a cat", size="1024x1024", quality=""
    )
    assert [p.data for p in pictures] == [fake.picture]
    assert pictures[0].mime_type == "image/png"
    cdn = fake.requests_to("/cdn/")
    assert cdn and all("Authorization" not in r.headers for r in cdn)  # no key to a link


async def test_edit_is_multipart_with_the_picture_as_image(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    photo = tiny_png((1, 2, 3))
    result = await client.images.edit("gpt-image-1", "make it red", photo, size="1024x1024")
    assert result.data[0].decoded() == fake.picture
    (call,) = fake.image_calls
    assert call.path == "/v1/images/edits"
    assert call.fields == {
        "model": "gpt-image-1",
        "prompt": "make it red",
        "n": "1",
        "size": "1024x1024",
    }
    assert (call.filename, call.content_type, call.data) == ("image.png", "image/png", photo)


async def test_a_content_policy_refusal_is_a_bad_request_sent_once(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    with pytest.raises(BadRequestError):
        await client.images.generate("gpt-image-1", "a forbidden-subject")
    with pytest.raises(core.PromptRefused) as caught:
        await CometImageModel(client).draw(
            model="gpt-image-1", prompt="a forbidden-subject", size="", quality=""
        )
    assert caught.value.message == (
        "The image model gpt-image-1 refused this prompt (it may break its content policy); "
        "please try a different one."
    )
    assert isinstance(caught.value.__cause__, BadRequestError)
    assert len(fake.requests_to("/v1/images/generations")) == 2  # never retried


async def test_busy_and_unclear_answers_become_sentences(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    model = CometImageModel(client)
    fake.fail_next(5, 429, path_prefix="/v1/images")
    with pytest.raises(core.GenerationBusy, match="busy right now"):
        await model.draw(model="gpt-image-1", prompt="a cat", size="", quality="")
    fake.fail_next(1, 502, path_prefix="/v1/images")
    with pytest.raises(core.GenerationError, match="having trouble right now"):
        await model.draw(model="gpt-image-1", prompt="a cat", size="", quality="")
    fake.fail_next(5, 504, path_prefix="/v1/images")
    with pytest.raises(core.GenerationError, match="took too long") as caught:
        await model.draw(model="gpt-image-1", prompt="a cat", size="", quality="")
    assert isinstance(caught.value.__cause__, SubmitUncertainError)  # a paid call: not resent


async def test_edit_through_the_adapter(fake: FakeCometAPI, client: CometAPI) -> None:
    photo = ImageInput(b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg")
    pictures = await CometImageModel(client).draw(
        model="gpt-image-1", prompt="sky red", size="", quality="high", image=photo
    )
    assert [p.data for p in pictures] == [fake.picture]
    (call,) = fake.image_calls
    assert call.filename == "image.jpg" and call.content_type == "image/jpeg"
    assert call.fields["quality"] == "high" and "size" not in call.fields


async def test_the_images_read_timeout_replaces_the_clients_and_is_never_resent(
    fake: FakeCometAPI, client: CometAPI
) -> None:
    fake.fail_next(1, path_prefix="/v1/images", hang=True)  # the client waits 120 s by default
    model = CometImageModel(client, timeout=0.3)
    with pytest.raises(core.GenerationError, match="took too long") as caught:
        await asyncio.wait_for(
            model.draw(model="gpt-image-1", prompt="a cat", size="", quality=""), 10
        )
    assert isinstance(caught.value.__cause__, SubmitUncertainError)
    assert len(fake.requests_to("/v1/images/generations")) == 1
