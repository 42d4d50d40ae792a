"""``/image`` on Telegram, end to end: the real python-telegram-bot against the fake Bot API,
the real CometAPI client against the fake images API, a real SQLite file (quotas)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.generation.images import USAGE
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.generation_world import generation_service, open_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
QUOTA = {"limits": {"daily_images": 2}}


def photos(tg: FakeTelegram) -> list[StoredMessage]:
    return [m for m in tg.messages(USER) if m.from_bot and m.media_type == "photo"]


def texts(tg: FakeTelegram) -> list[str]:
    return [m.text for m in tg.messages(USER) if m.from_bot and m.text]


async def test_image_posts_a_photo_and_counts_it(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, sections=QUOTA):
            command = tg.inject_private_message("/image a cat", user_id=USER)
            (photo,) = await tg.wait_for(lambda: photos(tg), timeout=10)
            tg.inject_private_message("/usage", user_id=USER)
            usage = await tg.wait_for(lambda: [t for t in texts(tg) if "Pictures" in t], 10)
        assert photo.upload is not None and photo.upload.data == comet.picture
        assert photo.caption == "🖼 a cat" and photo.reply_to == command.message_id
        assert comet.requests_to("/v1/images/generations")[0].json == {
            "model": "gpt-image-1",
            "prompt": "a cat",
            "n": 1,
            "size": "1024x1024",
        }
        assert "Pictures: 1 — 1 of 2 left" in usage[0].splitlines()


async def test_image_with_a_photo_or_a_reply_to_one_uses_edits(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg):
            tg.inject_photo(USER, b"\xff\xd8\xff\xe0mine", caption="/image make the sky red")
            await tg.wait_for(lambda: len(photos(tg)) == 1, timeout=10)
            original = tg.inject_photo(USER, b"\xff\xd8\xff\xe0other")
            tg.inject_private_message("/image --model dall-e-3 paint it", reply_to=original)
            await tg.wait_for(lambda: len(photos(tg)) == 2, timeout=10)
        first, second = comet.image_calls
        assert first.path == second.path == "/v1/images/edits"
        assert (first.fields["prompt"], first.data) == ("make the sky red", b"\xff\xd8\xff\xe0mine")
        assert first.fields["model"] == "gpt-image-1" and first.filename == "image.jpg"
        assert (second.fields["model"], second.fields["prompt"]) == ("dall-e-3", "paint it")
        assert second.data == b"\xff\xd8\xff\xe0other"
        assert not comet.requests_to("/v1/images/generations")
        assert all(p.upload is not None and p.upload.data == comet.picture for p in photos(tg))


async def test_bare_image_and_an_unknown_model_get_a_sentence_and_no_call(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg):
            tg.inject_private_message("/image", user_id=USER)
            await tg.wait_for(lambda: USAGE in texts(tg), timeout=10)
            tg.inject_private_message("/image --model flux-x a cat", user_id=USER)
            await tg.wait_for(lambda: len(texts(tg)) == 2, timeout=10)
            await asyncio.sleep(0.2)
        assert texts(tg)[1].startswith("flux-x is not an image model here")
        assert not comet.image_calls and not photos(tg)


async def test_a_content_policy_refusal_is_one_sentence_and_refunded(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, sections=QUOTA):
            tg.inject_private_message("/image a forbidden-subject", user_id=USER)
            await tg.wait_for(lambda: texts(tg), timeout=10)
            async with open_store(tmp_path) as store:
                used = await store.usage_today(f"tg:{USER}")
        assert texts(tg) == [
            "The image model gpt-image-1 refused this prompt (it may break its content "
            "policy); please try a different one."
        ]
        assert used.get("images", 0) == 0
        assert not photos(tg)


async def test_the_daily_quota_refuses_before_any_call(tmp_path: Path) -> None:
    one = {"limits": {"daily_images": 1}}
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg, sections=one):
            tg.inject_private_message("/image a cat", user_id=USER)
            await tg.wait_for(lambda: photos(tg), timeout=10)
            tg.inject_private_message("/image a dog", user_id=USER)
            await tg.wait_for(lambda: texts(tg), timeout=10)
        assert texts(tg)[0].startswith("You have used your 1 picture for today")
        assert len(comet.image_calls) == 1


async def test_image_is_in_the_menu_and_in_help(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram(rate_limits=False) as tg:
        async with generation_service(tmp_path, comet, tg):
            tg.inject_private_message("/help", user_id=USER)
            await tg.wait_for(lambda: texts(tg), timeout=10)
        (menu,) = [c.params for c in tg.calls("setMyCommands")]
        assert "image" in str(menu)
        assert "/image PROMPT" in texts(tg)[0]
