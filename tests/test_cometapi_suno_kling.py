"""Suno and Kling against the fake CometAPI over TCP, plus their envelope parsing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.cometapi import (
    BadRequestError,
    CometAPI,
    KlingAPIError,
    KlingKind,
    KlingTask,
    KlingTaskStatus,
    NotFoundError,
    SubmitUncertainError,
    SunoAPIError,
    SunoTask,
    SunoTaskStatus,
    TaskNotFoundError,
)
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep, tiny_png


@pytest.fixture
async def client(fake: FakeCometAPI) -> AsyncIterator[CometAPI]:
    async with CometAPI(
        api_key=fake.api_key, base_url=fake.base_url, sleep=RecordingSleep()
    ) as api:
        yield api


async def poll_suno(client: CometAPI, task_id: str) -> list[SunoTask]:
    seen = [await client.suno.fetch(task_id)]
    while not seen[-1].is_terminal:
        seen.append(await client.suno.fetch(task_id))
        assert len(seen) < 20
    return seen


async def poll_kling(client: CometAPI, task: KlingTask) -> list[KlingTask]:
    seen = [await client.kling.query(task.task_id, task.kind)]
    while not seen[-1].is_terminal:
        seen.append(await client.kling.query(task.task_id, task.kind))
        assert len(seen) < 20
    return seen


# -- Suno ---------------------------------------------------------------------------------


async def test_suno_inspiration_mode_runs_to_completion(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    task_id = await client.suno.music(
        gpt_description_prompt="an upbeat synth-pop song about late-night coding",
        make_instrumental=True,
    )
    sent = fake.requests_to("/suno/submit/music")[0].json
    assert sent == {
        "gpt_description_prompt": "an upbeat synth-pop song about late-night coding",
        "make_instrumental": True,
        "mv": "chirp-v4",
    }
    seen = await poll_suno(client, task_id)
    assert [t.status for t in seen] == [
        SunoTaskStatus.SUBMITTED,
        SunoTaskStatus.IN_PROGRESS,
        SunoTaskStatus.IN_PROGRESS,
        SunoTaskStatus.SUCCESS,
    ]
    assert {c.status for c in seen[1].clips} == {"streaming"}
    done = seen[-1]
    assert done.is_success and done.task_id == task_id and done.action == "MUSIC"
    assert done.finish_time > done.submit_time > 1_000_000_000  # seconds
    assert len(done.clips) == 2 and all(c.is_complete for c in done.clips)
    clip = done.clips[0]
    assert clip.audio_url.endswith(".mp3") and clip.video_url.endswith(".mp4")
    assert clip.image_url and clip.image_large_url
    assert clip.duration is not None and clip.duration > 100 and clip.tags == "synth-pop"
    audio = await client.download(clip.audio_url)
    assert audio.content_type == "audio/mpeg" and audio.data.startswith(b"ID3")


async def test_suno_custom_and_continue_modes(client: CometAPI, fake: FakeCometAPI) -> None:
    first = await client.suno.music(
        prompt="[Verse]\nNeon lights", tags="emotional punk", title="City Lights",
        negative_tags="country", mv="chirp-auk",
    )  # fmt: skip
    done = (await poll_suno(client, first))[-1]
    assert done.clips[0].title == "City Lights" and done.clips[0].tags == "emotional punk"
    assert done.clips[0].lyrics == "[Verse]\nNeon lights"
    await client.suno.music(
        prompt="[Verse 3]", tags="emotional punk", title="City Lights",
        task_id=first, continue_clip_id=done.clips[0].id, continue_at=80,
    )  # fmt: skip
    sent = [r.json for r in fake.requests_to("/suno/submit/music")]
    assert sent[0]["mv"] == "chirp-auk" and sent[0]["negative_tags"] == "country"
    assert sent[1]["mv"] == "chirp-v4"
    assert (sent[1]["task_id"], sent[1]["continue_clip_id"], sent[1]["continue_at"]) == (
        first,
        done.clips[0].id,
        80,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "x", "continue_clip_id": "c", "continue_at": 10},  # no task_id
        {"prompt": "x", "task_id": "t", "continue_clip_id": "c"},  # no continue_at
        {"prompt": "x", "task_id": "t"},  # task_id without a clip
        {"gpt_description_prompt": "a", "prompt": "b"},  # two modes
        {},  # nothing to make
    ],
)
async def test_suno_music_validates_before_sending(
    client: CometAPI, fake: FakeCometAPI, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        await client.suno.music(**kwargs)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_suno_lyrics_and_fetch_many(client: CometAPI) -> None:
    lyrics_id = await client.suno.lyrics("a cat who learns to surf")
    music_id = await client.suno.music(gpt_description_prompt="surf rock")
    done = (await poll_suno(client, lyrics_id))[-1]
    assert done.is_success and done.lyrics is not None
    assert "a cat who learns to surf" in done.lyrics.text and done.clips == []
    [music] = await client.suno.fetch_many([music_id, "no-such-id"])
    assert music.task_id == music_id and music.status is SunoTaskStatus.SUBMITTED
    [lyrics] = await client.suno.fetch_many([music_id, lyrics_id], action="LYRICS")
    assert lyrics.task_id == lyrics_id
    assert await client.suno.fetch_many([]) == []


async def test_suno_failure_and_unknown_task(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.fail_next_task("suno", "lyrics rejected by moderation")
    done = (await poll_suno(client, await client.suno.music(prompt="la la", tags="pop")))[-1]
    assert done.status is SunoTaskStatus.FAILURE and done.is_terminal and not done.is_success
    assert done.fail_reason == "lyrics rejected by moderation"
    assert {c.status for c in done.clips} == {"error"}
    assert done.clips[0].error_message == "lyrics rejected by moderation"
    with pytest.raises(TaskNotFoundError) as caught:
        await client.suno.fetch("does-not-exist")
    assert caught.value.code == "task_not_exist"


async def test_suno_gateway_refusals(client: CometAPI, fake: FakeCometAPI) -> None:
    # Bypass the client's own validation to see the gateway's 400 envelope mapped.
    with pytest.raises(BadRequestError) as caught:
        await client.request("POST", "/suno/submit/music", json={"continue_clip_id": "c"})
    assert caught.value.code == "task id is empty"
    fake.fail_next(1, 504, path_prefix="/suno/submit")
    with pytest.raises(SubmitUncertainError):
        await client.suno.lyrics("anything")
    assert len(fake.requests_to("/suno/submit/lyrics")) == 1


async def test_suno_error_envelope_with_http_200() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": "quota_not_enough", "message": "no quota"})

    async with CometAPI(api_key="k", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(SunoAPIError) as caught:
            await api.suno.music(gpt_description_prompt="x")
    assert caught.value.code == "quota_not_enough" and "no quota" in str(caught.value)


def test_suno_task_parsing_is_defensive() -> None:
    task = SunoTask.model_validate(
        {
            "id": "t1",
            "status": None,
            "progress": None,
            "data": {
                "clips": [
                    {"id": "a", "state": "COMPLETE", "duration": "61.5", "tags": "lofi"},
                    {"id": "b", "status": "complete", "metadata": None},
                ]
            },
        }
    )
    assert task.task_id == "t1" and task.status is SunoTaskStatus.SUCCESS  # derived from clips
    assert task.clips[0].status == "complete" and task.clips[0].duration == 61.5
    assert task.clips[0].tags == "lofi" and task.clips[1].duration is None
    odd = SunoTask.model_validate({"task_id": "t2", "status": "weird", "data": None})
    assert odd.status is SunoTaskStatus.UNKNOWN and odd.is_terminal and odd.clips == []


# -- Kling --------------------------------------------------------------------------------


async def test_kling_text2video_runs_to_completion(client: CometAPI, fake: FakeCometAPI) -> None:
    created = await client.kling.text2video(
        "a red fox running through snow",
        model_name="kling-v2-master",
        duration=10,
        aspect_ratio="16:9",
        mode="std",
        cfg_scale=0.5,
        external_task_id="tg:1:2",
    )
    assert created.kind is KlingKind.TEXT2VIDEO and created.status is KlingTaskStatus.SUBMITTED
    sent = fake.requests_to("/kling/v1/videos/text2video")[0].json
    assert sent["duration"] == "10" and sent["model_name"] == "kling-v2-master"
    seen = await poll_kling(client, created)
    assert [t.status for t in seen] == [
        KlingTaskStatus.SUBMITTED,
        KlingTaskStatus.PROCESSING,
        KlingTaskStatus.PROCESSING,
        KlingTaskStatus.SUCCEED,
    ]
    done = seen[-1]
    assert done.is_success and done.external_task_id == "tg:1:2"
    assert done.videos[0].duration == 10.1 and done.created_at > 1_000_000_000_000  # ms
    video = await client.download(done.video_url)
    assert video.content_type == "video/mp4"


async def test_kling_image2video_strips_the_data_uri_prefix(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    png = tiny_png()
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    created = await client.kling.image2video(uri, "make it move")
    sent = fake.requests_to("/kling/v1/videos/image2video")[0].json
    assert base64.b64decode(sent["image"]) == png
    assert sent["duration"] == "5" and sent["model_name"] == "kling-v2-1"
    assert (await poll_kling(client, created))[-1].is_success
    await client.kling.image2video(png)  # raw bytes work too
    url_task = await client.kling.image2video("https://example.com/cat.png")
    assert (
        fake.requests_to("/kling/v1/videos/image2video", "POST")[2]
        .json["image"]
        .startswith("https")
    )
    with pytest.raises(NotFoundError) as caught:  # queried on the wrong sub-path
        await client.kling.query(url_task.task_id, KlingKind.TEXT2VIDEO)
    assert caught.value.code == 1203


async def test_kling_failure_and_validation(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.fail_next_task("kling", "Failure to pass the risk control system")
    done = (await poll_kling(client, await client.kling.text2video("a fox")))[-1]
    assert done.status is KlingTaskStatus.FAILED and done.is_terminal and not done.is_success
    assert done.status_message == "Failure to pass the risk control system"
    assert done.video_url == ""
    with pytest.raises(ValueError, match="duration"):
        await client.kling.text2video("a fox", duration=7)
    with pytest.raises(BadRequestError) as caught:  # the gateway's own check
        await client.request("POST", "/kling/v1/videos/text2video", json={"duration": 5})
    assert caught.value.code == 1201 and caught.value.request_id
    fake.fail_next(1, 524, path_prefix="/kling/v1/videos/text2video")
    with pytest.raises(SubmitUncertainError):
        await client.kling.text2video("a fox")
    assert len(fake.requests_to("/kling/v1/videos/text2video", "POST")) == 3


async def test_kling_error_envelope_with_http_200() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"code": 1301, "message": "content safety", "request_id": "r-1"}
        return httpx.Response(200, json=body)

    async with CometAPI(api_key="k", transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(KlingAPIError) as caught:
            await api.kling.text2video("a fox")
    assert caught.value.code == 1301 and caught.value.request_id == "r-1"


def test_kling_task_parsing_is_defensive() -> None:
    task = KlingTask.model_validate(
        {"task_id": 878106242831892487, "task_status": "SUCCEED", "task_info": None,
         "task_result": {"videos": [{"id": "v", "url": "https://x/v.mp4", "duration": "5.1"}]}}
    )  # fmt: skip
    assert task.task_id == "878106242831892487" and task.is_success
    assert task.video_url == "https://x/v.mp4" and task.videos[0].duration == 5.1
    assert KlingTask.model_validate({"task_id": "1", "task_status": "new"}).is_terminal
