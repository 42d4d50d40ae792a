"""Records kept by the fake Telegram server: files, messages and the call timeline."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FilePart:
    """One uploaded multipart file: the form field, its filename, bytes and content type."""

    field: str
    filename: str
    data: bytes
    content_type: str


@dataclass
class StoredFile:
    """A file the fake can serve through getFile and ``/file/bot<TOKEN>/<file_path>``."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class StoredMessage:
    """The current state of one message (sent by the bot, or injected as a user's)."""

    chat_id: int
    message_id: int
    date: int
    from_user: dict[str, Any]
    chat: dict[str, Any]
    from_bot: bool
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    media_type: str | None = None  # "photo", "document", "audio", "video", ...
    media: Any = None  # the API object (a list of PhotoSize for photos)
    upload: FilePart | None = None  # the multipart upload, when the bot uploaded bytes
    media_source: str | None = None  # a URL or file_id, when the bot sent one instead
    reply_to: int | None = None
    thread_id: int | None = None
    is_topic_message: bool = False
    media_group_id: str | None = None
    edit_count: int = 0
    edit_date: int | None = None
    deleted: bool = False
    history: list[str | None] = field(default_factory=list)  # earlier texts/captions
    extra: dict[str, Any] = field(default_factory=dict)  # extra fields for injected messages

    @property
    def content(self) -> str | None:
        """The text, or the caption for media messages."""
        return self.text if self.text is not None else self.caption

    def to_api(self, *, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        msg: dict[str, Any] = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": dict(self.chat),
            "from": dict(self.from_user),
        }
        if self.thread_id is not None:
            msg["message_thread_id"] = self.thread_id
            if self.is_topic_message:
                msg["is_topic_message"] = True
        if self.text is not None:
            msg["text"] = self.text
            if self.entities:
                msg["entities"] = copy.deepcopy(self.entities)
        if self.media_type is not None:
            msg[self.media_type] = copy.deepcopy(self.media)
        if self.caption is not None:
            msg["caption"] = self.caption
            if self.caption_entities:
                msg["caption_entities"] = copy.deepcopy(self.caption_entities)
        if self.media_group_id is not None:
            msg["media_group_id"] = self.media_group_id
        # Telegram echoes only inline keyboards; a ForceReply (or reply keyboard) sent with the
        # message is never part of a Message object (PTB could not even parse one there).
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            msg["reply_markup"] = copy.deepcopy(self.reply_markup)
        if self.edit_date is not None:
            msg["edit_date"] = self.edit_date
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update(copy.deepcopy(self.extra))
        return msg


@dataclass
class Call:
    """One request to the fake: when (fake clock), what, and how it was answered."""

    seq: int
    time: float
    method: str
    chat_id: int | str | None
    params: dict[str, Any]
    status: int = 200
    description: str | None = None
    result: Any = None
    retry_after: int | None = None
    violation: bool = False  # made while the chat was under a 429 penalty

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def files(self) -> dict[str, FilePart]:
        return {k: v for k, v in self.params.items() if isinstance(v, FilePart)}


@dataclass
class CallbackRecord:
    """An injected callback query and how (whether) the bot answered it."""

    query_id: str
    chat_id: int
    message_id: int
    data: str
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None
