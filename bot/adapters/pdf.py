"""PDF text extraction with pypdf, behind the core's :class:`~bot.core.media_ports.PdfText` port.

Parsing is CPU work in pure Python, so it runs in a worker thread: a long PDF never stalls
the event loop (other chats keep streaming meanwhile).
"""

from __future__ import annotations

import asyncio
import io

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from bot.core.errors import DocumentUnreadable
from bot.core.models import PdfPages


class PypdfText:
    """:class:`~bot.core.media_ports.PdfText` on pypdf."""

    async def extract(self, data: bytes, *, max_pages: int) -> PdfPages:
        return await asyncio.to_thread(_extract, data, max_pages)


def _extract(data: bytes, max_pages: int) -> PdfPages:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentUnreadable("the PDF is encrypted")
        total = len(reader.pages)
        pages = [reader.pages[i].extract_text() or "" for i in range(min(total, max_pages))]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        # pypdf raises its own errors for broken files, and plain ones from deep inside.
        raise DocumentUnreadable(f"pypdf could not parse it: {type(exc).__name__}") from exc
    return PdfPages(
        text="\n\n".join(p.strip() for p in pages), pages_read=len(pages), pages_total=total
    )
