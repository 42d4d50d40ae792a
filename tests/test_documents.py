"""Files sent with a question: which are read, the caps, the framing for the model, the stored
turn (core, with a scripted model), and the pypdf adapter on real small PDFs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.adapters.pdf import PypdfText
from bot.core.chat.documents import (
    DocumentKind,
    DocumentLimits,
    DocumentReader,
    classify,
    file_marks,
    framed_question,
)
from bot.core.chat.service import ChatConfig, ChatService
from bot.core.errors import DocumentUnreadable, UserFacingError
from bot.core.models import DocumentText, PdfPages, Role
from bot.core.pacing import Pacer, telegram_rules
from bot.store import Store
from tests.fakes.clock import FakeClock
from tests.pdfs import make_pdf
from tests.test_chat_service import KEY, ScriptedModel, incoming, reply_for


@pytest.mark.parametrize(
    ("name", "mime", "kind"),
    [
        ("notes.txt", "text/plain", DocumentKind.TEXT),
        ("README.md", None, DocumentKind.TEXT),
        ("data.csv", "text/csv", DocumentKind.TEXT),
        ("x.json", "application/json", DocumentKind.TEXT),
        ("main.py", "application/octet-stream", DocumentKind.TEXT),  # by extension
        ("Makefile", None, DocumentKind.TEXT),
        ("paper.pdf", "application/pdf", DocumentKind.PDF),
        ("scan.PDF", None, DocumentKind.PDF),
        ("cat.png", "image/png", DocumentKind.IMAGE),
        ("archive.zip", "application/zip", None),
        ("setup.exe", "application/x-msdownload", None),
        ("blob", "application/octet-stream", None),
    ],
)
def test_classify(name: str, mime: str | None, kind: DocumentKind | None) -> None:
    assert classify(name, mime) is kind


class FakePdf:
    def __init__(self, text: str = "pdf text", total: int = 1, broken: bool = False) -> None:
        self.text, self.total, self.broken = text, total, broken
        self.asked: list[int] = []

    async def extract(self, data: bytes, *, max_pages: int) -> PdfPages:
        self.asked.append(max_pages)
        if self.broken:
            raise DocumentUnreadable("broken")
        return PdfPages(self.text, min(max_pages, self.total), self.total)


def refusal(excinfo: pytest.ExceptionInfo[UserFacingError]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and text.endswith(".") and ". " not in text  # one sentence
    return text


def test_check_refuses_unreadable_types_and_big_files_before_download() -> None:
    reader = DocumentReader(DocumentLimits(max_bytes=1000), FakePdf())
    assert reader.check("a.txt", "text/plain", 1000) is DocumentKind.TEXT
    with pytest.raises(UserFacingError) as info:
        reader.check("archive.zip", "application/zip", 10)
    assert "text files and PDFs" in refusal(info) and "archive.zip" in str(info.value)
    with pytest.raises(UserFacingError) as info:
        reader.check("big.txt", "text/plain", 1001)
    assert "too large" in refusal(info)


def test_without_a_pdf_reader_pdfs_are_refused() -> None:
    with pytest.raises(UserFacingError, match=r"only read text files, and a\.pdf"):
        DocumentReader().check("a.pdf", "application/pdf", 10)


async def test_read_decodes_utf8_and_refuses_binary_or_too_long_text() -> None:
    reader = DocumentReader(DocumentLimits(max_chars=10))
    doc = await reader.read("a.txt", "text/plain", "\ufeffhéllo".encode())
    assert doc == DocumentText("a.txt", "héllo")
    with pytest.raises(UserFacingError, match="not UTF-8"):
        await reader.read("a.txt", "text/plain", b"\xff\xfe\x00bad")
    with pytest.raises(UserFacingError, match="not UTF-8"):
        await reader.read("a.py", None, b"ab\x00cd")
    with pytest.raises(UserFacingError, match="too long"):
        await reader.read("a.txt", "text/plain", b"x" * 11)


async def test_pdf_pages_capped_and_failures_are_one_sentence() -> None:
    pdf = FakePdf("page text", total=50)
    reader = DocumentReader(DocumentLimits(max_pdf_pages=3), pdf)
    doc = await reader.read("r.pdf", "application/pdf", b"%PDF")
    assert pdf.asked == [3]
    assert doc == DocumentText("r.pdf", "page text", part="pages 1-3 of 50")
    broken = DocumentReader(pdf=FakePdf(broken=True))
    with pytest.raises(UserFacingError, match=r"could not read r\.pdf"):
        await broken.read("r.pdf", "application/pdf", b"%PDF")
    empty = DocumentReader(pdf=FakePdf(text="  "))
    with pytest.raises(UserFacingError, match=r"no text in r\.pdf"):
        await empty.read("r.pdf", "application/pdf", b"%PDF")


def test_framing_and_stored_marks() -> None:
    docs = (DocumentText("a.txt", "alpha\n"), DocumentText("b.pdf", "beta", part="pages 1-2 of 9"))
    framed = framed_question("compare them", docs)
    assert framed == (
        '<file name="a.txt">\nalpha\n</file>\n\n'
        '<file name="b.pdf (pages 1-2 of 9)">\nbeta\n</file>\n\ncompare them'
    )
    assert file_marks("compare them", docs) == "[file: a.txt] [file: b.pdf]\ncompare them"
    assert file_marks("", docs[:1]) == "[file: a.txt]"
    assert framed_question("q", ()) == "q" and file_marks("q", ()) == "q"


@pytest.fixture
async def service() -> AsyncIterator[tuple[ChatService, ScriptedModel, Store, FakeClock, Pacer]]:
    clock = FakeClock()
    model = ScriptedModel(clock)
    async with Store.open(":memory:") as store, clock.auto():
        config = ChatConfig(default_model="gpt-4o-mini", system_prompt="Be brief.")
        chat = ChatService(model=model, store=store, config=config)
        yield chat, model, store, clock, Pacer(telegram_rules(), clock=clock)


async def test_file_text_goes_upstream_this_turn_only_and_the_turn_stores_the_name(
    service: tuple[ChatService, ScriptedModel, Store, FakeClock, Pacer],
) -> None:
    chat, model, store, clock, pacer = service
    doc = DocumentText("notes.txt", "the secret number is 7")
    reply, _ = reply_for(clock, pacer)
    await chat.answer(incoming("what number?", documents=(doc,)), reply)
    reply, _ = reply_for(clock, pacer)
    await chat.answer(incoming("and again?"), reply)
    first = model.requests[0][1][-1].content
    assert "the secret number is 7" in first and first.endswith("what number?")
    later = model.requests[1][1]
    assert all("secret number" not in m.content for m in later)
    turns = await store.recent_turns(KEY, limit=10)
    assert turns[0].role is Role.USER and turns[0].content == "[file: notes.txt]\nwhat number?"


async def test_a_file_without_a_question_is_answered(
    service: tuple[ChatService, ScriptedModel, Store, FakeClock, Pacer],
) -> None:
    chat, model, store, clock, pacer = service
    reply, _ = reply_for(clock, pacer)
    await chat.answer(incoming("", documents=(DocumentText("a.md", "# Title"),)), reply)
    assert "# Title" in model.requests[0][1][-1].content
    assert (await store.recent_turns(KEY, limit=2))[0].content == "[file: a.md]"


async def test_pypdf_adapter_reads_a_real_pdf_up_to_the_page_cap() -> None:
    pdf = make_pdf("First page says hello", "Second page (two)", "Third page")
    pages = await PypdfText().extract(pdf, max_pages=2)
    assert "First page says hello" in pages.text and "Second page (two)" in pages.text
    assert "Third" not in pages.text
    assert (pages.pages_read, pages.pages_total) == (2, 3)


@pytest.mark.parametrize("data", [b"%PDF-1.4 truncated", b"not a pdf at all"])
async def test_pypdf_adapter_turns_broken_files_into_a_core_error(data: bytes) -> None:
    with pytest.raises(DocumentUnreadable):
        await PypdfText().extract(data, max_pages=2)


async def test_the_reader_and_pypdf_together() -> None:
    reader = DocumentReader(DocumentLimits(max_pdf_pages=1), PypdfText())
    doc = await reader.read("r.pdf", "application/pdf", make_pdf("Only this", "Not this"))
    assert doc == DocumentText("r.pdf", "Only this", part="pages 1-1 of 2")
