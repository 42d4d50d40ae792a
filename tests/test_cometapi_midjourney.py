"""Midjourney against the fake CometAPI over TCP: submit codes, polling, buttons, actions."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from bot.providers.cometapi import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    BannedPromptError,
    CometAPI,
    InternalServerError,
    MidjourneySubmitError,
    MJTask,
    MJTaskStatus,
    NoAccountAvailableError,
    QueueFullError,
    SubmitUncertainError,
    SubmitValidationError,
    SystemFailureError,
    TaskNotFoundError,
)
from tests.fakes.cometapi import FakeCometAPI, RecordingSleep, tiny_png

SUBMIT = "/mj/submit"


@pytest.fixture
async def client(fake: FakeCometAPI, sleep: RecordingSleep) -> AsyncIterator[CometAPI]:
    async with CometAPI(api_key=fake.api_key, base_url=fake.base_url, sleep=sleep) as api:
        yield api


async def poll(client: CometAPI, task_id: str) -> list[MJTask]:
    """Fetch until the task stops (terminal or MODAL); every observation, in order."""
    seen = [await client.midjourney.fetch(task_id)]
    while not (seen[-1].is_terminal or seen[-1].needs_modal):
        seen.append(await client.midjourney.fetch(task_id))
        assert len(seen) < 20
    return seen


async def test_imagine_then_poll_to_success_with_buttons(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    job = await client.midjourney.imagine("a paper boat --ar 3:2", state="tg:1:2")
    assert job.code == 1 and not job.is_modal and job.task_id.isdigit()
    seen = await poll(client, job.task_id)
    assert [t.status for t in seen] == [
        MJTaskStatus.SUBMITTED,
        MJTaskStatus.IN_PROGRESS,
        MJTaskStatus.IN_PROGRESS,
        MJTaskStatus.SUCCESS,
    ]
    progress = [t.progress for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert all(t.buttons == [] for t in seen[:-1])  # null until SUCCESS
    assert "?rand=" in seen[1].image_url  # a preview while in progress
    done = seen[-1]
    assert done.is_success and done.is_terminal
    assert done.image_url == f"{fake.base_url}/mj/image/{job.task_id}"
    assert done.state == "tg:1:2" and done.action == "IMAGINE"
    assert done.finish_time > done.start_time > done.submit_time > 1_000_000_000_000  # ms
    labels = [b.label or b.emoji for b in done.buttons]
    assert labels == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    assert done.buttons[0].custom_id.startswith("MJ::JOB::upsample::1::")
    assert done.buttons[4].custom_id.endswith("::SOLO")
    [sent] = fake.requests_to(SUBMIT)
    assert sent.json == {"prompt": "a paper boat --ar 3:2", "state": "tg:1:2"}


async def test_submit_result_as_a_number_is_read_as_a_string(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.mj_result_as_number = True
    job = await client.midjourney.imagine("a cat")
    assert isinstance(job.task_id, str)
    assert (await client.midjourney.fetch(job.task_id)).id == job.task_id


async def test_code_21_gives_a_modal_task(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_mj_submit(21)
    job = await client.midjourney.imagine("a cat")
    assert job.is_modal
    task = await client.midjourney.fetch(job.task_id)
    assert task.needs_modal and not task.is_terminal


async def test_code_22_is_queued_but_accepted(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_mj_submit(22)
    job = await client.midjourney.imagine("a cat")
    assert job.is_queued and job.properties["numberOfQueues"] == 3
    assert (await poll(client, job.task_id))[-1].is_success


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (3, NoAccountAvailableError, True),
        (4, SubmitValidationError, False),
        (9, SystemFailureError, True),
        (23, QueueFullError, True),
        (24, BannedPromptError, False),
        (99, MidjourneySubmitError, False),
    ],
)
async def test_refusal_codes_map_to_distinct_errors(
    client: CometAPI,
    fake: FakeCometAPI,
    code: int,
    cls: type[MidjourneySubmitError],
    retryable: bool,
) -> None:
    fake.script_mj_submit(code, description="描述 text")
    with pytest.raises(MidjourneySubmitError) as caught:
        await client.midjourney.imagine("a cat")
    assert type(caught.value) is cls
    assert caught.value.code == code and caught.value.retryable is retryable
    assert caught.value.description == "描述 text"
    assert len(fake.requests_to(SUBMIT)) == 1  # logical refusals are never resubmitted


async def test_banned_prompt_carries_the_word(client: CometAPI) -> None:
    with pytest.raises(BannedPromptError) as caught:
        await client.midjourney.imagine("lots of GORE please")
    assert caught.value.banned_word == "gore"
    assert caught.value.prompt_en == "lots of GORE please"


async def test_empty_prompt_is_a_validation_error(client: CometAPI) -> None:
    with pytest.raises(SubmitValidationError):
        await client.midjourney.imagine("  ")


async def test_http_level_upstream_errors(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.script_mj_submit(4, status=400, description="prompt too long")
    with pytest.raises(BadRequestError) as caught:
        await client.midjourney.imagine("a cat")
    assert caught.value.code == 4 and caught.value.error_type == "upstream_error"
    assert "prompt too long" in str(caught.value)
    # A saturated group (429, code 30) is safe to resubmit: nothing was created.
    fake.fail_next(1, 429, path_prefix=SUBMIT, retry_after=1)
    job = await client.midjourney.imagine("a cat")
    assert job.code == 1
    assert len(fake.requests_to(SUBMIT)) == 3


async def test_fetch_of_an_unknown_task(client: CometAPI) -> None:
    with pytest.raises(TaskNotFoundError) as caught:
        await client.midjourney.fetch("1234567890123456")
    assert caught.value.status_code == 400 and caught.value.code == 4


async def test_scripted_failure_with_localized_reason(client: CometAPI, fake: FakeCometAPI) -> None:
    fake.fail_next_task("mj", "任务超时")
    done = (await poll(client, (await client.midjourney.imagine("a cat")).task_id))[-1]
    assert done.status is MJTaskStatus.FAILURE and done.is_terminal and not done.is_success
    assert done.fail_reason == "任务超时" and done.progress == 0 and done.buttons == []


async def test_moderation_failure(client: CometAPI) -> None:
    job = await client.midjourney.imagine("a forbidden-subject")
    done = (await poll(client, job.task_id))[-1]
    assert done.status is MJTaskStatus.FAILURE and done.fail_reason


async def test_upscale_then_custom_zoom_through_a_modal(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    grid = (await poll(client, (await client.midjourney.imagine("a lighthouse")).task_id))[-1]
    u2 = next(b for b in grid.buttons if b.label == "U2")
    up_job = await client.midjourney.action(grid.id, u2.custom_id, state="s")
    assert up_job.code == 1 and up_job.task_id != grid.id
    upscale = (await poll(client, up_job.task_id))[-1]
    assert upscale.action == "UPSCALE" and upscale.is_success
    labels = [b.label for b in upscale.buttons]
    for label in ("Upscale (Subtle)", "Upscale (Creative)", "Vary (Strong)", "Vary (Subtle)"):
        assert label in labels
    assert {"Vary (Region)", "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom"} <= set(labels)
    pans = [b for b in upscale.buttons if "pan_" in b.custom_id]
    assert [b.emoji for b in pans] == ["⬅️", "➡️", "⬆️", "⬇️"] and not any(b.label for b in pans)

    zoom = next(b for b in upscale.buttons if b.label == "Custom Zoom")
    assert zoom.custom_id.startswith("MJ::CustomZoom::")
    modal_job = await client.midjourney.action(upscale.id, zoom.custom_id)
    assert modal_job.is_modal
    assert (await client.midjourney.fetch(modal_job.task_id)).needs_modal
    final_job = await client.midjourney.modal(modal_job.task_id, prompt="a lighthouse --zoom 1.5")
    final = (await poll(client, final_job.task_id))[-1]
    assert final.is_success and final.action == "CUSTOM_ZOOM" and len(final.buttons) == 9
    assert fake.mj_actions == [(grid.id, u2.custom_id), (upscale.id, zoom.custom_id)]
    modal_body = fake.requests_to("/mj/submit/modal")[0].json
    assert modal_body == {"taskId": modal_job.task_id, "prompt": "a lighthouse --zoom 1.5"}


async def test_action_with_a_foreign_custom_id_is_refused(client: CometAPI) -> None:
    grid = (await poll(client, (await client.midjourney.imagine("a cat")).task_id))[-1]
    with pytest.raises(SubmitValidationError):
        await client.midjourney.action(grid.id, "MJ::JOB::upsample::1::made-up")


async def test_blend_sends_data_uris(client: CometAPI, fake: FakeCometAPI) -> None:
    job = await client.midjourney.blend([tiny_png(), tiny_png((1, 2, 3))], dimensions="LANDSCAPE")
    done = (await poll(client, job.task_id))[-1]
    assert done.is_success and done.action == "BLEND" and len(done.buttons) == 9
    body = fake.requests_to("/mj/submit/blend")[0].json
    assert body["dimensions"] == "LANDSCAPE"
    assert all(uri.startswith("data:image/png;base64,") for uri in body["base64Array"])
    with pytest.raises(ValueError, match="2 to 5"):
        await client.midjourney.blend([tiny_png()])


async def test_describe_gives_four_prompts(client: CometAPI, fake: FakeCometAPI) -> None:
    job = await client.midjourney.describe(base64=tiny_png())
    done = (await poll(client, job.task_id))[-1]
    assert done.is_success and done.action == "DESCRIBE"
    prompts = done.describe_prompts
    assert len(prompts) == 4 and prompts[0].startswith("a paper boat") and "1️⃣" not in prompts[0]
    assert done.final_prompt.startswith("1️⃣")
    with pytest.raises(ValueError, match="exactly one"):
        await client.midjourney.describe()
    await client.midjourney.describe(link="https://example.com/cat.png")
    assert fake.requests_to("/mj/submit/describe")[1].json == {
        "link": "https://example.com/cat.png"
    }


async def test_list_by_condition(client: CometAPI, fake: FakeCometAPI) -> None:
    ids = [(await client.midjourney.imagine(f"cat {n}")).task_id for n in range(3)]
    tasks = await client.midjourney.list_by_condition([*ids, "9999999999999999"])
    assert sorted(t.id for t in tasks) == sorted(ids)
    assert all(t.status is MJTaskStatus.SUBMITTED for t in tasks)
    assert await client.midjourney.list_by_condition([]) == []
    assert len(fake.requests_to("/mj/task/list-by-condition")) == 1


async def test_a_paid_submit_that_times_out_is_not_resubmitted(fake: FakeCometAPI) -> None:
    fake.fail_next(1, hang=True, path_prefix=SUBMIT)
    async with CometAPI(api_key=fake.api_key, base_url=fake.base_url, read_timeout=0.2) as api:
        with pytest.raises(SubmitUncertainError) as caught:
            await api.midjourney.imagine("a cat", state="tg:1:2")
    assert isinstance(caught.value.__cause__, APITimeoutError)
    assert caught.value.path == "/mj/submit/imagine"
    assert len(fake.requests_to(SUBMIT)) == 1


@pytest.mark.parametrize("status", [504, 524])
async def test_a_paid_submit_with_gateway_timeout_is_not_resubmitted(
    client: CometAPI, fake: FakeCometAPI, status: int
) -> None:
    fake.fail_next(1, status, path_prefix=SUBMIT)
    with pytest.raises(SubmitUncertainError):
        await client.midjourney.action("1", "MJ::JOB::upsample::1::x")
    assert len(fake.requests_to(SUBMIT)) == 1


async def test_a_paid_submit_with_500_is_raised_not_retried(
    client: CometAPI, fake: FakeCometAPI
) -> None:
    fake.fail_next(1, 500, path_prefix=SUBMIT)
    with pytest.raises(InternalServerError):
        await client.midjourney.imagine("a cat")
    assert len(fake.requests_to(SUBMIT)) == 1


async def test_a_paid_submit_is_retried_when_it_never_left(sleep: RecordingSleep) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with CometAPI(
        api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=2, sleep=sleep
    ) as api:
        with pytest.raises(APIConnectionError) as caught:
            await api.midjourney.imagine("a cat")
    assert not isinstance(caught.value, SubmitUncertainError)
    assert len(sleep.calls) == 2


async def test_download_the_result_image(client: CometAPI) -> None:
    done = (await poll(client, (await client.midjourney.imagine("a cat")).task_id))[-1]
    image = await client.download(done.image_url)
    assert image.content_type == "image/png"
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_task_model_survives_quirks() -> None:
    task = MJTask.model_validate(
        {
            "id": 1320098173412546,
            "status": "in_progress",
            "progress": "45%",
            "buttons": None,
            "imageUrl": None,
            "properties": None,
            "extra_field": {"ignored": True},
        }
    )
    assert task.id == "1320098173412546"
    assert task.status is MJTaskStatus.IN_PROGRESS and task.progress == 45
    assert task.buttons == [] and task.image_url == "" and task.properties == {}
    for raw, expected in (("", 0), (None, 0), ("100%", 100), (" 7 % ", 7), ("n/a", 0), (55, 55)):
        assert MJTask.model_validate({"id": "1", "progress": raw}).progress == expected
    assert MJTask.model_validate({"id": "1", "status": "WEIRD"}).status is MJTaskStatus.UNKNOWN
    assert MJTask.model_validate({"id": "1", "status": "WEIRD"}).is_terminal
    assert MJTask.model_validate({"id": "1"}).status is MJTaskStatus.NOT_START
    assert MJTask.model_validate({"id": "1", "status": "MODAL"}).needs_modal
