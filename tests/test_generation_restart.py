"""Restart safety of generation, through the real ``bot.app.run_service``: stop the service
at each step, start it again on the same database, and check that every result arrives
exactly once and old buttons still work. Real pacing, the fake's flood limits on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.generation.poller import UNCERTAIN_AFTER_RESTART
from bot.core.generation.records import NewTask, Provider, TaskStatus
from bot.core.models import ConversationKey, Platform
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.generation_world import (
    button_data,
    button_texts,
    generation_settings,
    open_store,
    running_service,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42


def media(tg: FakeTelegram, kind: str) -> list[StoredMessage]:
    return [m for m in tg.messages(USER) if m.media_type == kind]


async def test_a_task_submitted_before_a_stop_is_delivered_once_after_the_start(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = generation_settings(tmp_path, comet, tg, location=durable_location)
        comet.auto_advance = False  # Midjourney is slow: the task outlives the process
        async with running_service(settings, tg):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            await comet.wait_for(lambda: comet.requests_to("/mj/task/list-by-condition"), 10)
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.status is TaskStatus.SUBMITTED
        assert task.delivered_at is None and media(tg, "photo") == []
        comet.auto_advance = True
        async with running_service(settings, tg):
            await tg.wait_for(lambda: media(tg, "photo"), timeout=15)
            await tg.wait_for(lambda: "✅ Done" in (tg.messages(USER)[0].text or ""), timeout=10)
        async with running_service(settings, tg):  # a third start has nothing left to do
            await tg.wait_idle(quiet=0.5)
        assert len(media(tg, "photo")) == 1 and len(comet.requests_to("/mj/submit")) == 1
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.status is TaskStatus.SUCCEEDED and task.delivered_at
        assert tg.total_429s == 0 and tg.violations == 0


async def test_a_stop_during_delivery_posts_nothing_twice(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = generation_settings(tmp_path, comet, tg, location=durable_location)
        async with running_service(settings, tg):
            tg.inject_private_message("/music a song about restarts", user_id=USER)
            await tg.wait_for_call("sendAudio", USER, timeout=15)
            # the second clip meets a long flood wait: the stop comes while it waits
            tg.fail_next(USER, "sendAudio", retry_after=30)
            await tg.wait_for(lambda: any(c.status == 429 for c in tg.calls("sendAudio")), 10)
        assert len(media(tg, "audio")) == 1
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.delivered_at is None
        assert task.result is not None and list(task.result["sent"]) == ["clip:0"]
        tg.clear_penalties()  # the 30 s pass while the bot is down
        async with running_service(settings, tg):
            await tg.wait_for(lambda: len(media(tg, "audio")) == 2, timeout=15)
            await tg.wait_for(lambda: "✅ Done" in (tg.messages(USER)[0].text or ""), timeout=10)
            await tg.wait_idle(quiet=0.3)
        first, second = media(tg, "audio")
        assert first.message_id < second.message_id
        assert [c.ok for c in tg.calls("sendAudio")] == [True, False, True]
        assert len(comet.requests_to("/suno/submit")) == 1
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.delivered_at is not None


async def test_a_stop_while_an_upload_waits_for_its_answer_never_posts_it_twice(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = generation_settings(tmp_path, comet, tg, location=durable_location)
        tg.slow_answer("sendPhoto", 30)  # the grid is posted; its answer comes after the stop
        async with running_service(settings, tg):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            await tg.wait_for(lambda: media(tg, "photo"), timeout=15)
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.delivered_at is None and task.result is not None
        assert "image" not in task.result.get("sent", {})  # no answer, so no message id
        async with running_service(settings, tg):
            await tg.wait_for(lambda: "✅ Done" in (tg.messages(USER)[0].text or ""), timeout=15)
        assert len(media(tg, "photo")) == 1  # at most once: it may be there, so not again
        assert "a part may be missing" in (tg.messages(USER)[0].text or "")
        async with open_store(tmp_path, durable_location) as store:
            task = await store.get_task(1)
        assert task is not None and task.delivered_at is not None


async def test_a_button_posted_before_a_restart_still_works(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = generation_settings(tmp_path, comet, tg, location=durable_location)
        async with running_service(settings, tg):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            (grid,) = await tg.wait_for(lambda: media(tg, "photo"), timeout=15)
        async with running_service(settings, tg):
            query = tg.inject_callback_query(USER, grid.message_id, button_data(grid, "U2"))
            await tg.wait_for(lambda: len(media(tg, "photo")) == 2, timeout=15)
        assert tg.callback(query).answered
        (grid_task,) = [t for t in comet.tasks.values() if t.kind == "IMAGINE"]
        assert comet.mj_actions == [(grid_task.id, f"MJ::JOB::upsample::2::{grid_task.hash}")]
        upscale = media(tg, "photo")[1]
        assert upscale.reply_to == grid.message_id and "Upscale (Subtle)" in button_texts(upscale)


async def test_a_submit_cut_short_by_a_crash_is_reported_not_resubmitted(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        settings = generation_settings(tmp_path, comet, tg, location=durable_location)
        # What a crash during the submit leaves: a pending row of a process now gone.
        async with open_store(tmp_path, durable_location) as store:
            await store.create_task(
                NewTask(
                    Provider.SUNO,
                    "music",
                    f"tg:{USER}",
                    ConversationKey(Platform.TELEGRAM, str(USER)),
                    {"description": "a song"},
                    submitter="host:123",
                )
            )
        async with running_service(settings, tg):
            notice = await tg.wait_for_message(USER, "restarted", timeout=10)
        assert notice.text == f"🎵 Music: a song\n❌ {UNCERTAIN_AFTER_RESTART}"
        assert comet.requests_to("/suno") == []
