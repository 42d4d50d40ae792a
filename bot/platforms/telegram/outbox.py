"""Telegram as the task poller reaches it: :class:`bot.core.ports.Outbox` by conversation key.

Every call goes through :meth:`~bot.core.pacing.Pacer.call` of the same pacer chat replies
use (posts and final edits urgently, progress edits at edit priority), so generation never
pushes a chat over Telegram's budgets. A ``RetryAfter`` becomes
:class:`~bot.core.errors.RetryLater`, which penalizes the chat's lane in the pacer (nothing
at all goes to that chat until it passes): a post (inside :meth:`TelegramOutbox.paced`) and
a final edit are retried after it, and a progress edit is simply dropped (a newer one, or
the final view, follows). Texts are plain: no parse mode, so a prompt can never break
Telegram's parser.

A group that became a supergroup answers its old id with ``ChatMigrated``: the call is made
again at the new id, which every later call uses at once, and the move is reported
(:meth:`TelegramOutbox.migrated`) so the conversation and its tasks follow in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import FileSizeLimit, MessageLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.core.chat.markdown import utf16_len
from bot.core.chat.pictures import image_size
from bot.core.errors import MessageGone, PlatformUnavailable, RetryLater, SurfaceError
from bot.core.models import (
    ConversationKey,
    MediaFile,
    MediaKind,
    MediaLimits,
    OutgoingMessage,
    StatusView,
)
from bot.core.pacing import TELEGRAM_GROUP, TELEGRAM_PRIVATE, Pacer
from bot.platforms.common import BUTTON_PREFIX, TELEGRAM_ROUTE, PacedOutbox
from bot.platforms.telegram.surface import GONE_MARKERS, retry_seconds

__all__ = ["MEDIA_LIMITS", "TelegramOutbox", "clip"]

log = logging.getLogger(__name__)

MEDIA_LIMITS: Final = MediaLimits(
    photo_max_bytes=int(FileSizeLimit.PHOTOSIZE_UPLOAD),
    upload_max_bytes=int(FileSizeLimit.FILESIZE_UPLOAD),
)
"""Telegram's own limits (a local Bot API server allows more: see ``[generation]``)."""
PHOTO_MAX_SIDES: Final = 10_000  # width + height of a photo
PHOTO_MAX_RATIO: Final = 20
ALBUM_SIZE: Final = 10
MEDIA_READ_TIMEOUT: Final = 60.0
MEDIA_WRITE_TIMEOUT: Final = 300.0
_NO_PREVIEW: Final = LinkPreviewOptions(is_disabled=True)
T = TypeVar("T")
Migrated = Callable[[str, str], Awaitable[None]]
"""Told ``(old chat id, new chat id)`` when a group turned into a supergroup."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 units (Telegram's measure), with an ellipsis."""
    if utf16_len(text) <= limit:
        return text
    cut = text[: limit - 1]
    while utf16_len(cut) > limit - 1:
        cut = cut[:-1]
    return cut + "…"


def _translate(exc: TelegramError) -> SurfaceError:
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_seconds(exc))
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        if any(marker in text for marker in GONE_MARKERS):
            return MessageGone(exc.message)
        return SurfaceError(f"Telegram: {exc.message}")
    if isinstance(exc, Forbidden):
        return SurfaceError(f"Telegram: {exc.message}")
    if isinstance(exc, NetworkError) and "too large" not in exc.message.lower():
        return PlatformUnavailable(f"Telegram: {exc.message}")  # TimedOut included
    return SurfaceError(f"Telegram: {exc.message}")


class TelegramOutbox(PacedOutbox):
    """Posts and edits in Telegram chats by conversation key (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        pacer: Pacer,
        limits: MediaLimits,
        *,
        on_migrated: Migrated | None = None,
    ) -> None:
        super().__init__(pacer, limits, routes=(TELEGRAM_ROUTE,))
        self._bot = bot
        self._on_migrated = on_migrated
        self._moved: dict[str, str] = {}  # old chat id -> the supergroup's

    async def migrated(self, old_chat_id: str, new_chat_id: str) -> None:
        """The group ``old_chat_id`` is now the supergroup ``new_chat_id``: calls for its
        keys go there from now on, and ``on_migrated`` moves it in the store."""
        if self._moved.get(old_chat_id) != new_chat_id:
            log.info("telegram: chat %s is now the supergroup %s", old_chat_id, new_chat_id)
        self._moved[old_chat_id] = new_chat_id
        if self._on_migrated is not None:
            await self._on_migrated(old_chat_id, new_chat_id)

    def current(self, key: ConversationKey) -> ConversationKey:
        """``key`` at its chat's id today (a migrated group's key reaches the supergroup)."""
        new = self._moved.get(key.chat_id)
        return key if new is None else ConversationKey(key.platform, new, key.thread)

    def lane(self, key: ConversationKey) -> tuple[str, str]:
        # The same lanes as TelegramSurface: per chat (forum topics share their group's budget).
        chat_id = self.current(key).chat_id
        return chat_id, TELEGRAM_GROUP if chat_id.startswith("-") else TELEGRAM_PRIVATE

    async def post(
        self, key: ConversationKey, message: OutgoingMessage, *, reply_to: str | None = None
    ) -> str:
        sent = await self._follow(key, lambda target: self._send(target, message, reply_to))
        return str(sent.message_id)

    async def post_pictures(
        self, key: ConversationKey, files: Sequence[MediaFile], *, reply_to: str | None
    ) -> None:
        """Photos (documents when one breaks Telegram's photo rules); several as albums of
        up to ten, one album per kind since an album cannot mix photos and documents."""
        as_photo = [self._photo_ok(f) for f in files]
        photos = [f for f, ok in zip(files, as_photo, strict=True) if ok]
        documents = [f for f, ok in zip(files, as_photo, strict=True) if not ok]
        for group, photo in ((photos, True), (documents, False)):
            for start in range(0, len(group), ALBUM_SIZE):
                part = group[start : start + ALBUM_SIZE]

                async def album(
                    target: ConversationKey, part: list[MediaFile] = part, photo: bool = photo
                ) -> None:
                    await self._album(target, part, photo=photo, reply_to=reply_to)

                await self._follow(key, album)

    def _photo_ok(self, media: MediaFile) -> bool:
        if len(media.data) > self._limits.photo_max_bytes:
            return False
        size = image_size(media.data)
        if size is None:
            return media.mime_type in ("image/jpeg", "image/png", "image/webp")
        width, height = size
        return (
            width > 0
            and height > 0
            and width + height <= PHOTO_MAX_SIDES
            and max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
        )

    async def _album(
        self,
        key: ConversationKey,
        files: Sequence[MediaFile],
        *,
        photo: bool,
        reply_to: str | None,
    ) -> None:
        if len(files) == 1:
            kind = MediaKind.PHOTO if photo else MediaKind.DOCUMENT
            (media,) = files
            single = MediaFile(kind=kind, data=media.data, filename=media.filename)
            await self._send(key, OutgoingMessage(text="", media=single), reply_to)
            return
        kind_of = InputMediaPhoto if photo else InputMediaDocument
        await self._bot.send_media_group(
            int(key.chat_id),
            [kind_of(f.data, filename=f.filename) for f in files],
            message_thread_id=int(key.thread) if key.thread is not None else None,
            reply_parameters=(
                ReplyParameters(int(reply_to), allow_sending_without_reply=True)
                if reply_to is not None
                else None
            ),
            read_timeout=MEDIA_READ_TIMEOUT,
            write_timeout=MEDIA_WRITE_TIMEOUT,
        )

    async def edit(self, key: ConversationKey, message_id: str, view: StatusView) -> None:
        preview = (
            LinkPreviewOptions(url=view.preview_url, prefer_large_media=True, show_above_text=True)
            if view.preview_url
            else _NO_PREVIEW
        )

        async def edit_at(target: ConversationKey) -> None:
            try:
                await self._bot.edit_message_text(
                    clip(view.text, int(MessageLimit.MAX_TEXT_LENGTH)),
                    chat_id=int(target.chat_id),
                    message_id=int(message_id),
                    link_preview_options=preview,
                )
            except BadRequest as exc:
                if "message is not modified" not in exc.message.lower():
                    raise

        async def edit() -> None:
            await self._follow(key, edit_at)

        await self.show(key, edit, final=view.final)

    async def _follow(
        self, key: ConversationKey, call: Callable[[ConversationKey], Awaitable[T]]
    ) -> T:
        """``call`` at the chat's current id, and once more at the supergroup's if the group
        has just been upgraded; Telegram's errors become the core's."""
        try:
            try:
                return await call(self.current(key))
            except ChatMigrated as exc:
                await self.migrated(self.current(key).chat_id, str(exc.new_chat_id))
                return await call(self.current(key))
        except TelegramError as exc:
            raise _translate(exc) from exc

    async def _send(
        self, key: ConversationKey, message: OutgoingMessage, reply_to: str | None
    ) -> Message:
        chat_id = int(key.chat_id)
        thread = int(key.thread) if key.thread is not None else None
        reply = (
            ReplyParameters(int(reply_to), allow_sending_without_reply=True)
            if reply_to is not None
            else None
        )
        markup: InlineKeyboardMarkup | ForceReply | None = None
        if message.ask:
            markup = ForceReply(input_field_placeholder="your answer")
        elif message.buttons:
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(b.text, callback_data=BUTTON_PREFIX + b.token)
                        for b in row
                    ]
                    for row in message.buttons
                ]
            )
        media = message.media
        if media is None:
            return await self._bot.send_message(
                chat_id,
                clip(message.text, int(MessageLimit.MAX_TEXT_LENGTH)),
                message_thread_id=thread,
                reply_parameters=reply,
                reply_markup=markup,
                link_preview_options=_NO_PREVIEW,
            )
        caption = clip(message.text, int(MessageLimit.CAPTION_LENGTH)) or None
        upload = InputFile(media.data, filename=media.filename)
        common = {
            "caption": caption,
            "message_thread_id": thread,
            "reply_parameters": reply,
            "reply_markup": markup,
            "read_timeout": MEDIA_READ_TIMEOUT,
            "write_timeout": MEDIA_WRITE_TIMEOUT,
        }
        duration = round(media.duration) if media.duration is not None else None
        if media.kind is MediaKind.PHOTO:
            return await self._bot.send_photo(chat_id, upload, **common)  # type: ignore[arg-type]
        if media.kind is MediaKind.AUDIO:
            thumbnail = (
                InputFile(media.thumbnail, filename="cover.jpg") if media.thumbnail else None
            )
            return await self._bot.send_audio(
                chat_id,
                upload,
                duration=duration,
                performer=media.performer,
                title=media.title,
                thumbnail=thumbnail,
                **common,  # type: ignore[arg-type]
            )
        if media.kind is MediaKind.VIDEO:
            return await self._bot.send_video(
                chat_id,
                upload,
                duration=duration,
                supports_streaming=True,
                **common,  # type: ignore[arg-type]
            )
        return await self._bot.send_document(chat_id, upload, **common)  # type: ignore[arg-type]
