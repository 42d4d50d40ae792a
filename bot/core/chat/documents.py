"""Files sent with a question: which ones the bot reads, the caps, and how their text reaches
the model.

A platform asks :meth:`DocumentReader.check` with what it knows before downloading (name,
MIME type, size), downloads only when that passes, then hands the bytes to
:meth:`DocumentReader.read`. Text files are decoded as UTF-8; PDFs go through the
:class:`~bot.core.media_ports.PdfText` port (a third-party library, so it lives in
``bot.adapters.pdf``). Anything else, anything over a cap, a file that is not valid UTF-8: one
sentence
(:class:`~bot.core.errors.UserFacingError`) and no upstream call.

The file's text goes to the model with this turn only (:func:`framed_question`); the stored
turn keeps the file's name (:func:`file_marks`), so later requests never resend the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.errors import DocumentUnreadable, UserFacingError
from bot.core.media_ports import PdfText
from bot.core.models import DocumentText

MB = 1024 * 1024


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Files people send as questions: prose, data and source code. By extension, because
# platforms often label code files application/octet-stream.
TEXT_EXTENSIONS = _words(
    "txt text md markdown rst csv tsv json jsonl ndjson yaml yml toml ini cfg conf log xml "
    "html htm css scss js mjs cjs ts tsx jsx py pyi java kt kts scala c h cc cpp cxx hpp cs "
    "go rs rb php pl lua r swift m sh bash zsh fish ps1 bat sql graphql proto tex srt vtt "
    "diff patch gitignore dockerfile makefile"
)
TEXT_MIME_TYPES = _words(
    "application/json application/ld+json application/xml application/x-yaml "
    "application/yaml application/toml application/javascript application/x-javascript "
    "application/x-sh application/sql application/x-python application/x-tex"
)


class DocumentKind(StrEnum):
    TEXT = "text"
    PDF = "pdf"
    IMAGE = "image"
    """An image sent as a file: the platform treats it as a photo."""


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_bytes: int = 10 * MB
    """Largest file downloaded at all (Telegram lets bots download 20 MB at most)."""
    max_pdf_pages: int = 30
    """Pages of a PDF read; the rest is left out (and the model told so)."""
    max_chars: int = 20_000
    """Longest text sent to the model from one file."""


def _extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    if "." not in base:
        return base  # Makefile, Dockerfile
    return base.rsplit(".", 1)[-1]


def classify(name: str, mime_type: str | None) -> DocumentKind | None:
    """What kind of file this is for the bot, or ``None`` when it cannot read it."""
    mime = (mime_type or "").split(";")[0].strip().lower()
    ext = _extension(name)
    if mime == "application/pdf" or ext == "pdf":
        return DocumentKind.PDF
    if mime.startswith("image/"):
        return DocumentKind.IMAGE
    if mime.startswith("text/") or mime in TEXT_MIME_TYPES or ext in TEXT_EXTENSIONS:
        return DocumentKind.TEXT
    return None


class DocumentReader:
    """Checks and reads files sent with a question (see the module doc)."""

    def __init__(self, limits: DocumentLimits | None = None, pdf: PdfText | None = None) -> None:
        self.limits = limits or DocumentLimits()
        self._pdf = pdf

    def check(self, name: str, mime_type: str | None, size: int | None) -> DocumentKind:
        """Refuse, before any download, a file the bot cannot read or one over the size cap."""
        kind = classify(name, mime_type)
        if kind is None or (kind is DocumentKind.PDF and self._pdf is None):
            readable = "text files and PDFs" if self._pdf is not None else "text files"
            raise UserFacingError(f"I can only read {readable}, and {name} is not one.")
        if size is not None and size > self.limits.max_bytes:
            raise UserFacingError(
                f"{name} is too large for me to read ({_megabytes(self.limits.max_bytes)} at most)."
            )
        return kind

    async def read(self, name: str, mime_type: str | None, data: bytes) -> DocumentText:
        """The text of a downloaded file, checked again (a platform may not know the size)."""
        kind = self.check(name, mime_type, len(data))
        if kind is DocumentKind.PDF:
            return await self._read_pdf(name, data)
        if kind is DocumentKind.IMAGE:
            raise UserFacingError(f"{name} is an image; send it as a photo and I will look at it.")
        return self._capped(name, _decode(name, data))

    async def _read_pdf(self, name: str, data: bytes) -> DocumentText:
        assert self._pdf is not None  # check() refused PDFs without a reader
        try:
            pages = await self._pdf.extract(data, max_pages=self.limits.max_pdf_pages)
        except DocumentUnreadable as exc:
            raise UserFacingError(f"I could not read {name}: it is damaged or locked.") from exc
        if not pages.text.strip():
            raise UserFacingError(f"I found no text in {name} (a scanned PDF has none to read).")
        document = self._capped(name, pages.text)
        if pages.pages_read < pages.pages_total:
            part = f"pages 1-{pages.pages_read} of {pages.pages_total}"
            return DocumentText(document.name, document.text, part=part)
        return document

    def _capped(self, name: str, text: str) -> DocumentText:
        if len(text) > self.limits.max_chars:
            raise UserFacingError(
                f"{name} is too long for me ({len(text):,} characters; "
                f"the limit is {self.limits.max_chars:,})."
            )
        return DocumentText(name, text)


def _decode(name: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as exc:
        raise UserFacingError(f"I could not read {name}: it is not UTF-8 text.") from exc
    if "\x00" in text:  # a binary file with a text name
        raise UserFacingError(f"I could not read {name}: it is not UTF-8 text.")
    return text


def _megabytes(size: int) -> str:
    if size < MB:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / MB:.3g} MB"


def framed_question(question: str, documents: tuple[DocumentText, ...]) -> str:
    """The question as the model gets it this turn: each file's text, delimited and named,
    then the question."""
    if not documents:
        return question
    parts = []
    for doc in documents:
        label = doc.name if doc.part is None else f"{doc.name} ({doc.part})"
        parts.append(f'<file name="{label}">\n{doc.text.strip()}\n</file>')
    parts.append(question or "(The user sent the file(s) above without a question.)")
    return "\n\n".join(parts)


def file_marks(question: str, documents: tuple[DocumentText, ...]) -> str:
    """The question as it is stored: the files' names, not their text."""
    if not documents:
        return question
    marks = " ".join(f"[file: {doc.name}]" for doc in documents)
    return f"{marks}\n{question}" if question else marks
