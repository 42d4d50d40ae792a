"""Generation on Telegram, end to end: the real python-telegram-bot against the fake Bot API,
the real CometAPI client against the fake CometAPI, a real SQLite file, the real poller.

Most tests use a fast pacer and turn the fake's flood limits off, so they do not wait out
Telegram's 1 message/s; the first runs with the real pacing and limits on and checks that
generation never draws a 429.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from bot.core.generation.records import TaskStatus
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.generation_world import button_data, button_texts, buttons_of, generation_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
GROUP = -100555
GRID = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]


def media(tg: FakeTelegram, chat: int, kind: str) -> list[StoredMessage]:
    return [m for m in tg.messages(chat) if m.media_type == kind]


async def wait_media(tg: FakeTelegram, chat: int, kind: str, count: int = 1) -> list[StoredMessage]:
    return await tg.wait_for(
        lambda: len(media(tg, chat, kind)) >= count and media(tg, chat, kind), timeout=15
    )


async def test_imagine_shows_progress_then_the_grid_with_its_buttons(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=8) as comet, FakeTelegram() as tg:
        # ~2.5 s of rendering: long enough for progress edits at Telegram's real pace
        async with generation_service(
            tmp_path, comet, tg, location=durable_location, fast=False, poll_max_interval=0.5
        ):
            command = tg.inject_private_message("/imagine a paper boat --ar 16:9", user_id=USER)
            (photo,) = await wait_media(tg, USER, "photo")
            await tg.wait_for(lambda: "✅ Done" in (tg.messages(USER)[0].text or ""), timeout=10)
        status = tg.messages(USER)[0]
        assert status.reply_to == command.message_id and photo.reply_to == command.message_id
        shown = [*status.history, status.text]
        assert shown[0] == "🎨 Imagine: a paper boat --ar 16:9\n⏳ Sending it to Midjourney…"
        bars = [t for t in shown if t and re.search(r"[▰▱]{10} \d+%$", t)]
        assert bars and all(t.startswith("🎨 Imagine: a paper boat") for t in bars)
        assert shown[-1] == "🎨 Imagine: a paper boat --ar 16:9\n✅ Done"
        previews = [
            c.params["link_preview_options"].get("url")
            for c in tg.calls("editMessageText", USER)
            if c.ok and "%" in c.params["text"]
        ]
        assert previews and all("/mj/image/" in str(url) for url in previews)  # the preview
        assert photo.upload is not None and photo.upload.data.startswith(b"\x89PNG")
        assert photo.caption == "🎨 Imagine: a paper boat --ar 16:9"
        assert button_texts(photo) == GRID
        rows = photo.reply_markup["inline_keyboard"]  # type: ignore[index]
        assert [len(row) for row in rows] == [5, 4]
        for button in buttons_of(photo):
            assert re.fullmatch(r"mj:[A-Za-z0-9_-]{8,16}", button["callback_data"])
            assert len(button["callback_data"].encode()) <= 64
        assert comet.requests_to("/mj/submit/imagine")[0].json == {
            "prompt": "a paper boat --ar 16:9"
        }
        assert tg.total_429s == 0 and tg.violations == 0


async def test_a_429_on_the_status_message_is_waited_out(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        tg.fail_next(USER, "sendMessage", retry_after=2)
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            await wait_media(tg, USER, "photo")
        sends = [c for c in tg.timeline(USER) if c.method == "sendMessage"]
        assert [c.status for c in sends[:2]] == [429, 200]
        assert sends[1].time - sends[0].time >= 2.0  # the outbox waited out the penalty
        assert tg.messages(USER)[0].text.startswith("🎨 Imagine: a paper boat")


async def test_u2_submits_its_exact_custom_id_and_the_upscale_has_its_own_buttons(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            (grid,) = await wait_media(tg, USER, "photo")
            query = tg.inject_callback_query(USER, grid.message_id, button_data(grid, "U2"))
            await tg.wait_for(lambda: tg.callback(query).answered, timeout=10)
            _, upscale = await wait_media(tg, USER, "photo", 2)
        answer = tg.callback(query).answer or {}
        assert answer.get("text") == "U2: on it…"
        (grid_task,) = [t for t in comet.tasks.values() if t.kind == "IMAGINE"]
        u2 = f"MJ::JOB::upsample::2::{grid_task.hash}"
        assert comet.mj_actions == [(grid_task.id, u2)]
        assert comet.requests_to("/mj/submit/action")[0].json == {
            "taskId": grid_task.id,
            "customId": u2,
        }
        assert upscale.reply_to == grid.message_id  # posted as a reply to the original
        assert upscale.caption == "🔘 U2: a paper boat"
        labels = button_texts(upscale)
        assert labels[:4] == ["Upscale (Subtle)", "Upscale (Creative)", "🪄 Vary (Strong)",
                              "🪄 Vary (Subtle)"]  # fmt: skip
        assert "🔍 Custom Zoom" in labels and "⬅️" in labels
        assert not any("Region" in label for label in labels)
        # the upscale's buttons are its own: different tokens from the grid's
        assert not {b["callback_data"] for b in buttons_of(upscale)} & {
            b["callback_data"] for b in buttons_of(grid)
        }


async def test_custom_zoom_asks_with_force_reply_and_completes_with_a_modal(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            (grid,) = await wait_media(tg, USER, "photo")
            tg.inject_callback_query(USER, grid.message_id, button_data(grid, "U1"))
            _, upscale = await wait_media(tg, USER, "photo", 2)
            tg.inject_callback_query(
                USER, upscale.message_id, button_data(upscale, "🔍 Custom Zoom")
            )
            question = await tg.wait_for_message(USER, "zoom factor from 1 to 2", timeout=10)
            assert question.reply_markup is not None and question.reply_markup["force_reply"]
            assert question.reply_to == upscale.message_id
            tg.inject_private_message("0.5", user_id=USER, reply_to=question)
            await tg.wait_for_message(USER, "Reply with a zoom factor", timeout=10)
            tg.inject_private_message("1.5", user_id=USER, reply_to=question)
            _, _, zoomed = await wait_media(tg, USER, "photo", 3)
            await tg.wait_for(
                lambda: "✅ Done" in (tg.message(USER, question.message_id).text or "")
            )
        modal = comet.requests_to("/mj/submit/modal")
        assert len(modal) == 1
        waiting = next(t for t in comet.tasks.values() if t.modal)
        assert modal[0].json == {"taskId": waiting.id, "prompt": "a paper boat --zoom 1.5"}
        assert zoomed.reply_to == upscale.message_id and button_texts(zoomed) == GRID
        assert comet.requests_to("/v1/chat") == []  # the answers never went to the chat model


async def test_music_posts_two_clips_with_titles_and_covers(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            text = "/music --style emotional punk --title City Lights\n[Verse]\nNeon lights"
            tg.inject_private_message(text, user_id=USER)
            clips = await wait_media(tg, USER, "audio", 2)
        assert comet.requests_to("/suno/submit/music")[0].json == {
            "prompt": "[Verse]\nNeon lights",
            "tags": "emotional punk",
            "title": "City Lights",
            "make_instrumental": False,
            "mv": "chirp-v4",
        }
        for clip in clips:
            assert clip.media["title"] == "City Lights" and clip.media["performer"] == "Suno"
            assert clip.media["duration"] in (130, 131)  # 129.92 s and 130.92 s
            call = next(
                c for c in tg.calls("sendAudio") if c.result["message_id"] == clip.message_id
            )
            assert call.files["audio"].data.startswith(b"ID3")
            assert call.files["thumbnail"].data.startswith(b"\xff\xd8")  # the cover
            assert clip.caption == "🎵 City Lights — emotional punk"
        assert len(media(tg, USER, "audio")) == 2


async def test_instrumental_music_in_a_group(tmp_path: Path, durable_location: str) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_group_message(GROUP, "/music --instrumental a calm piano piece")
            await wait_media(tg, GROUP, "audio", 2)
        body = comet.requests_to("/suno/submit/music")[0].json
        assert body["make_instrumental"] is True
        assert body["gpt_description_prompt"] == "a calm piano piece"


async def test_video_posts_a_video(tmp_path: Path, durable_location: str) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_private_message("/video --duration 10 a boat at dawn --ar 9:16", user_id=USER)
            (video,) = await wait_media(tg, USER, "video")
            tg.inject_photo(USER, b"\xff\xd8\xff\xe0photo", caption="/video make it drift")
            await wait_media(tg, USER, "video", 2)
        text2video, image2video = (r.json for r in comet.requests_to("/kling/v1/videos", "POST"))
        assert text2video == {
            "prompt": "a boat at dawn",
            "model_name": "kling-v2-1",
            "duration": "10",
            "aspect_ratio": "9:16",
        }
        assert image2video["image"] == base64.b64encode(b"\xff\xd8\xff\xe0photo").decode()
        assert image2video["prompt"] == "make it drift"
        assert video.upload is not None and video.upload.data.startswith(b"\x00\x00\x00\x18ftyp")
        assert video.media["duration"] == 10 and video.caption == "🎬 Video: a boat at dawn"


async def test_a_failed_task_and_a_banned_prompt_each_get_a_clear_sentence(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_private_message("/imagine a forbidden-subject", user_id=USER)
            moderated = await tg.wait_for_message(USER, "❌", timeout=10)
            tg.inject_group_message(GROUP, "/imagine a gore scene")
            banned = await tg.wait_for_message(GROUP, "❌", timeout=10)
            comet.fail_next_task("kling", "Content safety check failed")
            tg.inject_private_message("/video a boat", user_id=USER)
            kling = await tg.wait_for_message(USER, "❌ Kling", timeout=10)
        assert moderated.text == (
            "🎨 Imagine: a forbidden-subject\n❌ Midjourney's moderation blocked this image "
            "(its content filters flagged the result). Please try a different prompt."
        )
        assert banned.text == (
            "🎨 Imagine: a gore scene\n❌ Midjourney refused the prompt: it contains a banned "
            "word (“gore”). Please rephrase it and try again."
        )
        assert kling.text is not None and "content moderation refused this video" in kling.text
        for message in (moderated, banned, kling):
            assert "Traceback" not in (message.text or "") and comet.api_key not in (
                message.text or ""
            )
        assert media(tg, USER, "photo") == [] and media(tg, GROUP, "photo") == []


async def test_a_task_past_its_deadline_tells_the_user(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        comet.auto_advance = False  # Midjourney never gets past "submitted"
        async with generation_service(
            tmp_path, comet, tg, location=durable_location, mj_deadline=0.5
        ) as world:
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            expired = await tg.wait_for_message(USER, "stopped waiting", timeout=10)
            task = await world.core.store.get_task(1)
        assert expired.text == (
            "🎨 Imagine: a paper boat\n❌ Midjourney took more than 0 s, so I stopped "
            "waiting for this one. Please try again later."
        ).replace("0 s", "1 s")
        assert task is not None and task.status is TaskStatus.EXPIRED
        assert len(comet.requests_to("/mj/task/list-by-condition")) >= 2


async def test_bad_requests_are_answered_before_anything_is_submitted(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(
            tmp_path, comet, tg, location=durable_location, mj_max_prompt_chars=30
        ) as world:
            for text, reply in [
                ("/imagine", "Tell me what to imagine"),
                ("/imagine " + "long " * 10, "too long (49 characters); the limit is 30"),
                ("/imagine a cat --ar wide", "--ar needs width:height"),
                ("/music --loud a song", "Unknown option --loud"),
                ("/video --duration 7 a boat", "5 or 10"),
                ("/blend", "album with the caption /blend"),
                ("/describe", "Send a photo with the caption /describe"),
            ]:
                tg.inject_private_message(text, user_id=USER)
                await tg.wait_for_message(USER, reply, timeout=10)
            created = await world.core.store.get_task(1)
            tg.inject_callback_query(USER, tg.messages(USER)[0].message_id, "mj:unknown-token")
            await tg.wait_for(lambda: any(c.answered for c in tg.callbacks.values()), timeout=10)
        assert created is None  # refused before any row was written
        assert [r.path for r in comet.requests if "/submit" in r.path] == []
        (callback,) = tg.callbacks.values()
        assert callback.answer == {
            "text": "This button is no longer available.",
            "show_alert": True,
        }


async def test_describe_offers_four_prompts_whose_buttons_imagine_them(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            tg.inject_photo(USER, b"\xff\xd8\xff\xe0describe-me", caption="/describe")
            prompts = await tg.wait_for_message(USER, "Prompts for your image", timeout=10)
            assert button_texts(prompts) == ["🎨 1", "🎨 2", "🎨 3", "🎨 4"]
            tg.inject_callback_query(USER, prompts.message_id, button_data(prompts, "🎨 3"))
            (photo,) = await wait_media(tg, USER, "photo")
        assert "3. a paper boat, variant 3 --ar 5:4" in (prompts.text or "")
        describe = comet.requests_to("/mj/submit/describe")[0].json
        assert describe["base64"].startswith("data:image/jpeg;base64,")
        imagine = comet.requests_to("/mj/submit/imagine")[0].json
        assert imagine == {"prompt": "a paper boat, variant 3 --ar 5:4"}
        assert photo.reply_to == prompts.message_id


async def test_blend_takes_an_album_captioned_blend(tmp_path: Path, durable_location: str) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, location=durable_location):
            album = {"media_group_id": "album-1"}
            tg.inject_photo(USER, b"\xff\xd8one", caption="/blend landscape", extra=album)
            tg.inject_photo(USER, b"\xff\xd8two", extra=album)
            tg.inject_photo(USER, b"\xff\xd8three", extra=album)
            (photo,) = await wait_media(tg, USER, "photo")
        body = comet.requests_to("/mj/submit/blend")[0].json
        assert body["dimensions"] == "LANDSCAPE" and len(body["base64Array"]) == 3
        assert button_texts(photo) == GRID
        assert comet.requests_to("/v1/chat") == []  # no photo of the album went to chat


async def test_results_too_large_for_a_photo_or_an_upload(
    tmp_path: Path, durable_location: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        limits = {"telegram_photo_max_mb": 0.00001, "telegram_upload_max_mb": 0.0002}
        async with generation_service(tmp_path, comet, tg, location=durable_location, **limits):
            tg.inject_private_message("/imagine a paper boat", user_id=USER)
            (document,) = await wait_media(tg, USER, "document")
            tg.inject_private_message("/video a boat", user_id=USER)
            link = await tg.wait_for_message(USER, "too large to upload here", timeout=10)
        assert document.caption == "🎨 Imagine: a paper boat" and button_texts(document) == GRID
        assert link.text is not None and re.search(
            r"watch it at http://127\.0\.0\.1:\d+/media/", link.text
        )
