"""Files sent with a question on Telegram, end to end: the real python-telegram-bot against the
fake Bot API (documents from people, getFile, the file download), the real CometAPI client
against the fake CometAPI, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.pdfs import make_pdf
from tests.world import chat_requests, history_of, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
GROUP = -100777


async def test_text_file_is_read_for_this_turn_and_stored_by_name(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Seven."])
        comet.script_chat(tokens=["Still seven."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(
                USER,
                b"line one\nthe secret number is 7\n",
                filename="notes.txt",
                content_type="text/plain",
                caption="what is the secret number?",
            )
            await tg.wait_for_message(USER, "Seven", timeout=10)
            tg.inject_private_message("and again?", user_id=USER)
            await tg.wait_for_message(USER, "Still seven", timeout=10)
            await tg.wait_idle(quiet=0.3)
        first, second = chat_requests(comet)
        question = first["messages"][-1]["content"]
        assert '<file name="notes.txt">' in question and "the secret number is 7" in question
        assert question.endswith("what is the secret number?")
        later = history_of(second)
        assert ("user", "[file: notes.txt]\nwhat is the secret number?") in later
        assert all("secret number is 7" not in str(content) for _, content in later)


async def test_pdf_is_read(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["A report."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(
                USER,
                make_pdf("Quarterly revenue grew by 12 percent", "Costs stayed flat"),
                filename="report.pdf",
                content_type="application/pdf",
                caption="summarise",
            )
            await tg.wait_for_message(USER, "A report", timeout=10)
        question = chat_requests(comet)[0]["messages"][-1]["content"]
        assert "Quarterly revenue grew by 12 percent" in question
        assert "Costs stayed flat" in question and question.endswith("summarise")


async def test_group_document_with_a_mention_is_read(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Done."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(GROUP, b"a,b\n1,2\n", filename="t.csv", content_type="text/csv")
            tg.inject_document(
                GROUP,
                b"x,y\n3,4\n",
                filename="data.csv",
                content_type="text/csv",
                caption="@comet_test_bot add the columns",
                user_id=5,
            )
            await tg.wait_for_message(GROUP, "Done", timeout=10)
            await tg.wait_idle(quiet=0.3)
        (request,) = chat_requests(comet)  # the unaddressed file was ignored
        assert "x,y\n3,4" in request["messages"][-1]["content"]


async def test_zip_is_refused_in_one_sentence_without_download_or_upstream_call(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(
                USER,
                b"PK\x03\x04zipdata",
                filename="archive.zip",
                content_type="application/zip",
                caption="what is inside?",
            )
            reply = await tg.wait_for_message(USER, "archive.zip", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert reply.text == "I can only read text files and PDFs, and archive.zip is not one."
        assert len(tg.messages(USER)) == 1
        assert not tg.calls("getFile") and not chat_requests(comet)


async def test_oversize_file_is_refused_before_download(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg, max_document_mb=0.01):
            tg.inject_document(USER, b"x" * 20_000, filename="big.txt", caption="read this")
            reply = await tg.wait_for_message(USER, "big.txt", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert reply.text == "big.txt is too large for me to read (10 KB at most)."
        assert not tg.calls("getFile") and not chat_requests(comet)


async def test_undecodable_text_is_refused_after_download(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(USER, b"\xff\xfe\x00\x01", filename="a.txt", caption="read")
            reply = await tg.wait_for_message(USER, "a.txt", timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert reply.text == "I could not read a.txt: it is not UTF-8 text."
        assert not chat_requests(comet)


async def test_image_sent_as_a_file_is_looked_at_like_a_photo(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["A cat."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_document(
                USER,
                b"\x89PNG\r\n\x1a\nfake",
                filename="cat.png",
                content_type="image/png",
                caption="what is this?",
            )
            await tg.wait_for_message(USER, "A cat", timeout=10)
        content = chat_requests(comet)[0]["messages"][-1]["content"]
        assert content[0] == {"type": "text", "text": "what is this?"}
        assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
