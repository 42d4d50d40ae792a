"""A fake Telegram Bot API server for driving the real python-telegram-bot in tests.

``FakeTelegram`` is an aiohttp server on 127.0.0.1 (port 0). Point PTB at it::

    async with FakeTelegram(token="123456:TEST") as tg:
        bot = Bot("123456:TEST", base_url=tg.api_base_url, base_file_url=tg.file_base_url)

It answers the Bot API methods the bot uses, keeps the state of every message, enforces the
limits Telegram enforces (taken from ``telegram.constants``), models Telegram's flood control
(per private chat, per group, overall) with 429 penalties, and lets tests inject updates and
wait on conditions without fixed sleeps. With a webhook set (``setWebhook``),
``deliver_webhook`` posts queued updates to it as Telegram does. See
``tests/test_fake_telegram.py`` for usage.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from telegram.constants import FileSizeLimit

from tests.fakes.telegram_assertions import AssertionsMixin
from tests.fakes.telegram_base import Handler, TelegramBase, _FailRule
from tests.fakes.telegram_callbacks import CallbackMethods
from tests.fakes.telegram_http import HttpMixin
from tests.fakes.telegram_inject import InjectionMixin
from tests.fakes.telegram_limits import (
    ApiError,
    Clock,
    FloodControl,
    RateLimits,
    monotonic,
    too_many_requests,
)
from tests.fakes.telegram_media import _MEDIA_KINDS, MediaMethods
from tests.fakes.telegram_state import (
    Call,
    CallbackRecord,
    FilePart,
    StoredFile,
    StoredMessage,
)
from tests.fakes.telegram_updates import UpdateMethods
from tests.fakes.telegram_webhook import WebhookMixin
from tests.fakes.telegram_wire import DEFAULT_SPEC

# Names this module defined or imported before it was split up; re-exported so imports
# keep working.
from tests.fakes.telegram_base import (  # isort: skip
    T,  # noqa: F401
)
from tests.fakes.telegram_http import (  # isort: skip
    _json_response,  # noqa: F401
)
from tests.fakes.telegram_limits import (  # isort: skip
    CHAT_NOT_FOUND,  # noqa: F401
    DELETE_NOT_FOUND,  # noqa: F401
    EDIT_NOT_FOUND,  # noqa: F401
    MAX_TEXT,  # noqa: F401
    NOT_MODIFIED,  # noqa: F401
    QUERY_TOO_OLD,  # noqa: F401
    REPLY_NOT_FOUND,  # noqa: F401
    TOO_LONG,  # noqa: F401
    bad_request,  # noqa: F401
    check_answer_text,  # noqa: F401
    check_caption,  # noqa: F401
    check_commands,  # noqa: F401
    check_entities,  # noqa: F401
    check_reply_markup,  # noqa: F401
    check_text,  # noqa: F401
    retry_after_seconds,  # noqa: F401
    strip_text,  # noqa: F401
    utf16_len,  # noqa: F401
)
from tests.fakes.telegram_media import (  # isort: skip
    _UPLOAD_LIMIT,  # noqa: F401
)
from tests.fakes.telegram_messages import (  # isort: skip
    _CHAT_ACTIONS,  # noqa: F401
)
from tests.fakes.telegram_wire import (  # isort: skip
    SPEC_CHECKED_METHODS,  # noqa: F401
    detect_entities,  # noqa: F401
    load_spec,  # noqa: F401
    media_payload,  # noqa: F401
    normalize_params,  # noqa: F401
    photo_sizes,  # noqa: F401
    require_chat,  # noqa: F401
    scope_key,  # noqa: F401
    update_kind,  # noqa: F401
)

__all__ = [
    "ApiError",
    "Call",
    "CallbackRecord",
    "FakeTelegram",
    "FilePart",
    "RateLimits",
    "StoredFile",
    "StoredMessage",
]


class FakeTelegram(
    InjectionMixin,
    AssertionsMixin,
    HttpMixin,
    MediaMethods,
    UpdateMethods,
    WebhookMixin,
    CallbackMethods,
    TelegramBase,
):
    """Fake Bot API server. All public helpers are safe to call from the test's event loop.

    Constructor options:

    - ``token``: the only token accepted (others get 401 Unauthorized).
    - ``bot_username`` / ``bot_first_name``: what getMe returns; the bot id is the token prefix.
    - ``clock``: monotonic clock for flood budgets, penalties, callback-query age and the
      timeline (``tests.fakes.clock.FakeClock`` lets tests jump time). Long-poll waits use
      real time.
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

    # Bot API handlers live in the mixins (telegram_messages, telegram_media, telegram_updates,
    # telegram_callbacks, telegram_webhook), request plumbing in telegram_http, test helpers in
    # telegram_inject and telegram_assertions; state declarations and shared helpers in
    # telegram_base.TelegramBase.

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
        self.webhook: dict[str, Any] | None = None
        self.webhook_error: tuple[int, str] | None = None
        self.blocked: set[int | str] = set()
        self.spec_problems: list[str] = []
        # Called with each accepted call (2xx) right after its handler ran, before the answer
        # goes out: ``bench.streaming`` notes when each chat first shows its final text.
        self.call_observers: list[Callable[[Call], None]] = []
        self.drafts: dict[int, list[tuple[int, str, list[dict[str, Any]]]]] = {}
        self.chat_admins: dict[int | str, dict[int, str]] = {}
        self.migrated: dict[int | str, int] = {}  # a group upgraded: old id -> new id
        self.slow_answers: dict[str, float] = {}  # method (lower case) -> seconds

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

    # -- methods -----------------------------------------------------------------------------------

    def _method_table(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setWebhook": self._set_webhook,
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
            "getChatMember": self._get_chat_member,
        }
        for method in _MEDIA_KINDS:
            table[method] = self._send_media
        return table
