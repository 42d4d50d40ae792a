"""Text message methods of ``FakeTelegram``: sendMessage, the edit methods, sendMessageDraft,
deleteMessage and sendChatAction, with the helpers that validate and build bot messages."""

from __future__ import annotations

import time
from typing import Any

from telegram.constants import ChatAction

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_limits import (
    DELETE_NOT_FOUND,
    EDIT_NOT_FOUND,
    MAX_TEXT,
    NOT_MODIFIED,
    REPLY_NOT_FOUND,
    TOO_LONG,
    bad_request,
    check_caption,
    check_entities,
    check_reply_markup,
    check_text,
    strip_text,
    utf16_len,
)
from tests.fakes.telegram_state import Call, StoredMessage
from tests.fakes.telegram_wire import SPEC_CHECKED_METHODS, load_spec, require_chat

_CHAT_ACTIONS = frozenset(str(a) for a in ChatAction)


class MessageMethods(TelegramBase):
    """Handlers for text messages and edits, plus the bot-message helpers media builds on."""

    # -- bot messages ------------------------------------------------------------------------------

    def _bot_message(self, chat_id: int | str, params: dict[str, Any]) -> StoredMessage:
        """A new bot message in ``chat_id`` with reply/thread handling (not yet stored)."""
        chat = self._chat_for(chat_id)
        target = self._reply_target_from_params(chat_id, params)
        thread_id = params.get("message_thread_id")
        if thread_id is not None and not isinstance(thread_id, int):
            raise bad_request("message thread not found")
        if thread_id is not None and not chat.get("is_forum"):
            raise bad_request("message thread not found")
        return StoredMessage(
            chat_id=chat["id"],
            message_id=self._new_message_id(chat["id"]),
            date=int(time.time()),
            from_user=dict(self.bot_user),
            chat=chat,
            from_bot=True,
            parse_mode=params.get("parse_mode"),
            reply_to=target.message_id if target else None,
            thread_id=thread_id,
            is_topic_message=thread_id is not None,
        )

    def _reply_target_from_params(
        self, chat_id: int | str, params: dict[str, Any]
    ) -> StoredMessage | None:
        rp = params.get("reply_parameters")
        allow = bool(params.get("allow_sending_without_reply"))
        message_id: Any = params.get("reply_to_message_id")
        target_chat = chat_id
        if isinstance(rp, dict):
            message_id = rp.get("message_id")
            allow = bool(rp.get("allow_sending_without_reply", allow))
            target_chat = rp.get("chat_id", chat_id)
        elif rp is not None:
            raise bad_request("can't parse reply parameters JSON object")
        if message_id is None:
            return None
        msg = self.message(target_chat, message_id) if isinstance(message_id, int) else None
        if msg is None or msg.deleted:
            if allow:
                return None
            raise bad_request(REPLY_NOT_FOUND)
        return msg

    def _api_message(self, msg: StoredMessage) -> dict[str, Any]:
        target = self.message(msg.chat_id, msg.reply_to) if msg.reply_to else None
        return msg.to_api(reply_to=target.to_api() if target else None)

    def _editable(self, params: dict[str, Any]) -> StoredMessage:
        if params.get("inline_message_id") is not None:
            raise bad_request(EDIT_NOT_FOUND)
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        if chat_id is None or message_id is None:
            raise bad_request(EDIT_NOT_FOUND)
        msg = self.message(chat_id, message_id) if isinstance(message_id, int) else None
        if msg is None or msg.deleted:
            raise bad_request(EDIT_NOT_FOUND)
        if not msg.from_bot:
            raise bad_request("message can't be edited")
        return msg

    def _text_content(self, raw: Any, raw_entities: Any) -> tuple[str, list[dict[str, Any]]]:
        """Validate text + entities, then trim whitespace as Telegram does."""
        text = check_text(raw)
        entities = check_entities(text, raw_entities, nesting=self.strict_entity_nesting)
        return strip_text(text, entities)

    def _caption_content(
        self, raw: Any, raw_entities: Any
    ) -> tuple[str | None, list[dict[str, Any]]]:
        caption = check_caption(raw)
        entities = check_entities(caption or "", raw_entities, nesting=self.strict_entity_nesting)
        if caption is None:
            return None, []
        caption, entities = strip_text(caption, entities)
        return caption or None, entities

    def _mark_edited(self, msg: StoredMessage) -> None:
        msg.history.append(msg.content)
        msg.edit_count += 1
        msg.edit_date = int(time.time())

    def preload_spec(self) -> None:
        """Read the OpenAPI file now rather than on the first sendMessage, where reading it
        stalls the fake's loop for a moment (``bench.streaming`` preloads before its run)."""
        if self._spec_path is not None and self._spec is None:
            self._spec = load_spec(self._spec_path)

    def _check_spec(self, method: str, params: dict[str, Any]) -> None:
        if method not in SPEC_CHECKED_METHODS or self._spec_path is None:
            return
        self.preload_spec()
        known = (self._spec or {}).get(method)
        if known is None:
            return
        names, required = known
        for name in params:
            if name not in names:
                self.spec_problems.append(f"{method}: unknown parameter {name!r}")
        for name in required - params.keys():
            self.spec_problems.append(f"{method}: missing required parameter {name!r}")

    # -- methods -----------------------------------------------------------------------------------

    async def _send_message(self, params: dict[str, Any], call: Call) -> Any:
        self._check_spec(call.method, params)
        chat_id = require_chat(params)
        self._gate(call, counted=True)
        text, entities = self._text_content(params.get("text"), params.get("entities"))
        markup = check_reply_markup(params.get("reply_markup"))
        msg = self._bot_message(chat_id, params)
        msg.text, msg.entities, msg.reply_markup = text, entities, markup
        self._store(msg)
        return self._api_message(msg)

    async def _edit_message_text(self, params: dict[str, Any], call: Call) -> Any:
        self._check_spec(call.method, params)
        self._gate(call, counted=True)
        msg = self._editable(params)
        text, entities = self._text_content(params.get("text"), params.get("entities"))
        markup = check_reply_markup(params.get("reply_markup"))
        if msg.text is None:
            raise bad_request("there is no text in the message to edit")
        parse_mode = params.get("parse_mode")
        if (text, entities, markup, parse_mode) == (
            msg.text,
            msg.entities,
            msg.reply_markup,
            msg.parse_mode,
        ):
            raise bad_request(NOT_MODIFIED)
        self._mark_edited(msg)
        msg.text, msg.entities, msg.reply_markup, msg.parse_mode = (
            text,
            entities,
            markup,
            parse_mode,
        )
        return self._api_message(msg)

    async def _edit_message_caption(self, params: dict[str, Any], call: Call) -> Any:
        self._gate(call, counted=True)
        msg = self._editable(params)
        caption, entities = self._caption_content(
            params.get("caption"), params.get("caption_entities")
        )
        markup = check_reply_markup(params.get("reply_markup"))
        if msg.media_type is None:
            raise bad_request("there is no caption in the message to edit")
        if (caption, entities, markup) == (msg.caption, msg.caption_entities, msg.reply_markup):
            raise bad_request(NOT_MODIFIED)
        self._mark_edited(msg)
        msg.caption, msg.caption_entities, msg.reply_markup = caption, entities, markup
        msg.parse_mode = params.get("parse_mode")
        return self._api_message(msg)

    async def _edit_message_reply_markup(self, params: dict[str, Any], call: Call) -> Any:
        self._gate(call, counted=True)
        msg = self._editable(params)
        markup = check_reply_markup(params.get("reply_markup"))
        if markup == msg.reply_markup:
            raise bad_request(NOT_MODIFIED)
        msg.history.append(msg.content)
        msg.edit_count += 1
        msg.edit_date = int(time.time())
        msg.reply_markup = markup
        return self._api_message(msg)

    async def _send_message_draft(self, params: dict[str, Any], call: Call) -> Any:
        chat_id = require_chat(params)
        self._gate(call, counted=True)
        if not isinstance(chat_id, int) or chat_id < 0:
            raise bad_request("message drafts can be sent only to private chats")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise bad_request("draft_id must be non-zero")
        raw = params.get("text") or ""
        if utf16_len(raw) > MAX_TEXT:
            raise bad_request(TOO_LONG)
        entities = check_entities(raw, params.get("entities"), nesting=self.strict_entity_nesting)
        text, entities = strip_text(raw, entities)
        self.drafts.setdefault(chat_id, []).append((draft_id, text, entities))
        return True

    async def _delete_message(self, params: dict[str, Any], call: Call) -> Any:
        require_chat(params)
        self._gate(call, counted=False)
        msg = self.message(params["chat_id"], params.get("message_id", -1))
        if msg is None or msg.deleted:
            raise bad_request(DELETE_NOT_FOUND)
        msg.deleted = True
        return True

    async def _send_chat_action(self, params: dict[str, Any], call: Call) -> Any:
        require_chat(params)
        self._gate(call, counted=False)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True
