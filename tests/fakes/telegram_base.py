"""The core of ``FakeTelegram`` (see ``tests.fakes.telegram``): :class:`TelegramBase` declares the
server's state and holds what every method handler builds on: chats and users, stored files,
change notification, the flood-control gate and message storage.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.telegram_limits import (
    CHAT_NOT_FOUND,
    ApiError,
    Clock,
    FloodControl,
    retry_after_seconds,
    too_many_requests,
)
from tests.fakes.telegram_state import Call, CallbackRecord, StoredFile, StoredMessage

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Call], Awaitable[Any]]


class _FailRule:
    def __init__(
        self,
        chat_id: int | str | None,
        method: str | None,
        times: int,
        error: ApiError,
        penalty: float | None,
    ) -> None:
        self.chat_id = chat_id
        self.method = method.lower() if method else None
        self.times = times
        self.error = error
        self.penalty = penalty

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


class TelegramBase:
    """State declarations and shared helpers; :class:`FakeTelegram` sets the state up."""

    token: str
    bot_user: dict[str, Any]
    clock: Clock
    flood: FloodControl
    rate_limits_enabled: bool
    callback_timeout: float
    auto_chats: bool
    strict_entity_nesting: bool
    _host: str
    _spec_path: Path | None
    _spec: dict[str, tuple[set[str], set[str]]] | None

    # state
    chats: dict[int | str, dict[str, Any]]
    _messages: dict[int | str, dict[int, StoredMessage]]
    _next_message_id: dict[int | str, int]
    _updates: list[dict[str, Any]]
    _update_ids: itertools.count[int]
    _delivered_upto: int
    files: dict[str, StoredFile]
    _files_by_path: dict[str, StoredFile]
    _file_seq: itertools.count[int]
    callbacks: dict[str, CallbackRecord]
    _callback_seq: itertools.count[int]
    _media_group_seq: itertools.count[int]
    _calls: list[Call]
    _fail_rules: list[_FailRule]
    commands: dict[tuple[str, str], list[dict[str, Any]]]
    allowed_updates: list[str] | None
    webhook: dict[str, Any] | None  # url, secret_token, max_connections: set by setWebhook
    webhook_error: tuple[int, str] | None  # getWebhookInfo's last_error_date and _message
    blocked: set[int | str]
    spec_problems: list[str]
    call_observers: list[Callable[[Call], None]]
    drafts: dict[int, list[tuple[int, str, list[dict[str, Any]]]]]
    chat_admins: dict[int | str, dict[int, str]]
    migrated: dict[int | str, int]
    slow_answers: dict[str, float]

    # counters
    total_429s: int
    chat_429s: Counter[int | str]
    violations: int
    chat_violations: Counter[int | str]

    # plumbing
    _changed: asyncio.Event
    _inflight: int
    _activity_at: float
    _poll_generation: int
    _closing: bool
    _runner: web.AppRunner | None
    _port: int | None
    _handlers: dict[str, tuple[str, Handler]]

    # -- chats and users --------------------------------------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        *,
        type: str | None = None,
        title: str | None = None,
        first_name: str | None = None,
        username: str | None = None,
        is_forum: bool = False,
    ) -> dict[str, Any]:
        """Register (or update) a chat. Negative ids default to supergroups."""
        if type is None:
            type = "private" if chat_id > 0 else "supergroup"
        chat: dict[str, Any] = {"id": chat_id, "type": type}
        if type == "private":
            chat["first_name"] = first_name or "Alice"
        else:
            chat["title"] = title or f"Test group {abs(chat_id)}"
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return chat

    def slow_answer(self, method: str, seconds: float) -> None:
        """The next successful ``method`` call does its work at once (a sent message is
        stored) but answers ``seconds`` later (real time): an upload whose answer is slow."""
        self.slow_answers[method.lower()] = seconds

    def set_chat_admin(self, chat_id: int, user_id: int, *, status: str = "administrator") -> None:
        """Make ``user_id`` an admin of ``chat_id`` for getChatMember (``status``:
        ``"administrator"`` or ``"creator"``); everyone else is a plain ``"member"``."""
        self.chat_admins.setdefault(chat_id, {})[user_id] = status

    def user(
        self, user_id: int = 42, *, first_name: str = "Alice", username: str | None = "alice"
    ) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": "en",
        }
        if username:
            user["username"] = username
        return user

    def _ensure_chat(self, chat_id: int, **kwargs: Any) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.add_chat(chat_id, **kwargs)
        return chat

    # -- files ------------------------------------------------------------------------------------

    def register_file(
        self,
        data: bytes,
        *,
        filename: str | None = None,
        content_type: str = "application/octet-stream",
        folder: str = "documents",
    ) -> StoredFile:
        """Store bytes the bot can fetch with getFile and download from the file URL."""
        n = next(self._file_seq)
        ext = Path(filename).suffix if filename else ""
        stored = StoredFile(
            file_id=f"FILE{n:06d}",
            file_unique_id=f"UNIQ{n:06d}",
            file_path=f"{folder}/file_{n}{ext}",
            data=data,
            content_type=content_type,
            filename=filename,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    # -- change notification ------------------------------------------------------------------

    def _bump(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _touch(self) -> None:
        try:
            self._activity_at = asyncio.get_running_loop().time()
        except RuntimeError:
            self._activity_at = 0.0
        self._bump()

    # -- flood control gate --------------------------------------------------------------------

    def _gate(self, call: Call, *, counted: bool, cost: int = 1) -> None:
        """Penalties, scripted failures, blocked chats, then the budgets."""
        chat_id = call.chat_id
        if chat_id is not None:
            left = self.flood.penalty_left(chat_id)
            if left > 0:
                call.violation = True
                self.violations += 1
                self.chat_violations[chat_id] += 1
                raise too_many_requests(retry_after_seconds(left))
        for rule in self._fail_rules:
            if rule.matches(call.method, chat_id):
                rule.times -= 1
                if rule.penalty is not None and chat_id is not None:
                    self.flood.start_penalty(chat_id, rule.penalty)
                raise rule.error
        if chat_id is None:
            return
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        self._chat_for(chat_id)
        if counted and self.rate_limits_enabled:
            wait = self.flood.try_consume(chat_id, cost)
            if wait is not None:
                retry = retry_after_seconds(wait)
                self.flood.start_penalty(chat_id, retry)
                raise too_many_requests(retry)

    def _chat_for(self, chat_id: int | str) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None and isinstance(chat_id, str):
            chat = next(
                (c for c in self.chats.values() if f"@{c.get('username')}" == chat_id), None
            )
        if chat is None:
            if not self.auto_chats or not isinstance(chat_id, int):
                raise ApiError(400, CHAT_NOT_FOUND)
            chat = self.add_chat(chat_id)
        return chat

    # -- message storage ---------------------------------------------------------------------------

    def _new_message_id(self, chat_id: int | str) -> int:
        n = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = n + 1
        return n

    def _store(self, msg: StoredMessage) -> None:
        self._messages.setdefault(msg.chat_id, {})[msg.message_id] = msg
        self._next_message_id[msg.chat_id] = max(
            self._next_message_id.get(msg.chat_id, 1), msg.message_id + 1
        )

    def _lookup_reply_target(
        self, chat_id: int | str, reply_to: int | StoredMessage | None
    ) -> StoredMessage | None:
        if reply_to is None:
            return None
        if isinstance(reply_to, StoredMessage):
            return reply_to
        msg = self.message(chat_id, reply_to)
        if msg is None:
            raise KeyError(f"no message {reply_to} in chat {chat_id}")
        return msg

    def _topic_root(self, chat_id: int, thread_id: int, sender: dict[str, Any]) -> StoredMessage:
        root = self.message(chat_id, thread_id)
        if root is None:
            root = StoredMessage(
                chat_id=chat_id,
                message_id=thread_id,
                date=int(time.time()),
                from_user=sender,
                chat=self.chats[chat_id],
                from_bot=False,
                thread_id=thread_id,
                is_topic_message=True,
                extra={
                    "forum_topic_created": {"name": f"Topic {thread_id}", "icon_color": 7322096}
                },
            )
            self._store(root)
        return root

    def message(self, chat_id: int | str, message_id: int) -> StoredMessage | None:
        return self._messages.get(chat_id, {}).get(message_id)
