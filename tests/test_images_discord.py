"""``/image`` on Discord, end to end: the real discord.py against the fake Discord (REST +
gateway), the real CometAPI client against the fake images API, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.generation.images import USAGE
from tests.fakes.cometapi import FakeCometAPI, tiny_png
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.generation_world import discord_generation_service, open_store

pytestmark = pytest.mark.e2e

WAIT = 15.0
QUOTA = {"limits": {"daily_images": 2}}


def pictures(dc: FakeDiscord) -> list[FakeMessage]:
    dm = int(dc.dm_channel()["id"])
    return [m for m in dc.messages(dm) if any(f.filename.endswith(".png") for f in m.files)]


def response(dc: FakeDiscord, inter: FakeInteraction) -> FakeMessage:
    return dc.message(inter.original_message_id or 0)


async def said(dc: FakeDiscord, inter: FakeInteraction, needle: str) -> str:
    await dc.wait_for(
        lambda: inter.original_message_id and needle in response(dc, inter).content, WAIT
    )
    return response(dc, inter).content


async def test_image_posts_an_attachment_and_usage_counts_it(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc, sections=QUOTA):
            inter = await dc.interact(dc.slash("image", {"prompt": "a cat"}))
            (picture,) = await dc.wait_for(lambda: pictures(dc), timeout=WAIT)
            echo = await said(dc, inter, "/image")
            usage = await dc.interact(dc.slash("usage"))
            shown = await said(dc, usage, "Pictures")
        assert picture.files[0].data == comet.picture and picture.content == "🖼 a cat"
        ref = picture.message_reference or {}
        assert int(ref["message_id"]) == response(dc, inter).id  # a reply to the command
        assert echo == "**/image** a cat"
        assert comet.requests_to("/v1/images/generations")[0].json["model"] == "gpt-image-1"
        assert "Pictures: 1 — 1 of 2 left" in shown.splitlines()
        (command,) = [c for c in dc.commands() if c["name"] == "image"]
        options = {o["name"]: o for o in command["options"]}
        assert [c["value"] for c in options["model"]["choices"]] == ["gpt-image-1", "dall-e-3"]
        assert not options["prompt"].get("required") and options["image"]["type"] == 11


async def test_image_with_an_attachment_and_a_model_uses_edits(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc):
            dm = int(dc.dm_channel()["id"])
            photo = dc.add_attachment(dm, "boat.png", tiny_png(), "image/png")
            options = {"prompt": "make the sky red", "model": "dall-e-3", "image": photo}
            inter = await dc.interact(dc.slash("image", options))
            await dc.wait_for(lambda: pictures(dc), timeout=WAIT)
            echo = await said(dc, inter, "/image")
        (call,) = comet.image_calls
        assert call.path == "/v1/images/edits" and call.data == tiny_png()
        assert (call.fields["model"], call.fields["prompt"]) == ("dall-e-3", "make the sky red")
        assert pictures(dc)[0].files[0].data == comet.picture  # a url answer, downloaded
        assert echo == "**/image** make the sky red (+1 image)"


async def test_bare_image_and_a_refusal_each_get_one_sentence(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord(rate_limit=None) as dc:
        async with discord_generation_service(tmp_path, comet, dc, sections=QUOTA):
            bare = await dc.interact(dc.slash("image"))
            assert await said(dc, bare, "Usage") == USAGE
            assert not comet.image_calls
            refused = await dc.interact(dc.slash("image", {"prompt": "a forbidden-subject"}))
            text = await said(dc, refused, "refused")
            async with open_store(tmp_path) as store:
                used = await store.usage_today(f"dc:{dc.user['id']}")
        assert text == (
            "The image model gpt-image-1 refused this prompt (it may break its content "
            "policy); please try a different one."
        )
        assert used.get("images", 0) == 0 and not pictures(dc)
