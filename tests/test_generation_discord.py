"""Generation on Discord, end to end: the real discord.py against the fake Discord (REST +
gateway), the real CometAPI client against the fake CometAPI, a real SQLite file, the real
poller.

Most tests use a fast pacer and turn the fake's rate limits off, so they do not wait out
Discord's 5 messages per 5 s per channel; the first runs with the real pacing and limits on
and checks that generation never draws a 429.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.core.errors import MessageGone, PlatformUnavailable, RetryLater, SurfaceError
from bot.core.generation.records import ButtonSpec, NewTask, Provider, TaskStatus, TaskUpdate
from bot.core.models import ButtonView, ConversationKey, OutgoingMessage, Platform, StatusView
from bot.platforms.discord.buttons import button_grid
from tests.fakes.cometapi import FakeCometAPI, tiny_png
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.discord_payloads import JSON
from tests.generation_world import (
    discord_custom_id,
    discord_generation_service,
    discord_generation_settings,
    discord_labels,
    running_discord_service,
)

pytestmark = pytest.mark.e2e

WAIT = 15.0
GRID = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
MP3 = b"ID3"
PNG = b"\x89PNG"


# -- helpers ------------------------------------------------------------------------------------


def dm_of(dc: FakeDiscord) -> int:
    return int(dc.dm_channel()["id"])


def with_file(dc: FakeDiscord, channel: int, suffix: str) -> list[FakeMessage]:
    """The bot's messages in ``channel`` that carry a file whose name ends with ``suffix``."""
    return [m for m in dc.messages(channel) if any(f.filename.endswith(suffix) for f in m.files)]


async def wait_files(
    dc: FakeDiscord, channel: int, suffix: str, count: int = 1
) -> list[FakeMessage]:
    found: list[FakeMessage] = await dc.wait_for(
        lambda: len(with_file(dc, channel, suffix)) >= count and with_file(dc, channel, suffix),
        timeout=WAIT,
    )
    return found


async def wait_text(dc: FakeDiscord, channel: int, needle: str) -> FakeMessage:
    """The bot's first message in ``channel`` whose current text contains ``needle``."""

    def find() -> FakeMessage | None:
        return next((m for m in dc.messages(channel) if needle in m.content), None)

    found: FakeMessage = await dc.wait_for(find, timeout=WAIT)
    return found


def reply_target(message: FakeMessage) -> int | None:
    ref = message.message_reference
    return int(ref["message_id"]) if ref else None


def anchor(dc: FakeDiscord, inter: FakeInteraction) -> FakeMessage:
    """The command's own (deferred, then filled) response."""
    return dc.message(inter.original_message_id or 0)


def status_of(dc: FakeDiscord, inter: FakeInteraction) -> FakeMessage:
    """The task's status message: the first channel message replying to the command."""
    response = anchor(dc, inter)
    return next(
        m for m in dc.messages(inter.channel_id) if reply_target(m) == response.id and not m.files
    )


def ephemeral_texts(dc: FakeDiscord, inter: FakeInteraction) -> list[str]:
    return [dc.message(i).content for i in inter.followup_ids if dc.message(i).ephemeral]


def assert_clean(dc: FakeDiscord) -> None:
    """No refused request, and nobody pinged."""
    assert dc.errors == [], dc.errors
    for message in dc.messages(include_deleted=True):
        assert message.pinged_user_ids() == [] and not message.pings_everyone(), message


async def imagine_grid(dc: FakeDiscord, channel: int, prompt: str = "a paper boat") -> FakeMessage:
    await dc.interact(dc.slash("imagine", {"prompt": prompt}))
    (grid,) = await wait_files(dc, channel, ".png")
    return grid


async def click(dc: FakeDiscord, message: FakeMessage, label: str) -> FakeInteraction:
    inter = await dc.interact(dc.click(message, discord_custom_id(message, label)))
    await dc.wait_for(lambda: inter.acked, timeout=WAIT)
    return inter


def image_attachment(dc: FakeDiscord, channel: int, name: str, data: bytes) -> JSON:
    return dc.add_attachment(channel, name, data, "image/png")


# -- /imagine and its buttons -------------------------------------------------------------------


async def test_imagine_shows_progress_then_the_grid_with_its_buttons(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=8) as comet, FakeDiscord() as dc:
        # ~2.5 s of rendering: long enough for progress edits at Discord's real pace
        async with discord_generation_service(
            tmp_path, comet, dc, fast=False, poll_max_interval=0.5
        ):
            dm = dm_of(dc)
            inter = await dc.interact(dc.slash("imagine", {"prompt": "a paper boat --ar 16:9"}))
            (grid,) = await wait_files(dc, dm, ".png")
            await dc.wait_for(lambda: "✅ Done" in status_of(dc, inter).content, timeout=WAIT)
        assert inter.ack_type == 5  # acknowledged at once ("thinking…")
        response, status = anchor(dc, inter), status_of(dc, inter)
        assert response.content == "**/imagine** a paper boat --ar 16:9"
        assert reply_target(status) == response.id and reply_target(grid) == response.id
        assert (
            status.history[0] == "🎨 Imagine: a paper boat --ar 16:9\n⏳ Sending it to Midjourney…"
        )
        bars = [t for t in status.history if re.search(r"[▰▱]{10} \d+%$", t)]
        assert bars and all(t.startswith("🎨 Imagine: a paper boat") for t in bars)
        assert status.content == "🎨 Imagine: a paper boat --ar 16:9\n✅ Done"
        previews = [
            e["image"]["url"]
            for c in dc.calls("PATCH", f"/channels/{dm}/messages/{status.id}")
            if "%" in c.body["content"]
            for e in c.body.get("embeds") or []
        ]
        assert previews and all("/mj/image/" in url for url in previews)  # Midjourney's preview
        assert status.embeds == []  # the preview goes once it is done
        assert grid.files[0].data.startswith(PNG) and grid.files[0].filename.endswith(".png")
        assert grid.content == "🎨 Imagine: a paper boat --ar 16:9"
        assert discord_labels(grid) == GRID
        assert [len(row["components"]) for row in grid.components] == [5, 4]
        for custom_id in grid.custom_ids():
            assert re.fullmatch(r"mj:[A-Za-z0-9_-]{8,16}", custom_id) and len(custom_id) <= 100
        assert comet.requests_to("/mj/submit/imagine")[0].json == {
            "prompt": "a paper boat --ar 16:9"
        }
        assert sum(dc.ratelimit_hits.values()) == 0
        assert_clean(dc)


async def test_u2_submits_its_exact_custom_id_and_the_upscale_has_its_own_buttons(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            grid = await imagine_grid(dc, dm)
            pressed = await click(dc, grid, "U2")
            _, upscale = await wait_files(dc, dm, ".png", 2)
            status = await wait_text(dc, dm, "🔘 U2: a paper boat\n")
            await dc.wait_for(lambda: status.content.endswith("✅ Done"), timeout=WAIT)
        assert pressed.ack_type == 6  # answered at once, silently
        (grid_task,) = [t for t in comet.tasks.values() if t.kind == "IMAGINE"]
        u2 = f"MJ::JOB::upsample::2::{grid_task.hash}"
        assert comet.mj_actions == [(grid_task.id, u2)]
        assert comet.requests_to("/mj/submit/action")[0].json == {
            "taskId": grid_task.id,
            "customId": u2,
        }
        assert reply_target(upscale) == grid.id  # posted as a reply to the original
        assert upscale.content == "🔘 U2: a paper boat"
        labels = discord_labels(upscale)
        assert labels[:4] == ["Upscale (Subtle)", "Upscale (Creative)", "🪄 Vary (Strong)",
                              "🪄 Vary (Subtle)"]  # fmt: skip
        assert "🔍 Custom Zoom" in labels and "⬅️" in labels
        assert not any("Region" in label for label in labels)
        assert len(upscale.components) <= 5
        assert not set(upscale.custom_ids()) & set(grid.custom_ids())  # its own tokens
        assert reply_target(status) == grid.id
        assert status.history[0] == "🔘 U2: a paper boat\n⏳ Queued at Midjourney…"
        assert_clean(dc)


async def test_custom_zoom_asks_with_a_form_and_completes_with_a_modal(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            grid = await imagine_grid(dc, dm)
            await click(dc, grid, "U1")
            _, upscale = await wait_files(dc, dm, ".png", 2)
            await click(dc, upscale, "🔍 Custom Zoom")
            question = await wait_text(dc, dm, "zoom factor from 1 to 2")
            assert reply_target(question) == upscale.id
            assert discord_labels(question) == ["Answer"]
            assert question.custom_ids() == ["mjq:answer"]
            opened = await click(dc, question, "Answer")
            assert opened.ack_type == 9 and opened.modal is not None
            assert opened.modal["title"] == "Custom Zoom"
            wrong = await dc.interact(dc.modal_submit({"answer": "0.5"}, after=opened))
            await dc.wait_for(lambda: ephemeral_texts(dc, wrong), timeout=WAIT)
            again = await click(dc, question, "Answer")
            right = await dc.interact(dc.modal_submit({"answer": "1.5"}, after=again))
            _, _, zoomed = await wait_files(dc, dm, ".png", 3)
            await dc.wait_for(lambda: "✅ Done" in question.content, timeout=WAIT)
        assert wrong.ack_type == 6 and right.ack_type == 6  # each submit answered at once
        assert ephemeral_texts(dc, wrong) == [
            "Reply with a zoom factor from 1 to 2 (e.g. 1.5), or a prompt ending in --zoom 1.5."
        ]
        modal = comet.requests_to("/mj/submit/modal")
        assert len(modal) == 1
        waiting = next(t for t in comet.tasks.values() if t.modal)
        assert modal[0].json == {"taskId": waiting.id, "prompt": "a paper boat --zoom 1.5"}
        assert reply_target(zoomed) == upscale.id and discord_labels(zoomed) == GRID
        assert question.components == []  # the Answer button goes once the task runs
        assert comet.requests_to("/v1/chat") == []  # nothing went to the chat model
        assert_clean(dc)


async def test_a_reply_to_the_question_answers_it_too(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            grid = await imagine_grid(dc, dm)
            await click(dc, grid, "U3")
            _, upscale = await wait_files(dc, dm, ".png", 2)
            await click(dc, upscale, "🔍 Custom Zoom")
            question = await wait_text(dc, dm, "zoom factor from 1 to 2")
            await dc.say("1.8", reply_to=question)
            await wait_files(dc, dm, ".png", 3)
        assert comet.requests_to("/mj/submit/modal")[0].json["prompt"] == "a paper boat --zoom 1.8"
        assert comet.requests_to("/v1/chat") == []


async def test_a_button_of_a_failed_or_unknown_task_says_so(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc) as world:
            dm = dm_of(dc)
            store = world.core.store
            task_id = await store.create_task(
                NewTask(
                    Provider.MIDJOURNEY,
                    "imagine",
                    "dc:1",
                    ConversationKey(Platform.DISCORD, str(dm)),
                    {"prompt": "a boat"},
                )
            )
            (token,) = await store.add_buttons(
                task_id, [ButtonSpec("MJ::JOB::upsample::1::x", "U1", "", "upscale")]
            )
            await store.update_task(TaskUpdate(task_id, status=TaskStatus.FAILED))
            buttons = [("U1", f"mj:{token}"), ("U2", "mj:no-such-token")]
            row = {
                "type": 1,
                "components": [
                    {"type": 2, "style": 2, "label": label, "custom_id": custom_id}
                    for label, custom_id in buttons
                ],
            }
            old = dc.seed_bot_message(dm, "an old grid", components=[row])
            dead = await dc.interact(dc.click(old, f"mj:{token}"))
            unknown = await dc.interact(dc.click(old, "mj:no-such-token"))
            await dc.wait_for(
                lambda: ephemeral_texts(dc, dead) and ephemeral_texts(dc, unknown), timeout=WAIT
            )
        assert ephemeral_texts(dc, dead) == [
            "That task failed or expired, so its buttons no longer work. "
            "Start a new one with /imagine."
        ]
        assert ephemeral_texts(dc, unknown) == ["This button is no longer available."]
        assert [r.path for r in comet.requests if "/submit" in r.path] == []


async def test_access_lists_and_quotas_hold_for_commands_and_buttons(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        bob = dc.make_user("bob")
        guild = dc.make_guild("Comets", channels=["art"], members=[bob])
        sections = {
            "access": {"users": [f"dc:{dc.user['id']}"]},
            "limits": {"daily_imagine": 2},
        }
        async with discord_generation_service(tmp_path, comet, dc, sections=sections):
            await dc.guild_create(guild)
            art = dc.channel(guild, "art")
            channel = int(art["id"])
            await dc.interact(dc.slash("imagine", {"prompt": "a paper boat"}, channel=art))
            (grid,) = await wait_files(dc, channel, ".png")
            stranger = await dc.interact(dc.click(grid, discord_custom_id(grid, "U1"), user=bob))
            uninvited = await dc.interact(
                dc.slash("imagine", {"prompt": "a cat"}, channel=art, user=bob)
            )
            await dc.wait_for(lambda: stranger.acked and uninvited.acked, timeout=WAIT)
            mute = str(discord.Permissions(view_channel=True, use_application_commands=True).value)
            muted = await dc.interact(
                dc.slash("imagine", {"prompt": "a cat"}, channel=art, app_permissions=mute)
            )
            await dc.wait_for(lambda: "permissions" in anchor(dc, muted).content, timeout=WAIT)
            await click(dc, grid, "U1")  # alice's second Midjourney task of the day
            await wait_files(dc, channel, ".png", 2)
            third = await dc.interact(dc.slash("imagine", {"prompt": "a third"}, channel=art))
            await dc.wait_for(lambda: "quota" in anchor(dc, third).content, timeout=WAIT)
        for refused in (stranger, uninvited):
            (answer,) = dc.interaction_responses(refused.id)
            assert answer["type"] == 4 and answer["data"]["flags"] == 64  # private
            assert answer["data"]["content"].startswith("Sorry, this bot is private.")
        assert anchor(dc, muted).content == (
            "I need the Send Messages, Attach Files and Embed Links permissions in this channel "
            "to post the result here."
        )
        assert len(comet.requests_to("/mj/submit/imagine")) == 1
        assert len(comet.requests_to("/mj/submit/action")) == 1  # alice's only


# -- /describe and /blend -----------------------------------------------------------------------


async def test_describe_offers_four_prompts_whose_buttons_imagine_them(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            image = image_attachment(dc, dm, "describe-me.png", tiny_png())
            await dc.interact(dc.slash("describe", {"image": image}))
            prompts = await wait_text(dc, dm, "Prompts for your image")
            assert discord_labels(prompts) == ["🎨 1", "🎨 2", "🎨 3", "🎨 4"]
            await click(dc, prompts, "🎨 3")
            (grid,) = await wait_files(dc, dm, ".png")
        assert "3. a paper boat, variant 3 --ar 5:4" in prompts.content
        describe = comet.requests_to("/mj/submit/describe")[0].json
        assert (
            describe["base64"] == "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
        )
        assert comet.requests_to("/mj/submit/imagine")[0].json == {
            "prompt": "a paper boat, variant 3 --ar 5:4"
        }
        assert reply_target(grid) == prompts.id and discord_labels(grid) == GRID


async def test_blend_takes_two_to_five_image_options(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            options: dict[str, Any] = {
                f"image{n}": image_attachment(dc, dm, f"{n}.png", tiny_png((n, n, n)))
                for n in (1, 2, 3)
            }
            inter = await dc.interact(dc.slash("blend", {**options, "shape": "landscape"}))
            (grid,) = await wait_files(dc, dm, ".png")
        body = comet.requests_to("/mj/submit/blend")[0].json
        assert body["dimensions"] == "LANDSCAPE" and len(body["base64Array"]) == 3
        assert anchor(dc, inter).content == "**/blend** landscape (+3 images)"
        assert discord_labels(grid) == GRID


# -- /music and /video --------------------------------------------------------------------------


async def test_music_posts_two_clips_with_titles_and_covers(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        guild = dc.make_guild("Comets", channels=["studio"])
        async with discord_generation_service(tmp_path, comet, dc):
            await dc.guild_create(guild)
            studio = dc.channel(guild, "studio")
            channel = int(studio["id"])
            options = {"prompt": "a calm piano piece", "instrumental": True}
            await dc.interact(dc.slash("music", options, channel=studio))
            clips = await wait_files(dc, channel, ".mp3", 2)
        body = comet.requests_to("/suno/submit/music")[0].json
        assert body["make_instrumental"] is True
        assert body["gpt_description_prompt"] == "a calm piano piece"
        assert len(clips) == 2
        for clip in clips:
            audio, cover = clip.files
            assert audio.data.startswith(MP3) and audio.filename.endswith(".mp3")
            assert cover.filename == "cover.jpg" and cover.data.startswith(b"\xff\xd8")
            (embed,) = clip.embeds
            assert embed["thumbnail"]["url"] == "attachment://cover.jpg"
            assert embed["author"]["name"] == "Suno" and embed["title"]
            assert clip.content.startswith(f"🎵 {embed['title']}")
        assert_clean(dc)


async def test_custom_music_comes_from_a_form(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            opened = await dc.interact(dc.slash("music", {"custom": True}))
            await dc.wait_for(lambda: opened.modal, timeout=WAIT)
            form = {"style": "emotional punk", "title": "City Lights", "lyrics": "[Verse]\nNeon"}
            submitted = await dc.interact(dc.modal_submit(form, after=opened))
            clips = await wait_files(dc, dm, ".mp3", 2)
        assert opened.ack_type == 9 and submitted.ack_type == 5
        assert comet.requests_to("/suno/submit/music")[0].json == {
            "prompt": "[Verse]\nNeon",
            "tags": "emotional punk",
            "title": "City Lights",
            "make_instrumental": False,
            "mv": "chirp-v4",
        }
        assert anchor(dc, submitted).content == "**/music** City Lights"
        for clip in clips:
            assert clip.content == "🎵 City Lights — emotional punk"
            assert reply_target(clip) == anchor(dc, submitted).id


async def test_video_posts_a_video(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            options = {"prompt": "a boat at dawn", "duration": 10, "aspect_ratio": "9:16"}
            await dc.interact(dc.slash("video", options))
            (video,) = await wait_files(dc, dm, ".mp4")
            photo = image_attachment(dc, dm, "boat.png", tiny_png())
            await dc.interact(dc.slash("video", {"prompt": "make it drift", "image": photo}))
            await wait_files(dc, dm, ".mp4", 2)
        text2video, image2video = (r.json for r in comet.requests_to("/kling/v1/videos", "POST"))
        assert text2video == {
            "prompt": "a boat at dawn",
            "model_name": "kling-v2-1",
            "duration": "10",
            "aspect_ratio": "9:16",
        }
        assert image2video["image"] == base64.b64encode(tiny_png()).decode()
        assert image2video["prompt"] == "make it drift"
        assert video.files[0].data.startswith(b"\x00\x00\x00\x18ftyp")
        assert video.content == "🎬 Video: a boat at dawn"


async def test_a_video_too_large_to_upload_becomes_a_link(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc, discord_upload_max_mb=0.0002):
            dm = dm_of(dc)
            await dc.interact(dc.slash("video", {"prompt": "a boat"}))
            link = await wait_text(dc, dm, "too large to upload here")
        assert re.search(r"watch it at http://127\.0\.0\.1:\d+/media/", link.content)
        assert link.files == []


# -- failures -----------------------------------------------------------------------------------


async def test_a_failed_task_and_a_banned_prompt_each_get_a_clear_sentence(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = dm_of(dc)
            await dc.interact(dc.slash("imagine", {"prompt": "a forbidden-subject"}))
            moderated = await wait_text(dc, dm, "❌ Midjourney's moderation")
            await dc.interact(dc.slash("imagine", {"prompt": "a gore scene"}))
            banned = await wait_text(dc, dm, "❌ Midjourney refused")
            comet.fail_next_task("kling", "Content safety check failed")
            await dc.interact(dc.slash("video", {"prompt": "a boat"}))
            kling = await wait_text(dc, dm, "❌ Kling")
        assert moderated.content == (
            "🎨 Imagine: a forbidden-subject\n❌ Midjourney's moderation blocked this image "
            "(its content filters flagged the result). Please try a different prompt."
        )
        assert banned.content == (
            "🎨 Imagine: a gore scene\n❌ Midjourney refused the prompt: it contains a banned "
            "word (“gore”). Please rephrase it and try again."
        )
        assert "content moderation refused this video" in kling.content
        for message in (moderated, banned, kling):
            assert "Traceback" not in message.content
            assert comet.api_key not in message.content
        assert with_file(dc, dm, ".png") == []


async def test_a_task_past_its_deadline_tells_the_user(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord(rate_limit=None) as dc:
        comet.auto_advance = False  # Midjourney never gets past "submitted"
        async with discord_generation_service(tmp_path, comet, dc, mj_deadline=0.5) as world:
            dm = dm_of(dc)
            await dc.interact(dc.slash("imagine", {"prompt": "a paper boat"}))
            expired = await wait_text(dc, dm, "stopped waiting")
            task = await world.core.store.get_task(1)
        assert expired.content == (
            "🎨 Imagine: a paper boat\n❌ Midjourney took more than 1 s, so I stopped "
            "waiting for this one. Please try again later."
        )
        assert task is not None and task.status is TaskStatus.EXPIRED


async def test_bad_requests_are_answered_before_anything_is_submitted(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc, mj_max_prompt_chars=30) as world:
            dm = dm_of(dc)
            notes = dc.add_attachment(dm, "notes.txt", b"hello", "text/plain")
            photo = image_attachment(dc, dm, "one.png", tiny_png())
            cases: list[tuple[str, dict[str, Any], str]] = [
                ("imagine", {"prompt": "  "}, "Tell me what to imagine"),
                ("imagine", {"prompt": "long " * 10}, "too long (49 characters); the limit is 30"),
                ("imagine", {"prompt": "a cat --ar wide"}, "--ar needs width:height"),
                ("imagine", {"prompt": "a cat", "image": notes}, "notes.txt is not one"),
                ("music", {"prompt": "--loud a song"}, "Unknown option --loud"),
                ("music", {}, "Describe the song"),
                ("video", {"prompt": "a boat --duration 7"}, "5 or 10"),
                ("video", {}, "Describe the video"),
                ("describe", {}, "Attach one image, or give one image link"),
                ("describe", {"link": "ftp://x/y.png"}, "does not look like an image link"),
                ("blend", {"image1": photo, "image2": notes}, "notes.txt is not one"),
            ]
            for name, options, reply in cases:
                inter = await dc.interact(dc.slash(name, options))
                await dc.wait_for(lambda i=inter, r=reply: r in anchor(dc, i).content, timeout=WAIT)
            created = await world.core.store.get_task(1)
        assert created is None  # refused before any row was written
        assert [r.path for r in comet.requests if "/submit" in r.path] == []
        assert with_file(dc, dm, ".png") == []


# -- restarts -----------------------------------------------------------------------------------


async def test_a_button_posted_before_a_restart_still_works(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeDiscord() as dc:
        settings = discord_generation_settings(tmp_path, comet, dc)
        dm = dm_of(dc)
        async with running_discord_service(settings, dc):
            grid = await imagine_grid(dc, dm)
        async with running_discord_service(settings, dc):
            pressed = await click(dc, grid, "U2")
            _, upscale = await wait_files(dc, dm, ".png", 2)
        assert pressed.ack_type == 6
        (grid_task,) = [t for t in comet.tasks.values() if t.kind == "IMAGINE"]
        assert comet.mj_actions == [(grid_task.id, f"MJ::JOB::upsample::2::{grid_task.hash}")]
        assert reply_target(upscale) == grid.id and "Upscale (Subtle)" in discord_labels(upscale)
        assert sum(dc.ratelimit_hits.values()) == 0
        assert_clean(dc)


# -- the outbox ---------------------------------------------------------------------------------


async def test_the_outbox_turns_discord_failures_into_the_cores(tmp_path: Path) -> None:
    async with (
        FakeCometAPI() as comet,
        FakeDiscord(rate_limit=None) as dc,
        discord_generation_service(tmp_path, comet, dc) as world,
    ):
        outbox, pacer = world.bot.outbox, world.pacer
        dm = dm_of(dc)
        key = ConversationKey(Platform.DISCORD, str(dm))
        other = ConversationKey(Platform.DISCORD, dc.dm_channel(dc.make_user("bob"))["id"])
        dc.fail_next(dm, retry_after=40.0, method="POST")  # past discord.py's own patience
        with pytest.raises(RetryLater):  # a bare post only reports the 429 ...
            await outbox.post(key, OutgoingMessage("hello"))
        assert not pacer.is_blocked(str(dm))
        dc.fail_next(dm, retry_after=40.0, method="POST")
        with pytest.raises(PlatformUnavailable, match="rate limited"):  # ... paced, it counts
            await outbox.paced(key, lambda: outbox.post(key, OutgoingMessage("hi")), attempts=1)
        assert pacer.is_blocked(str(dm))
        edits = len(dc.calls("PATCH"))
        await outbox.edit(key, "1", StatusView("50%"))  # progress: dropped while blocked
        assert len(dc.calls("PATCH")) == edits
        with pytest.raises(MessageGone):
            await outbox.edit(other, "1", StatusView("done", final=True))
        with pytest.raises(SurfaceError):
            await outbox.post(ConversationKey(Platform.DISCORD, "1"), OutgoingMessage("hi"))


def test_button_rows_fit_discord() -> None:
    views = [ButtonView(f"t{n}", f"B{n}") for n in range(30)]
    assert [len(r) for r in button_grid(((views[0], views[1]), (views[2],)))] == [2, 1]
    seven = tuple((v,) for v in views[:7])
    assert [len(r) for r in button_grid(seven)] == [5, 2]  # more than 5 rows: re-flowed
    assert sum(len(r) for r in button_grid((tuple(views),))) == 25  # at most 25
    assert all(len(r) <= 5 for r in button_grid((tuple(views),)))
