"""Files attached to a question on Discord, end to end: the real discord.py against the fake
Discord (attachments served by the fake's CDN route, downloads recorded), the real CometAPI
client against the fake CometAPI, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.pdfs import make_pdf
from tests.world import chat_requests, discord_service, history_of

pytestmark = pytest.mark.e2e

WAIT = 15.0


async def test_text_file_is_read_for_this_turn_and_stored_by_name(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        comet.script_chat(tokens=["Seven."])
        comet.script_chat(tokens=["Still seven."])
        async with discord_service(tmp_path, comet, dc):
            notes = dc.add_attachment(dm, "notes.md", b"# Notes\nthe secret number is 7\n")
            await dc.say("what is the secret number?", attachments=[notes])
            await dc.wait_for(lambda: len(dc.messages(dm)) == 1, timeout=WAIT)
            await dc.say("and again?")
            await dc.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=WAIT)
            await dc.wait_for(lambda: len(dc.messages(dm)) == 2, timeout=WAIT)
        first, second = chat_requests(comet)
        question = first["messages"][-1]["content"]
        assert '<file name="notes.md">' in question and "the secret number is 7" in question
        assert question.endswith("what is the secret number?")
        later = history_of(second)
        assert ("user", "[file: notes.md]\nwhat is the secret number?") in later
        assert all("secret number is 7" not in str(content) for _, content in later)


async def test_pdf_in_a_server_mention_is_read(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        guild = dc.make_guild("Comets", channels=["general"])
        general = dc.channel(guild, "general")
        gid = int(general["id"])
        comet.script_chat(tokens=["A report."])
        async with discord_service(tmp_path, comet, dc):
            pdf = make_pdf("Quarterly revenue grew by 12 percent", "Costs stayed flat")
            report = dc.add_attachment(gid, "report.pdf", pdf, "application/pdf")
            await dc.say("summarise", channel=general, mention_bot=True, attachments=[report])
            await dc.wait_for(lambda: dc.last_message(gid), timeout=WAIT)
        question = chat_requests(comet)[0]["messages"][-1]["content"]
        assert "Quarterly revenue grew by 12 percent" in question
        assert "Costs stayed flat" in question and question.endswith("summarise")


async def test_zip_is_refused_in_one_sentence_without_download_or_upstream_call(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        async with discord_service(tmp_path, comet, dc):
            notes = dc.add_attachment(dm, "notes.txt", b"fine")
            archive = dc.add_attachment(dm, "archive.zip", b"PK\x03\x04", "application/zip")
            await dc.say("what is inside?", attachments=[notes, archive])
            await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
        (reply,) = dc.messages(dm)
        assert reply.content == "I can only read text files and PDFs, and archive.zip is not one."
        assert not dc.downloads and not chat_requests(comet)


async def test_oversize_file_is_refused_before_download(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        dm = int(dc.dm_channel()["id"])
        async with discord_service(tmp_path, comet, dc, max_document_mb=0.01):
            big = dc.add_attachment(dm, "big.txt", b"x" * 20_000, "text/plain")
            await dc.say("read this", attachments=[big])
            await dc.wait_for(lambda: dc.last_message(dm), timeout=WAIT)
        (reply,) = dc.messages(dm)
        assert reply.content == "big.txt is too large for me to read (10 KB at most)."
        assert not dc.downloads and not chat_requests(comet)
