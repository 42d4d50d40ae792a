"""Update injection for ``FakeTelegram``: queue user messages, photos, documents, callback
queries or raw updates for the bot's getUpdates polling."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_state import CallbackRecord, StoredMessage
from tests.fakes.telegram_wire import detect_entities, photo_sizes


class InjectionMixin(TelegramBase):
    """``inject_*`` helpers: what users do, as updates the bot will fetch."""

    # -- update injection ---------------------------------------------------------------------

    def inject_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` is assigned when missing); returns its id."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._touch()
        return int(update["update_id"])

    def inject_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = "alice",
        entities: list[dict[str, Any]] | None = None,
        reply_to: int | StoredMessage | None = None,
        thread_id: int | None = None,
        topic_root_reply: bool = True,
        caption: str | None = None,
        media_type: str | None = None,
        media: Any = None,
        extra: dict[str, Any] | None = None,
        edited: bool = False,
    ) -> StoredMessage:
        """Queue a ``message`` update from a user and store the message; returns it.

        Without ``entities``, mention (``@name``) and ``bot_command`` (``/cmd[@bot]``) entities
        are detected in the text (UTF-16 offsets). ``reply_to`` is a stored message (id or
        object) in the same chat. ``thread_id`` makes the chat a forum and the message a topic
        message; unless it replies to something, it then replies to the topic's creation message
        (as Telegram does) when ``topic_root_reply``.
        """
        if thread_id is not None:
            chat = self._ensure_chat(chat_id, is_forum=True)
            chat["is_forum"] = True
        elif chat_id > 0:
            chat = self._ensure_chat(chat_id, first_name=first_name, username=username)
        else:
            chat = self._ensure_chat(chat_id)
        if user_id is None:
            user_id = chat_id if chat_id > 0 else 42
        sender = self.user(user_id, first_name=first_name, username=username)
        if text is not None and entities is None:
            entities = detect_entities(text)
        if caption is not None and entities is None:
            entities = detect_entities(caption)
        target = self._lookup_reply_target(chat_id, reply_to)
        if target is None and thread_id is not None and topic_root_reply:
            target = self._topic_root(chat_id, thread_id, sender)
        msg = StoredMessage(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            date=int(time.time()),
            from_user=sender,
            chat=chat,
            from_bot=False,
            text=text,
            entities=list(entities or []) if text is not None else [],
            caption=caption,
            caption_entities=list(entities or []) if caption is not None else [],
            media_type=media_type,
            media=media,
            reply_to=target.message_id if target else None,
            thread_id=thread_id,
            is_topic_message=thread_id is not None,
            extra=dict(extra or {}),
        )
        self._store(msg)
        payload = msg.to_api(reply_to=target.to_api() if target else None)
        self.inject_update({"edited_message" if edited else "message": payload})
        return msg

    def inject_private_message(
        self, text: str, *, user_id: int = 42, **kwargs: Any
    ) -> StoredMessage:
        """A message from ``user_id`` in its private chat with the bot (chat id == user id)."""
        return self.inject_message(user_id, text, user_id=user_id, **kwargs)

    def inject_group_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int = 42,
        mention_bot: bool = False,
        reply_to: int | StoredMessage | None = None,
        thread_id: int | None = None,
        **kwargs: Any,
    ) -> StoredMessage:
        """A message in a group (negative ``chat_id``).

        ``mention_bot`` prefixes ``@<bot username>`` (with a mention entity);
        ``reply_to`` may point at a bot message; ``thread_id`` sends it to a forum topic.
        """
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if mention_bot and f"@{self.bot_user['username']}" not in text:
            text = f"@{self.bot_user['username']} {text}"
        return self.inject_message(
            chat_id, text, user_id=user_id, reply_to=reply_to, thread_id=thread_id, **kwargs
        )

    def migrate_chat(
        self, old_chat_id: int, new_chat_id: int, *, user_id: int = 42, announce: bool = True
    ) -> None:
        """The group ``old_chat_id`` becomes the supergroup ``new_chat_id``: from now on every
        call to the old id answers 400 with ``migrate_to_chat_id``. With ``announce`` the two
        service messages Telegram sends are queued (``migrate_to_chat_id`` in the old chat,
        ``migrate_from_chat_id`` in the new one)."""
        old = self._ensure_chat(old_chat_id, type="group")
        self.add_chat(new_chat_id, type="supergroup", title=old.get("title"))
        if announce:
            self.inject_message(
                old_chat_id, user_id=user_id, extra={"migrate_to_chat_id": new_chat_id}
            )
            self.inject_message(
                new_chat_id, user_id=user_id, extra={"migrate_from_chat_id": old_chat_id}
            )
        self.migrated[old_chat_id] = new_chat_id

    def inject_photo(
        self,
        chat_id: int,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9",
        *,
        caption: str | None = None,
        content_type: str = "image/jpeg",
        width: int = 800,
        height: int = 600,
        **kwargs: Any,
    ) -> StoredMessage:
        """A user's photo message; the photo is served through getFile (largest size last)."""
        stored = self.register_file(
            data, filename="photo.jpg", content_type=content_type, folder="photos"
        )
        sizes = photo_sizes(stored, width, height)
        return self.inject_message(
            chat_id, None, caption=caption, media_type="photo", media=sizes, **kwargs
        )

    def inject_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        filename: str = "file.txt",
        content_type: str = "text/plain",
        caption: str | None = None,
        **kwargs: Any,
    ) -> StoredMessage:
        """A user's document message; the file is served through getFile."""
        stored = self.register_file(data, filename=filename, content_type=content_type)
        doc = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": filename,
            "mime_type": content_type,
            "file_size": stored.size,
        }
        return self.inject_message(
            chat_id, None, caption=caption, media_type="document", media=doc, **kwargs
        )

    def inject_voice(
        self,
        chat_id: int,
        data: bytes = b"OggS\x00\x02fake-opus-voice-note",
        *,
        duration: int = 3,
        audio_file: str | None = None,
        content_type: str = "audio/ogg",
        file_size: int | None = None,
        caption: str | None = None,
        **kwargs: Any,
    ) -> StoredMessage:
        """A user's voice note (OGG/Opus), or with ``audio_file`` (its name) an audio file;
        served through getFile. ``file_size`` overrides the size the update announces."""
        folder = "music" if audio_file else "voice"
        stored = self.register_file(
            data, filename=audio_file or "voice.oga", content_type=content_type, folder=folder
        )
        media: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": content_type,
            "file_size": stored.size if file_size is None else file_size,
        }
        if audio_file:
            media["file_name"] = audio_file
        return self.inject_message(
            chat_id,
            None,
            caption=caption,
            media_type="audio" if audio_file else "voice",
            media=media,
            **kwargs,
        )

    def inject_callback_query(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        username: str | None = "alice",
    ) -> str:
        """A press on an inline button of a stored message; returns the callback query id."""
        msg = self.message(chat_id, message_id)
        if msg is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        if user_id is None:
            user_id = chat_id if chat_id > 0 else 42
        query_id = f"cbq{next(self._callback_seq)}"
        self.callbacks[query_id] = CallbackRecord(
            query_id, chat_id, message_id, data, created=self.clock()
        )
        target = self._lookup_reply_target(chat_id, msg.reply_to)
        query = {
            "id": query_id,
            "from": self.user(user_id, first_name=first_name, username=username),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": msg.to_api(reply_to=target.to_api() if target else None),
        }
        self.inject_update({"callback_query": query})
        return query_id

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed through a getUpdates offset."""
        return len(self._updates)
