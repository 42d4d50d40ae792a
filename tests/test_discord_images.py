"""Images in chat answers on Discord, end to end: the real discord.py against the fake Discord,
the real CometAPI client against the fake CometAPI (its chat and a CDN route)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.cometapi_common import tiny_png
from tests.fakes.discord import FakeDiscord
from tests.world import chat_requests, discord_service

pytestmark = pytest.mark.e2e

WAIT = 15.0
PNG = tiny_png(size=64)
B64 = base64.b64encode(PNG).decode()


def chunked(text: str, size: int = 7) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def assert_no_markup(dc: FakeDiscord, channel: int) -> None:
    for message in dc.messages(channel):
        for text in (*message.history, message.content):
            assert "base64," not in text and B64[:12] not in text, text
            assert "![" not in text and "](" not in text, text


async def test_a_data_uri_answer_becomes_an_attachment_and_history_has_a_placeholder(
    tmp_path: Path,
) -> None:
    answer = f"Here is your cat ![cat](data:image/png;base64,{B64}) enjoy!"
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=chunked(answer), delay=0.01)
        comet.script_chat(tokens=["Sure."])
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("draw a cat")
            dm = int(sent["channel_id"])
            await dc.wait_for(lambda: any(m.attachments for m in dc.messages(dm)), timeout=WAIT)
            await dc.wait_for(
                lambda: any("enjoy!" in m.content for m in dc.messages(dm)), timeout=WAIT
            )
            (pictured,) = [m for m in dc.messages(dm) if m.attachments]
            assert [a["filename"] for a in pictured.attachments] == ["image-1.png"]
            assert pictured.attachments[0]["size"] == len(PNG)
            assert_no_markup(dc, dm)
            await dc.say("make the sky red")
            await dc.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=WAIT)
        later = json.dumps(chat_requests(comet)[1])
        assert B64[:12] not in later and "base64" not in later and "[image 1]" in later
        assert dc.errors == []


async def test_progress_lines_then_a_cdn_url_become_the_attachment(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        url = f"{comet.base_url}/media/gen_1.png"
        tokens = [">🕐 Queuing.\n", ">🏃 Progress 14", "...37..", "\n\n![gen", f"_1]({url[:15]}"]
        tokens += [url[15:] + ")"]
        comet.script_chat(tokens=tokens, delay=0.05)
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("a lighthouse")
            dm = int(sent["channel_id"])
            await dc.wait_for(lambda: any(m.attachments for m in dc.messages(dm)), timeout=WAIT)
            await dc.wait_for(
                lambda: any("Progress 14...37" in m.content for m in dc.messages(dm)),
                timeout=WAIT,
            )
            assert_no_markup(dc, dm)


async def test_an_image_url_that_404s_is_one_sentence_and_the_text_stays(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        answer = f"Before. ![x]({comet.base_url}/media/missing.png) After."
        comet.script_chat(tokens=chunked(answer, 5))
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("draw")
            dm = int(sent["channel_id"])
            await dc.wait_for(
                lambda: any("could not be shown" in m.content for m in dc.messages(dm)),
                timeout=WAIT,
            )
        (message,) = dc.messages(dm)
        assert message.content.startswith("Before.") and "After." in message.content
        assert "Image 1 could not be shown: it is gone." in message.content
        assert not message.attachments
        assert_no_markup(dc, dm)


async def test_a_picture_over_the_upload_limit_is_one_line(tmp_path: Path) -> None:
    big = PNG + bytes(11 * 1024 * 1024)  # over Discord's 10 MB, under the bot's 20 MB cap
    encoded = base64.b64encode(big).decode()
    answer = f"Big: ![b](data:image/png;base64,{encoded}) end."
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        comet.script_chat(tokens=chunked(answer, 256 * 1024))
        async with discord_service(tmp_path, comet, dc):
            sent = await dc.say("a huge one")
            dm = int(sent["channel_id"])
            await dc.wait_for(
                lambda: any("too large to attach" in m.content for m in dc.messages(dm)),
                timeout=WAIT,
            )
            await dc.wait_for(
                lambda: any(
                    m.content.startswith("Big:") and "end." in m.content for m in dc.messages(dm)
                ),
                timeout=WAIT,
            )
            assert not any(m.attachments for m in dc.messages(dm))
            assert_no_markup(dc, dm)
        assert dc.errors == []
