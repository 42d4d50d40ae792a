"""A fake Telegram Bot API server for driving the real python-telegram-bot in tests.

``FakeTelegram`` is an aiohttp server on 127.0.0.1 (port 0). Point PTB at it::

    async with FakeTelegram(token="123456:TEST") as tg:
        bot = Bot("123456:TEST", base_url=tg.api_base_url, base_file_url=tg.file_base_url)

It answers the Bot API methods the bot uses, keeps the state of every message, enforces the
limits Telegram enforces (taken from ``telegram.constants``), models Telegram's flood control
(per private chat, per group, overall) with 429 penalties, and lets tests inject updates and
wait on conditions without fixed sleeps. See ``tests/test_fake_telegram.py`` for usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_TYPE
from telegram.constants import ChatAction, FileSizeLimit, MediaGroupLimit, PollingLimit

from tests.fakes.telegram_limits import (
    CHAT_NOT_FOUND,
    DELETE_NOT_FOUND,
    EDIT_NOT_FOUND,
    MAX_TEXT,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    REPLY_NOT_FOUND,
    TOO_LONG,
    ApiError,
    Clock,
    FloodControl,
    ManualClock,
    RateLimits,
    bad_request,
    check_answer_text,
    check_caption,
    check_commands,
    check_entities,
    check_reply_markup,
    check_text,
    monotonic,
    retry_after_seconds,
    strip_text,
    too_many_requests,
    utf16_len,
)
from tests.fakes.telegram_state import (
    Call,
    CallbackRecord,
    FilePart,
    StoredFile,
    StoredMessage,
)
from tests.fakes.telegram_wire import (
    DEFAULT_SPEC,
    SPEC_CHECKED_METHODS,
    detect_entities,
    load_spec,
    media_payload,
    normalize_params,
    photo_sizes,
    require_chat,
    scope_key,
    update_kind,
)

__all__ = [
    "ApiError",
    "Call",
    "CallbackRecord",
    "FakeTelegram",
    "FilePart",
    "ManualClock",
    "RateLimits",
    "StoredFile",
    "StoredMessage",
]

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Call], Awaitable[Any]]

_MEDIA_KINDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendVoice": "voice",
}
_UPLOAD_LIMIT = {"photo": int(FileSizeLimit.PHOTOSIZE_UPLOAD)}
_CHAT_ACTIONS = frozenset(str(a) for a in ChatAction)


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


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


class FakeTelegram:
    """Fake Bot API server. All public helpers are safe to call from the test's event loop.

    Constructor options:

    - ``token``: the only token accepted (others get 401 Unauthorized).
    - ``bot_username`` / ``bot_first_name``: what getMe returns; the bot id is the token prefix.
    - ``clock``: monotonic clock for flood budgets, penalties, callback-query age and the
      timeline (``ManualClock`` lets tests jump time). Long-poll waits use real time.
    - ``rate_limits``: ``True`` (Telegram defaults), a ``RateLimits`` or ``False`` to disable
      the budgets (penalties from ``fail_next`` still apply).
    - ``callback_timeout``: seconds after which a callback query can no longer be answered.
    - ``auto_chats``: unknown numeric chat ids are created on first use (``False``: 400
      "chat not found" unless the chat was injected or added with ``add_chat``).
    - ``strict_entity_nesting``: also reject entities breaking Telegram's nesting rules.
    - ``spec_path``: OpenAPI file used to check sendMessage/editMessageText parameter names
      (problems are collected in ``spec_problems``); default is ``../shared/specs`` when it
      exists, ``None`` disables the check.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        *,
        bot_username: str = "comet_test_bot",
        bot_first_name: str = "Comet",
        clock: Clock | None = None,
        rate_limits: bool | RateLimits = True,
        callback_timeout: float = 15.0,
        auto_chats: bool = True,
        strict_entity_nesting: bool = False,
        spec_path: str | Path | None = DEFAULT_SPEC,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(prefix) if prefix.isdigit() else 1,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.clock: Clock = clock or monotonic
        limits = rate_limits if isinstance(rate_limits, RateLimits) else RateLimits()
        self.flood = FloodControl(limits, self.clock)
        self.rate_limits_enabled = rate_limits is not False
        self.callback_timeout = callback_timeout
        self.auto_chats = auto_chats
        self.strict_entity_nesting = strict_entity_nesting
        self._host = host
        self._spec_path = Path(spec_path) if spec_path else None
        self._spec: dict[str, tuple[set[str], set[str]]] | None = None

        # state
        self.chats: dict[int | str, dict[str, Any]] = {}
        self._messages: dict[int | str, dict[int, StoredMessage]] = {}
        self._next_message_id: dict[int | str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._delivered_upto = 0
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self.callbacks: dict[str, CallbackRecord] = {}
        self._callback_seq = itertools.count(1)
        self._media_group_seq = itertools.count(1)
        self._calls: list[Call] = []
        self._fail_rules: list[_FailRule] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.allowed_updates: list[str] | None = None
        self.blocked: set[int | str] = set()
        self.spec_problems: list[str] = []
        self.drafts: dict[int, list[tuple[int, str, list[dict[str, Any]]]]] = {}

        # counters
        self.total_429s = 0
        self.chat_429s: Counter[int | str] = Counter()
        self.violations = 0
        self.chat_violations: Counter[int | str] = Counter()

        # plumbing
        self._changed = asyncio.Event()
        self._inflight = 0
        self._activity_at = 0.0
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers: dict[str, tuple[str, Handler]] = {}
        for name, handler in self._method_table().items():
            self._handlers[name.lower()] = (name, handler)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=int(FileSizeLimit.FILESIZE_UPLOAD) + 1_000_000)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._activity_at = asyncio.get_running_loop().time()
        return self

    async def close(self) -> None:
        self._closing = True
        self._bump()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """For ``Bot(base_url=...)`` / ``ApplicationBuilder().base_url(...)``."""
        return f"{self.base_url}/bot"

    @property
    def file_base_url(self) -> str:
        """For ``Bot(base_file_url=...)`` / ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.base_url}/file/bot"

    # -- scripting ---------------------------------------------------------------------------------

    def fail_next(
        self,
        chat_id: int | str | None,
        method: str | None = None,
        *,
        retry_after: int = 1,
        times: int = 1,
        penalty: bool = True,
    ) -> None:
        """Answer the next ``times`` matching calls with 429 ``retry after N``.

        ``chat_id=None`` matches any chat, ``method=None`` any method sent to that chat. With
        ``penalty`` the chat is then blocked for ``retry_after`` seconds like a real 429.
        """
        err = too_many_requests(retry_after)
        self._fail_rules.append(
            _FailRule(chat_id, method, times, err, retry_after if penalty else None)
        )

    def fail_next_error(
        self,
        chat_id: int | str | None,
        method: str | None = None,
        *,
        status: int = 400,
        description: str = "Bad Request: scripted failure",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching calls with an arbitrary error."""
        self._fail_rules.append(
            _FailRule(chat_id, method, times, ApiError(status, description), None)
        )

    def block(self, chat_id: int) -> None:
        """Make every call to ``chat_id`` fail with 403 "bot was blocked by the user"."""
        self.blocked.add(chat_id)

    def clear_penalties(self) -> None:
        self.flood = FloodControl(self.flood.limits, self.clock)

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

    # -- assertions --------------------------------------------------------------------------------

    def calls(
        self,
        method: str | None = None,
        chat_id: int | str | None = None,
        *,
        ok: bool | None = None,
    ) -> list[Call]:
        """Recorded calls in order, filtered by method (case-insensitive), chat and outcome."""
        out = []
        for call in self._calls:
            if method is not None and call.method.lower() != method.lower():
                continue
            if chat_id is not None and call.chat_id != chat_id:
                continue
            if ok is not None and call.ok != ok:
                continue
            out.append(call)
        return out

    def timeline(self, chat_id: int | str) -> list[Call]:
        """Every call made to ``chat_id`` (time from the fake's clock, method, params, status)."""
        return self.calls(chat_id=chat_id)

    def messages(
        self, chat_id: int | str, *, include_user: bool = False, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Messages in ``chat_id`` in id order: by default the bot's own, not deleted."""
        return [
            m
            for m in self._messages.get(chat_id, {}).values()
            if (include_user or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def message(self, chat_id: int | str, message_id: int) -> StoredMessage | None:
        return self._messages.get(chat_id, {}).get(message_id)

    def texts(self, chat_id: int | str) -> list[str | None]:
        """Current text (or caption) of each bot message in ``chat_id``."""
        return [m.content for m in self.messages(chat_id)]

    def last_message(self, chat_id: int | str) -> StoredMessage | None:
        msgs = self.messages(chat_id)
        return msgs[-1] if msgs else None

    def callback(self, query_id: str) -> CallbackRecord:
        return self.callbacks[query_id]

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]] | None:
        """Commands set with setMyCommands for that scope/language (None when never set)."""
        return self.commands.get((scope_key(scope), language_code))

    def violation_calls(self) -> list[Call]:
        return [c for c in self._calls if c.violation]

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        message: str | None = None,
    ) -> T:
        """Wait until ``predicate()`` is truthy (re-checked after every call and injection).

        Returns the predicate's value; raises ``AssertionError`` after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            value = predicate()
            if value:
                return value
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(self._describe_timeout(message or "condition", timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    async def wait_for_call(
        self,
        method: str,
        chat_id: int | str | None = None,
        *,
        count: int = 1,
        ok: bool | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Call:
        """Wait until ``count`` matching calls were answered; returns the ``count``-th."""

        def done() -> Call | None:
            calls = [c for c in self.calls(method, chat_id, ok=ok) if c.status != 0]
            return calls[count - 1] if len(calls) >= count else None

        return await self.wait_for(done, timeout, message=f"{count} x {method} to {chat_id}")

    async def wait_for_message(
        self,
        chat_id: int | str,
        predicate: Callable[[StoredMessage], bool] | str | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> StoredMessage:
        """Wait for a bot message in ``chat_id`` matching ``predicate`` (or containing a string)."""
        check: Callable[[StoredMessage], bool]
        if isinstance(predicate, str):
            needle = predicate

            def check(m: StoredMessage) -> bool:
                return needle in (m.content or "")
        elif predicate is None:

            def check(m: StoredMessage) -> bool:
                return True
        else:
            check = predicate

        def found() -> StoredMessage | None:
            return next((m for m in self.messages(chat_id) if check(m)), None)

        return await self.wait_for(found, timeout, message=f"bot message in {chat_id}")

    async def wait_idle(
        self,
        quiet: float = 0.1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until every injected update was fetched, no request (other than a long poll) is
        in flight and nothing happened for ``quiet`` seconds. A heuristic; prefer ``wait_for``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            now = loop.time()
            undelivered = any(u["update_id"] > self._delivered_upto for u in self._updates)
            busy = self._inflight > 0 or undelivered
            quiet_left = self._activity_at + quiet - now
            if not busy and quiet_left <= 0:
                return
            left = deadline - now
            if left <= 0:
                raise AssertionError(self._describe_timeout("idle", timeout))
            wait = left if busy else min(left, quiet_left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(wait, 0.001))

    def _describe_timeout(self, what: str, timeout: float) -> str:
        recent = ", ".join(f"{c.method}({c.chat_id})->{c.status}" for c in self._calls[-10:])
        return f"timed out after {timeout}s waiting for {what}; last calls: [{recent}]"

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def _bump(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _touch(self) -> None:
        try:
            self._activity_at = asyncio.get_running_loop().time()
        except RuntimeError:
            self._activity_at = 0.0
        self._bump()

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        if token != self.token:
            self._calls.append(
                Call(len(self._calls), self.clock(), raw_method, None, {}, 401, "Unauthorized")
            )
            self._bump()
            return _json_response(ApiError(401, "Unauthorized").payload(), 401)
        name, handler = self._handlers.get(raw_method.lower(), (raw_method, None))
        call = Call(len(self._calls), self.clock(), name, None, {}, status=0)
        self._calls.append(call)
        self._bump()
        polling = name == "getUpdates"
        if not polling:
            self._inflight += 1
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            call.params = await self._read_params(request)
            chat_id = call.params.get("chat_id")
            call.chat_id = chat_id if isinstance(chat_id, int | str) else None
            result = await handler(call.params, call)
        except ApiError as exc:
            self._record_error(call, exc)
            return _json_response(exc.payload(), exc.status)
        else:
            call.status = 200
            call.result = result
            return _json_response({"ok": True, "result": result})
        finally:
            if not polling:
                self._inflight -= 1
                self._touch()
            else:
                self._bump()

    def _record_error(self, call: Call, exc: ApiError) -> None:
        call.status = exc.status
        call.description = exc.description
        if exc.status == 429:
            retry = (exc.parameters or {}).get("retry_after")
            call.retry_after = int(retry) if retry is not None else None
            self.total_429s += 1
            if call.chat_id is not None:
                self.chat_429s[call.chat_id] += 1

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _json_response(ApiError(401, "Unauthorized").payload(), 401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read(decode=False)
                if part.filename:
                    params[name] = FilePart(
                        field=name,
                        filename=part.filename,
                        data=bytes(data),
                        content_type=part.headers.get(CONTENT_TYPE, "application/octet-stream"),
                    )
                else:
                    params[name] = bytes(data).decode("utf-8")
        elif ctype == "application/json":
            body = await request.text()
            if body.strip():
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise bad_request("can't parse JSON body") from exc
                if not isinstance(decoded, dict):
                    raise bad_request("JSON body must be an object")
                params.update(decoded)
        elif ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        return normalize_params(params)

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

    def _check_spec(self, method: str, params: dict[str, Any]) -> None:
        if method not in SPEC_CHECKED_METHODS or self._spec_path is None:
            return
        if self._spec is None:
            self._spec = load_spec(self._spec_path)
        known = self._spec.get(method)
        if known is None:
            return
        names, required = known
        for name in params:
            if name not in names:
                self.spec_problems.append(f"{method}: unknown parameter {name!r}")
        for name in required - params.keys():
            self.spec_problems.append(f"{method}: missing required parameter {name!r}")

    # -- methods -----------------------------------------------------------------------------------

    def _method_table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendMessageDraft": self._send_message_draft,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "sendMediaGroup": self._send_media_group,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
            "getChat": self._get_chat,
        }
        for method in _MEDIA_KINDS:
            table[method] = self._send_media
        return table

    async def _get_me(self, params: dict[str, Any], call: Call) -> Any:
        return dict(self.bot_user)

    async def _delete_webhook(self, params: dict[str, Any], call: Call) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any], call: Call) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _get_updates(self, params: dict[str, Any], call: Call) -> Any:
        offset = params.get("offset") or 0
        limit = params.get("limit") or int(PollingLimit.MAX_LIMIT)
        limit = max(int(PollingLimit.MIN_LIMIT), min(int(limit), int(PollingLimit.MAX_LIMIT)))
        timeout = max(0, int(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = list(allowed) or None
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            if self.allowed_updates:
                self._updates = [u for u in self._updates if update_kind(u) in self.allowed_updates]
            batch = self._updates[:limit]
            if batch or self._closing or loop.time() >= deadline:
                if batch:
                    self._delivered_upto = max(self._delivered_upto, batch[-1]["update_id"])
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), deadline - loop.time())

    async def _set_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        commands = check_commands(params.get("commands"))
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands[key] = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return self.commands.get(key, [])

    async def _delete_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands.pop(key, None)
        return True

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

    async def _send_media(self, params: dict[str, Any], call: Call) -> Any:
        kind = _MEDIA_KINDS[call.method]
        chat_id = require_chat(params)
        self._gate(call, counted=True)
        caption, entities = self._caption_content(
            params.get("caption"), params.get("caption_entities")
        )
        markup = check_reply_markup(params.get("reply_markup"))
        media, upload, source = self._media_object(kind, params.get(kind), params)
        msg = self._bot_message(chat_id, params)
        msg.media_type, msg.media, msg.upload, msg.media_source = kind, media, upload, source
        msg.caption, msg.caption_entities, msg.reply_markup = caption, entities, markup
        self._store(msg)
        return self._api_message(msg)

    async def _send_media_group(self, params: dict[str, Any], call: Call) -> Any:
        chat_id = require_chat(params)
        items = params.get("media")
        if not isinstance(items, list):
            raise bad_request("can't parse media JSON object")
        self._gate(call, counted=True, cost=max(1, len(items)))
        if (
            not int(MediaGroupLimit.MIN_MEDIA_LENGTH)
            <= len(items)
            <= int(MediaGroupLimit.MAX_MEDIA_LENGTH)
        ):
            raise bad_request("wrong number of messages in the media group")
        group_id = f"MG{next(self._media_group_seq)}"
        prepared = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "audio",
                "document",
            ):
                raise bad_request("wrong media type in the media group")
            caption, entities = self._caption_content(
                item.get("caption"), item.get("caption_entities")
            )
            prepared.append(
                (
                    item,
                    caption,
                    entities,
                    *self._media_object(item["type"], item.get("media"), params),
                )
            )
        out = []
        for item, caption, entities, media, upload, source in prepared:
            msg = self._bot_message(chat_id, params)
            msg.media_type, msg.media, msg.upload, msg.media_source = (
                item["type"],
                media,
                upload,
                source,
            )
            msg.caption, msg.caption_entities = caption, entities
            msg.media_group_id = group_id
            self._store(msg)
            out.append(self._api_message(msg))
        return out

    def _media_object(
        self, kind: str, value: Any, params: dict[str, Any]
    ) -> tuple[Any, FilePart | None, str | None]:
        """Resolve an uploaded file, ``attach://`` reference, URL or file_id to a media object."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
            if not isinstance(value, FilePart):
                raise bad_request("wrong file identifier/HTTP URL specified")
        upload: FilePart | None = None
        source: str | None = None
        if isinstance(value, FilePart):
            limit = _UPLOAD_LIMIT.get(kind, int(FileSizeLimit.FILESIZE_UPLOAD))
            if len(value.data) > limit:
                raise ApiError(413, "Request Entity Too Large")
            if not value.data:
                raise bad_request("file must be non-empty")
            upload = value
            stored = self.register_file(
                value.data,
                filename=value.filename,
                content_type=value.content_type,
                folder=f"{kind}s",
            )
        elif isinstance(value, str) and value:
            source = value
            if value.startswith(("http://", "https://")):
                stored = self.register_file(
                    b"", filename=value.rsplit("/", 1)[-1], folder=f"{kind}s"
                )
            elif value in self.files:
                stored = self.files[value]
            else:
                raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request(f"there is no {kind} in the request")
        return media_payload(kind, stored, params), upload, source

    async def _answer_callback_query(self, params: dict[str, Any], call: Call) -> Any:
        self._gate(call, counted=False)
        record = self.callbacks.get(str(params.get("callback_query_id")))
        if (
            record is None
            or record.answered
            or self.clock() - record.created > self.callback_timeout
        ):
            raise bad_request(QUERY_TOO_OLD)
        check_answer_text(params.get("text"))
        record.answered = True
        record.answer = {k: v for k, v in params.items() if k != "callback_query_id"}
        return True

    async def _get_file(self, params: dict[str, Any], call: Call) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > int(FileSizeLimit.FILESIZE_DOWNLOAD):
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _get_chat(self, params: dict[str, Any], call: Call) -> Any:
        require_chat(params)
        self._gate(call, counted=False)
        chat = dict(self._chat_for(params["chat_id"]))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return chat
