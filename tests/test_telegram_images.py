"""Images in chat answers on Telegram, end to end: the real python-telegram-bot against the fake
Bot API, the real CometAPI client against the fake CometAPI (its chat and a CDN route)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.cometapi_common import tiny_png
from tests.fakes.telegram import FakeTelegram
from tests.world import chat_requests, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
PNG = tiny_png(size=64)
B64 = base64.b64encode(PNG).decode()


def chunked(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def shown_texts(tg: FakeTelegram) -> list[str]:
    """Every text the person could ever see: each message's texts and captions, every edit."""
    return [t for m in tg.messages(USER) for t in (*m.history, m.text, m.caption) if t is not None]


def assert_no_markup(tg: FakeTelegram) -> None:
    for text in shown_texts(tg):
        assert "base64," not in text and B64[:12] not in text and "](" not in text, text
        assert "![" not in text, text


async def test_a_data_uri_answer_becomes_a_photo_and_history_has_a_placeholder(
    tmp_path: Path,
) -> None:
    answer = f"Here is your cat ![cat](data:image/png;base64,{B64}) — enjoy!"
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=chunked(answer), delay=0.01)
        comet.script_chat(tokens=["Sure."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("draw a cat", user_id=USER)
            await tg.wait_for(lambda: any(m.media_type for m in tg.messages(USER)), timeout=15)
            await tg.wait_for(
                lambda: any("enjoy!" in (m.text or "") for m in tg.messages(USER)), timeout=15
            )
            await tg.wait_idle(quiet=0.3)
            photos = [m for m in tg.messages(USER) if m.media_type == "photo"]
            assert len(photos) == 1
            assert photos[0].upload is not None and photos[0].upload.data == PNG
            texts = [m.text for m in tg.messages(USER) if m.text is not None]
            assert texts in (["Here is your cat — enjoy!"], ["Here is your cat  — enjoy!"])
            assert_no_markup(tg)
            tg.inject_private_message("make the sky red", user_id=USER)
            await tg.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=15)
            await tg.wait_idle(quiet=0.3)
        assert tg.total_429s == 0 and tg.violations == 0
        later = json.dumps(chat_requests(comet)[1])
        assert B64[:12] not in later and "base64" not in later
        assert "[image 1]" in later


async def test_progress_lines_then_a_cdn_url_become_the_picture(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        url = f"{comet.base_url}/media/gen_1.png"
        tokens = [">🕐 Queuing.\n", ">🏃 Progress 14", "...37..", "\n\n![gen", f"_1]({url[:15]}"]
        tokens += [url[15:] + ")"]
        comet.script_chat(tokens=tokens, delay=0.05)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("a lighthouse", user_id=USER)
            await tg.wait_for(lambda: any(m.media_type for m in tg.messages(USER)), timeout=15)
            await tg.wait_for(
                lambda: any("37.." in (m.text or "") for m in tg.messages(USER)), timeout=15
            )
            await tg.wait_idle(quiet=0.3)
        (photo,) = [m for m in tg.messages(USER) if m.media_type == "photo"]
        assert photo.upload is not None and photo.upload.data == tiny_png()
        assert_no_markup(tg)
        assert any("Progress 14...37" in t for t in shown_texts(tg))
        # the image came without the API key: it was a model's URL
        (fetch,) = comet.requests_to("/media/gen_1.png")
        assert "authorization" not in {k.lower() for k in fetch.headers}


@pytest.mark.parametrize(
    ("markup", "sentence"),
    [
        ("![x](data:image/png;base64,@@not-base64@@)", "Image 1 could not be shown"),
        ("![x](http://10.1.2.3/x.png)", "Image 1 could not be shown"),
        ("![x](BASE/media/missing.png)", "Image 1 could not be shown"),
    ],
)
async def test_a_bad_image_is_one_sentence_and_the_text_stays(
    tmp_path: Path, markup: str, sentence: str
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        answer = f"Before. {markup.replace('BASE', comet.base_url)} After."
        comet.script_chat(tokens=chunked(answer, 5))
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("draw", user_id=USER)
            await tg.wait_for(
                lambda: any(sentence in (m.text or "") for m in tg.messages(USER)), timeout=15
            )
            await tg.wait_idle(quiet=0.3)
        (message,) = tg.messages(USER)
        assert message.text is not None
        assert message.text.startswith("Before.") and "After." in message.text
        assert message.media_type is None
        assert_no_markup(tg)


async def test_two_images_go_as_one_album(tmp_path: Path) -> None:
    answer = f"Two: ![a](data:image/png;base64,{B64}) and ![b](data:image/png;base64,{B64})"
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=chunked(answer, 50))
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("two cats", user_id=USER)
            await tg.wait_for(
                lambda: len([m for m in tg.messages(USER) if m.media_type]) == 2, timeout=15
            )
            await tg.wait_idle(quiet=0.3)
        photos = [m for m in tg.messages(USER) if m.media_type == "photo"]
        assert len(photos) == 2 and photos[0].media_group_id == photos[1].media_group_id
        assert photos[0].media_group_id is not None
        assert len(tg.calls("sendMediaGroup", USER)) == 1
        assert_no_markup(tg)


async def test_a_picture_breaking_the_photo_rules_goes_as_a_document(tmp_path: Path) -> None:
    # 2000 x 50: a side ratio over Telegram's 20 for photos (the header says so; enough here).
    wide = PNG[:16] + (2000).to_bytes(4, "big") + (50).to_bytes(4, "big") + PNG[24:]
    encoded = base64.b64encode(wide).decode()
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=chunked(f"A banner: ![b](data:image/png;base64,{encoded})", 40))
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("a banner", user_id=USER)
            await tg.wait_for(lambda: any(m.media_type for m in tg.messages(USER)), timeout=15)
            await tg.wait_idle(quiet=0.3)
        (document,) = [m for m in tg.messages(USER) if m.media_type]
        assert document.media_type == "document"
        assert document.upload is not None and document.upload.data == wide
        assert_no_markup(tg)
