"""CometTaskBackend: the SDK's task families as the core sees them, against the fake CometAPI
over real TCP (request bodies, snapshots, result shapes and the error sentences)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from bot.adapters.midjourney import button_kind
from bot.adapters.task_backend import CometTaskBackend
from bot.core import errors as core
from bot.core.generation.prompts import MusicSpec, VideoSpec
from bot.core.generation.records import Provider
from bot.core.generation.requests import (
    ActionRequest,
    DescribeRequest,
    ImagineRequest,
    ModalRequest,
    MusicRequest,
    VideoRequest,
)
from bot.core.models import ImageInput, Submitted, TaskRef, UpstreamState
from bot.providers.cometapi import CometAPI
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep

MJ = Provider.MIDJOURNEY
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"


@pytest.fixture
async def comet() -> AsyncIterator[FakeCometAPI]:
    async with FakeCometAPI(task_steps=2) as fake:
        yield fake


@pytest.fixture
async def backend(comet: FakeCometAPI) -> AsyncIterator[CometTaskBackend]:
    async with CometAPI(
        api_key=comet.api_key, base_url=comet.base_url, max_retries=1, sleep=RecordingSleep()
    ) as client:
        yield CometTaskBackend(client)


async def poll_until_done(backend: CometTaskBackend, provider: Provider, ref: TaskRef):  # type: ignore[no-untyped-def]
    for _ in range(10):
        (snap,) = await backend.poll(provider, [ref])
        if snap.state in (UpstreamState.SUCCEEDED, UpstreamState.FAILED):
            return snap
    raise AssertionError("never finished")


def press(parent: str, custom_id: str) -> ActionRequest:
    return ActionRequest(parent, custom_id, label="U2", prompt="a boat", modal="prompt")


async def test_imagine_then_poll_a_batch_with_progress_preview_and_buttons(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    first = await backend.submit(ImagineRequest("a boat --ar 16:9", (ImageInput(JPEG),)))
    second = await backend.submit(ImagineRequest("a cat"))
    body = comet.requests_to("/mj/submit/imagine")[0].json
    assert body == {
        "prompt": "a boat --ar 16:9",
        "base64Array": ["data:image/jpeg;base64," + base64.b64encode(JPEG).decode()],
    }
    refs = [TaskRef(first.upstream_id, "imagine"), TaskRef(second.upstream_id, "imagine")]
    queued = await backend.poll(MJ, refs)
    assert {s.state for s in queued} == {UpstreamState.QUEUED}
    running = await backend.poll(MJ, [*refs, TaskRef("1999999999999999", "imagine")])
    assert len(running) == 2  # the unknown id is simply missing
    snap = next(s for s in running if s.upstream_id == first.upstream_id)
    assert snap.state is UpstreamState.RUNNING and snap.progress == 50
    assert snap.preview_url is not None and "/mj/image/" in snap.preview_url
    assert len(comet.requests_to("/mj/task/list-by-condition")) == 2  # one request per batch
    done = await poll_until_done(backend, MJ, refs[0])
    assert done.result is not None and done.result["type"] == "image"
    assert done.result["image_url"].endswith(f"/mj/image/{first.upstream_id}")
    assert [b["label"] or b["emoji"] for b in done.result["buttons"]] == [
        "U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4",
    ]  # fmt: skip
    assert {b["kind"] for b in done.result["buttons"]} == {"upscale", "reroll", "variation"}


async def test_an_upscale_keeps_its_buttons_but_vary_region(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    grid = await backend.submit(ImagineRequest("a boat"))
    done = await poll_until_done(backend, MJ, TaskRef(grid.upstream_id, "imagine"))
    assert done.result is not None
    u2 = done.result["buttons"][1]["custom_id"]
    action = await backend.submit(press(grid.upstream_id, u2))
    assert comet.mj_actions == [(grid.upstream_id, u2)] and not action.waiting
    upscale = await poll_until_done(backend, MJ, TaskRef(action.upstream_id, "action"))
    assert upscale.result is not None
    labels = [b["label"] or b["emoji"] for b in upscale.result["buttons"]]
    assert "Vary (Region)" not in labels
    assert labels[:3] == ["Upscale (Subtle)", "Upscale (Creative)", "Vary (Strong)"]
    zoom = next(b for b in upscale.result["buttons"] if b["kind"] == "custom_zoom")
    modal = await backend.submit(press(action.upstream_id, zoom["custom_id"]))
    assert modal.waiting  # code 21: the task waits in MODAL for the zoom prompt
    final = await backend.submit(ModalRequest(modal.upstream_id, "x --zoom 2"))
    assert comet.requests_to("/mj/submit/modal")[0].json == {
        "taskId": modal.upstream_id,
        "prompt": "x --zoom 2",
    }
    assert isinstance(final, Submitted) and not final.waiting


async def test_describe_yields_four_prompts(comet: FakeCometAPI, backend: CometTaskBackend) -> None:
    by_link = await backend.submit(DescribeRequest(link="https://img.test/a.png"))
    assert comet.requests_to("/mj/submit/describe")[0].json == {"link": "https://img.test/a.png"}
    done = await poll_until_done(backend, MJ, TaskRef(by_link.upstream_id, "describe"))
    assert done.result == {
        "type": "prompts",
        "prompts": [f"a paper boat, variant {n} --ar 5:4" for n in range(1, 5)],
    }


async def test_banned_words_and_moderation_are_told_apart(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    with pytest.raises(core.PromptRefused) as banned:
        await backend.submit(ImagineRequest("a gore scene"))
    assert banned.value.message == (
        "Midjourney refused the prompt: it contains a banned word (“gore”). "
        "Please rephrase it and try again."
    )
    moderated = await backend.submit(ImagineRequest("a forbidden-subject"))
    snap = await poll_until_done(backend, MJ, TaskRef(moderated.upstream_id, "imagine"))
    assert snap.state is UpstreamState.FAILED
    assert snap.error is not None and snap.error.startswith("Midjourney's moderation blocked")
    comet.fail_next_task("mj", "任务执行超时")
    failed = await backend.submit(ImagineRequest("a boat"))
    snap = await poll_until_done(backend, MJ, TaskRef(failed.upstream_id, "imagine"))
    assert snap.error == (
        "Midjourney could not finish this image (it said: 任务执行超时). Please try again."
    )


@pytest.mark.parametrize(
    ("code", "kind", "error", "text"),
    [
        (4, "action", core.PromptRefused, "the image may have expired (it said: 关联任务已失效)"),
        (
            4,
            "imagine",
            core.PromptRefused,
            "Midjourney refused the request (it said: 关联任务已失效)",
        ),
        (23, "imagine", core.GenerationBusy, "Midjourney is busy right now"),
        (3, "imagine", core.GenerationBusy, "Midjourney is busy right now"),
        (9, "imagine", core.GenerationError, "Midjourney is having trouble"),
    ],
)
async def test_midjourney_submit_codes_become_sentences(  # noqa: PLR0917 (pytest arguments)
    comet: FakeCometAPI,
    backend: CometTaskBackend,
    code: int,
    kind: str,
    error: type[core.GenerationError],
    text: str,
) -> None:
    comet.script_mj_submit(code, description="关联任务已失效")
    request = press("1", "MJ::JOB::upsample::1::h") if kind == "action" else ImagineRequest("x")
    with pytest.raises(error) as info:
        await backend.submit(request)
    assert type(info.value) is error and text in info.value.message
    assert isinstance(info.value.__cause__, Exception)  # converted `from` the SDK error


async def test_an_unclear_submit_is_reported_once_and_not_retried(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    comet.fail_next(1, 504, path_prefix="/suno/submit")
    with pytest.raises(core.SubmitUncertain):
        await backend.submit(MusicRequest(MusicSpec(description="a song"), "chirp-v4"))
    assert len(comet.requests_to("/suno/submit")) == 1


async def test_suno_two_clips_in_one_batch(comet: FakeCometAPI, backend: CometTaskBackend) -> None:
    calm = MusicSpec(description="calm piano", instrumental=True)
    a = await backend.submit(MusicRequest(calm, "chirp-v4"))
    punk = MusicSpec(lyrics="[Verse]\nla", style="punk", title="City Lights")
    b = await backend.submit(MusicRequest(punk, "chirp-auk"))
    bodies = [r.json for r in comet.requests_to("/suno/submit/music")]
    assert bodies == [
        {"gpt_description_prompt": "calm piano", "make_instrumental": True, "mv": "chirp-v4"},
        {
            "prompt": "[Verse]\nla",
            "tags": "punk",
            "title": "City Lights",
            "make_instrumental": False,
            "mv": "chirp-auk",
        },
    ]
    refs = [TaskRef(a.upstream_id, "music"), TaskRef(b.upstream_id, "music")]
    for _ in range(3):
        snaps = await backend.poll(Provider.SUNO, refs)
    assert len(comet.requests_to("/suno/fetch", "POST")) == 3
    done = {s.upstream_id: s for s in snaps}
    result = done[b.upstream_id].result
    assert result is not None and result["type"] == "audio" and len(result["clips"]) == 2
    assert [c["title"] for c in result["clips"]] == ["City Lights", "City Lights"]
    assert all(c["audio_url"].endswith(".mp3") and c["duration"] for c in result["clips"])


async def test_kling_text_and_image_to_video(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    spec = VideoSpec("a boat", duration=10, aspect_ratio="9:16")
    text = await backend.submit(VideoRequest(spec, "kling-v2-1"))
    # no model configured: the SDK's default
    image = await backend.submit(VideoRequest(VideoSpec(""), "", image=ImageInput(JPEG)))
    assert comet.requests_to("/kling/v1/videos/text2video")[0].json == {
        "prompt": "a boat",
        "model_name": "kling-v2-1",
        "duration": "10",
        "aspect_ratio": "9:16",
    }
    body = comet.requests_to("/kling/v1/videos/image2video")[0].json
    assert body["image"] == base64.b64encode(JPEG).decode() and "prompt" not in body
    running = await backend.poll(Provider.KLING, [TaskRef(text.upstream_id, "text2video")])
    await backend.poll(Provider.KLING, [TaskRef(text.upstream_id, "text2video")])
    assert running[0].progress is None  # Kling reports no percentage
    done = await poll_until_done(backend, Provider.KLING, TaskRef(image.upstream_id, "image2video"))
    assert done.result is not None and done.result["video_url"].endswith(".mp4")
    assert done.result["duration"] == 5.1
    assert await backend.poll(Provider.KLING, [TaskRef("404", "text2video")]) == []


async def test_poll_and_download_failures_are_upstream_errors(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    comet.fail_next(2, 503, path_prefix="/mj/task", retry_after=7)
    with pytest.raises(core.UpstreamError) as info:
        await backend.poll(MJ, [TaskRef("1", "imagine")])
    assert info.value.retry_after == 7
    grid = await backend.submit(ImagineRequest("a boat"))
    url = f"{comet.base_url}/mj/image/{grid.upstream_id}"
    downloaded = await backend.download(url, max_bytes=10_000)
    assert downloaded.data.startswith(b"\x89PNG") and downloaded.content_type == "image/png"
    with pytest.raises(core.MediaTooLarge):
        await backend.download(url, max_bytes=10)
    with pytest.raises(core.UpstreamError):
        await backend.download(f"{comet.base_url}/media/nothing.bin", max_bytes=10_000)


async def test_download_errors_say_whether_waiting_can_help(
    comet: FakeCometAPI, backend: CometTaskBackend
) -> None:
    with pytest.raises(core.ResultUnavailable) as gone:
        await backend.download(f"{comet.base_url}/mj/image/404", max_bytes=10_000)
    assert gone.value.reason == "not_found"
    internal = comet.base_url.replace("127.0.0.1", "localhost") + "/mj/image/1"
    with pytest.raises(core.ResultUnavailable) as refused:  # not the base_url origin: loopback
        await backend.download(internal, max_bytes=10_000)
    assert refused.value.reason == "refused"
    comet.fail_next(1, 503, path_prefix="/mj/image")
    with pytest.raises(core.UpstreamError) as down:
        await backend.download(f"{comet.base_url}/mj/image/1", max_bytes=10_000)
    assert type(down.value) is core.UpstreamError and down.value.reason == "error"


@pytest.mark.parametrize(
    ("custom_id", "kind"),
    [
        ("MJ::JOB::upsample::2::h", "upscale"),
        ("MJ::JOB::upsample_v6_2x_subtle::1::h::SOLO", "upscale"),
        ("MJ::JOB::variation::3::h", "variation"),
        ("MJ::JOB::low_variation::1::h::SOLO", "vary"),
        ("MJ::JOB::reroll::0::h::SOLO", "reroll"),
        ("MJ::JOB::pan_left::1::h::SOLO", "pan"),
        ("MJ::Outpaint::50::1::h::SOLO", "zoom"),
        ("MJ::CustomZoom::h", "custom_zoom"),
        ("MJ::Inpaint::1::h::SOLO", None),
        ("MJ::BOOKMARK::h", None),
    ],
)
def test_button_kinds(custom_id: str, kind: str | None) -> None:
    assert button_kind(custom_id) == kind
