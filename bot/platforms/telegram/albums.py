"""Telegram albums: collect an album's photos, then either blend them or hand them to chat.

Telegram sends each photo of an album as its own update, in any order, and only one of them
carries the caption. So every album photo is held here (its :data:`ALBUM_WAIT` timer starts in
the filter, before any access check, so an album is always let go of): once no new photo has
come for that long, an album captioned ``/blend`` (for this bot) is blended, and any other
album's updates are processed again, this time for the chat handlers, as if just received.
Photos of a blended album that straggle in later are dropped, not answered as chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from telegram import Message, PhotoSize, Update
from telegram.ext import Application, ContextTypes, filters

from bot.platforms.telegram.messages import Wrapper

__all__ = ["ALBUM_WAIT", "Album", "Albums"]

log = logging.getLogger(__name__)

ALBUM_WAIT: Final = 1.0
"""Seconds without a new album item before the album is complete."""
STRAGGLERS: Final = 60.0
"""Seconds after a blend during which late photos of its album are dropped."""
_MAX_FINISHED: Final = 1024

Blend = Callable[["Album", Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]
"""Blends a complete album (its command's update and context given); errors are the guard's."""


@dataclass
class Album:
    """One album's photo updates so far, as they arrived."""

    updates: list[Update] = field(default_factory=list)
    command: tuple[Update, ContextTypes.DEFAULT_TYPE] | None = None
    """The update captioned /blend and its context, once it has arrived."""
    flush: asyncio.Task[None] | None = None

    @property
    def photos(self) -> list[PhotoSize]:
        """The largest size of each photo, in the album's order (message ids)."""
        messages = [u.effective_message for u in self.updates]
        ordered = sorted((m for m in messages if m is not None), key=lambda m: m.message_id)
        return [m.photo[-1] for m in ordered if m.photo]


class Albums:
    """Holds album photos (see the module docstring); ``is_blend`` tells a /blend caption."""

    def __init__(self, is_blend: Callable[[Message], bool], blend: Blend) -> None:
        self._is_blend = is_blend
        self._blend = blend
        self._albums: dict[str, Album] = {}
        self._finished: dict[str, float] = {}  # blended album -> until when stragglers drop
        self._released: set[tuple[int, int]] = set()  # (chat, message) handed on to chat
        self._tasks: set[asyncio.Task[None]] = set()
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._guard: Wrapper | None = None

    def bind(self, app: Application[Any, Any, Any, Any, Any, Any], guard: Wrapper) -> None:
        self._app, self._guard = app, guard

    def __len__(self) -> int:
        """Albums held right now (their timers have not run out)."""
        return len(self._albums)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def claims(self, message: Message) -> bool:
        """Sync filter (filters run in update order): every album photo, except those
        handed on to the chat handlers. (Re)arms the album's timer."""
        group = message.media_group_id
        if group is None or (message.chat_id, message.message_id) in self._released:
            return False
        loop = asyncio.get_running_loop()
        if self._finished.get(group, 0.0) > loop.time():
            return True  # a straggler of a blended album: the handler finds no album
        album = self._albums.setdefault(group, Album())
        if album.flush is not None:
            album.flush.cancel()
        album.flush = loop.create_task(self._flush(group))
        self._tasks.add(album.flush)
        album.flush.add_done_callback(self._tasks.discard)
        return True

    async def collect(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The handler of claimed photos: remember the photo (no access check, no I/O)."""
        message = update.effective_message
        album = None if message is None else self._albums.get(message.media_group_id or "")
        if message is None or album is None or not message.photo:
            return
        album.updates.append(update)
        if album.command is None and self._is_blend(message):
            album.command = (update, context)

    async def _flush(self, group: str) -> None:
        await asyncio.sleep(ALBUM_WAIT)
        album = self._albums.pop(group, None)
        if album is None:
            return
        if album.command is None:
            await self._release(album.updates)
            return
        now = asyncio.get_running_loop().time()
        if len(self._finished) >= _MAX_FINISHED:
            self._finished = {g: t for g, t in self._finished.items() if t > now}
        self._finished[group] = now + STRAGGLERS
        assert self._guard is not None
        update, context = album.command

        async def blend(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._blend(album, update, context)

        await self._guard(blend)(update, context)

    async def _release(self, updates: list[Update]) -> None:
        """Not a /blend album: its photos go to the chat handlers, in message order."""
        assert self._app is not None
        for update in sorted(updates, key=lambda u: u.update_id):
            message = update.effective_message
            if message is None:
                continue
            key = (message.chat_id, message.message_id)
            self._released.add(key)
            try:
                await self._app.process_update(update)
            except Exception:
                log.exception("telegram: album photo %s could not be handed on", key)
            finally:
                self._released.discard(key)


class AlbumFilter(filters.MessageFilter):
    def __init__(self, albums: Albums) -> None:
        super().__init__(name="album")
        self._albums = albums

    def filter(self, message: Message) -> bool:
        return self._albums.claims(message)
