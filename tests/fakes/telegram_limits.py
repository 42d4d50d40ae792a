"""Limits and flood control for the fake Telegram Bot API server.

Every numeric limit comes from ``telegram.constants`` (python-telegram-bot), so the fake enforces
what the dependency documents rather than numbers copied by hand. Validation functions raise
:class:`ApiError`, which the server turns into a Bot API error response.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telegram.constants import (
    BotCommandLimit,
    CallbackQueryLimit,
    FloodLimit,
    InlineKeyboardButtonLimit,
    InlineKeyboardMarkupLimit,
    MessageEntityType,
    MessageLimit,
)

Clock = Callable[[], float]

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
MIN_TEXT = int(MessageLimit.MIN_TEXT_LENGTH)
MAX_CAPTION = int(MessageLimit.CAPTION_LENGTH)
MAX_ENTITIES = int(MessageLimit.MESSAGE_ENTITIES)
MIN_CALLBACK_DATA = int(InlineKeyboardButtonLimit.MIN_CALLBACK_DATA)
MAX_CALLBACK_DATA = int(InlineKeyboardButtonLimit.MAX_CALLBACK_DATA)
MAX_BUTTONS = int(InlineKeyboardMarkupLimit.TOTAL_BUTTON_NUMBER)
MAX_BUTTONS_PER_ROW = int(InlineKeyboardMarkupLimit.BUTTONS_PER_ROW)
MAX_ANSWER_TEXT = int(CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH)

ENTITY_TYPES = frozenset(str(t) for t in MessageEntityType)
_ENTITY_REQUIRED = {"text_link": "url", "text_mention": "user", "custom_emoji": "custom_emoji_id"}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "login_url",
    "web_app",
    "copy_text",
)
_COMMAND_RE = re.compile(
    rf"^[a-z0-9_]{{{int(BotCommandLimit.MIN_COMMAND)},{int(BotCommandLimit.MAX_COMMAND)}}}$"
)

TOO_LONG = "Bad Request: message is too long"
TEXT_EMPTY = "Bad Request: message text is empty"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CHAT_NOT_FOUND = "Bad Request: chat not found"


class ApiError(Exception):
    """A Bot API error: HTTP status, ``description`` and optional ``parameters``."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 whose description starts with ``Bad Request: `` (unless it already does)."""
    text = detail if detail.startswith("Bad Request:") else f"Bad Request: {detail}"
    return ApiError(400, text)


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts text and entity offsets in."""
    return len(text.encode("utf-16-le")) // 2


def _utf16_boundaries(text: str) -> set[int]:
    """UTF-16 offsets that do not fall inside a surrogate pair."""
    bounds = {0}
    pos = 0
    for ch in text:
        pos += 2 if ord(ch) > 0xFFFF else 1
        bounds.add(pos)
    return bounds


# -- content validation -------------------------------------------------------------------------


def check_text(text: Any) -> str:
    """``text`` of sendMessage/editMessageText: 1..4096 UTF-16 units, not blank."""
    if text is None or not isinstance(text, str) or not text.strip():
        raise ApiError(400, TEXT_EMPTY)
    if utf16_len(text) > MAX_TEXT:
        raise ApiError(400, TOO_LONG)
    return text


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram drops leading and trailing whitespace; entities are shifted and clipped."""
    left = text.lstrip()
    lead = utf16_len(text) - utf16_len(left)
    out = left.rstrip()
    size = utf16_len(out)
    clipped = []
    for ent in entities:
        start = max(0, ent["offset"] - lead)
        end = min(size, ent["offset"] + ent["length"] - lead)
        if end > start:
            clipped.append({**ent, "offset": start, "length": end - start})
    return out, clipped


def check_caption(caption: Any) -> str | None:
    if caption is None:
        return None
    if not isinstance(caption, str):
        raise bad_request('field "caption" must be of type String')
    if utf16_len(caption) > MAX_CAPTION:
        raise ApiError(400, CAPTION_TOO_LONG)
    return caption


def check_entities(text: str, entities: Any, *, nesting: bool = False) -> list[dict[str, Any]]:
    """Entities must be well-formed objects inside the text, counted in UTF-16 units.

    With ``nesting=True`` also apply Telegram's documented nesting rules (no partial overlaps,
    code/pre contain nothing, blockquotes do not nest).
    """
    if entities is None:
        return []
    if not isinstance(entities, list):
        raise bad_request("can't parse entities: entities must be an Array")
    if len(entities) > MAX_ENTITIES:
        raise bad_request(f"can't parse entities: too many entities (max {MAX_ENTITIES})")
    size = utf16_len(text)
    bounds = _utf16_boundaries(text)
    for i, ent in enumerate(entities):
        if not isinstance(ent, dict):
            raise bad_request(f"can't parse entities: entity {i} must be an Object")
        kind, offset, length = ent.get("type"), ent.get("offset"), ent.get("length")
        if kind not in ENTITY_TYPES:
            raise bad_request(f'can\'t parse entities: unsupported entity type "{kind}"')
        if not isinstance(offset, int) or not isinstance(length, int) or isinstance(offset, bool):
            raise bad_request(f"can't parse entities: entity {i} needs integer offset/length")
        if offset < 0 or length <= 0 or offset + length > size:
            raise bad_request(
                f"can't parse entities: entity {i} ({kind} at {offset}+{length}) is outside "
                f"the text of {size} UTF-16 code units"
            )
        if offset not in bounds or offset + length not in bounds:
            raise bad_request(
                f"can't parse entities: entity {i} splits a surrogate pair at UTF-16 offset"
            )
        required = _ENTITY_REQUIRED.get(kind)
        if required and not ent.get(required):
            raise bad_request(f'can\'t parse entities: {kind} entity {i} needs "{required}"')
    if nesting:
        _check_nesting(entities)
    return list(entities)


def _check_nesting(entities: list[dict[str, Any]]) -> None:
    spans = [(e["offset"], e["offset"] + e["length"], e["type"]) for e in entities]
    for i, (a0, a1, at) in enumerate(spans):
        for b0, b1, bt in spans[i + 1 :]:
            if a1 <= b0 or b1 <= a0:
                continue
            a_in_b = b0 <= a0 and a1 <= b1
            b_in_a = a0 <= b0 and b1 <= a1
            if not (a_in_b or b_in_a):
                raise bad_request(f"can't parse entities: {at} and {bt} entities overlap")
            outer, inner = (bt, at) if a_in_b else (at, bt)
            if outer in ("code", "pre"):
                raise bad_request(f"can't parse entities: {outer} entity can't contain {inner}")
            if {outer, inner} <= {"blockquote", "expandable_blockquote"}:
                raise bad_request("can't parse entities: blockquotes can't be nested")


def check_reply_markup(markup: Any) -> dict[str, Any] | None:
    """Validate an inline keyboard (other keyboards only need to be objects)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    total = 0
    for row in rows:
        if len(row) > MAX_BUTTONS_PER_ROW:
            raise bad_request("BUTTONS_TOO_MUCH")
        for button in row:
            total += 1
            _check_button(button)
    if total > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    return markup


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be a String')
    actions = [k for k in _BUTTON_ACTIONS if k in button]
    if len(actions) != 1:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str):
            raise ApiError(400, BUTTON_DATA_INVALID)
        size = len(data.encode("utf-8"))
        if not MIN_CALLBACK_DATA <= size <= MAX_CALLBACK_DATA:
            raise ApiError(400, BUTTON_DATA_INVALID)


def check_answer_text(text: Any) -> None:
    if text is not None and utf16_len(str(text)) > MAX_ANSWER_TEXT:
        raise bad_request("MESSAGE_TOO_LONG")


def check_commands(commands: Any) -> list[dict[str, Any]]:
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > int(BotCommandLimit.MAX_COMMAND_NUMBER):
        raise bad_request("too many commands")
    for cmd in commands:
        if not isinstance(cmd, dict) or not _COMMAND_RE.match(str(cmd.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        desc = cmd.get("description")
        if not isinstance(desc, str) or not 1 <= len(desc) <= int(BotCommandLimit.MAX_DESCRIPTION):
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    return commands


# -- flood control ------------------------------------------------------------------------------


def monotonic() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class RateLimits:
    """The three budgets Telegram applies to sends and edits.

    - private chats (chat_id > 0): a token bucket refilled at ``private_rate`` per second holding
      up to ``private_burst`` tokens;
    - groups/supergroups/channels (chat_id < 0 or "@name"): at most ``group_max`` calls per
      rolling ``group_window`` seconds;
    - the whole bot: at most ``global_max`` calls per rolling ``global_window`` seconds.
    """

    private_rate: float = float(FloodLimit.MESSAGES_PER_SECOND_PER_CHAT)
    private_burst: int = 3
    group_max: int = int(FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP)
    group_window: float = 60.0
    global_max: int = int(FloodLimit.MESSAGES_PER_SECOND)
    global_window: float = 1.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


def is_group_chat(chat_id: int | str) -> bool:
    return isinstance(chat_id, str) or chat_id < 0


@dataclass
class FloodControl:
    """Budgets plus per-chat penalties; all times come from ``clock``."""

    limits: RateLimits
    clock: Clock
    _buckets: dict[int | str, _Bucket] = field(default_factory=dict)
    _windows: dict[int | str, deque[float]] = field(default_factory=dict)
    _global: deque[float] = field(default_factory=deque)
    _penalty_until: dict[int | str, float] = field(default_factory=dict)

    def penalty_left(self, chat_id: int | str) -> float:
        """Seconds of penalty left for ``chat_id`` (0 when none)."""
        until = self._penalty_until.get(chat_id)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._penalty_until[chat_id]
            return 0.0
        return left

    def start_penalty(self, chat_id: int | str, seconds: float) -> None:
        until = self.clock() + seconds
        self._penalty_until[chat_id] = max(until, self._penalty_until.get(chat_id, until))

    def try_consume(self, chat_id: int | str, cost: int = 1) -> float | None:
        """Spend ``cost`` from every budget, or return the seconds until that is possible."""
        now = self.clock()
        lim = self.limits
        waits: list[float] = []
        bucket: _Bucket | None = None
        window: deque[float] | None = None
        if is_group_chat(chat_id):
            window = self._windows.setdefault(chat_id, deque())
            waits.append(_window_wait(window, now, lim.group_window, lim.group_max, cost))
        else:
            bucket = self._buckets.setdefault(chat_id, _Bucket(float(lim.private_burst), now))
            bucket.tokens = min(
                float(lim.private_burst), bucket.tokens + (now - bucket.stamp) * lim.private_rate
            )
            bucket.stamp = now
            need = min(float(cost), float(lim.private_burst))
            if bucket.tokens < need:
                waits.append((need - bucket.tokens) / lim.private_rate)
        waits.append(_window_wait(self._global, now, lim.global_window, lim.global_max, cost))
        wait = max(waits)
        if wait > 0:
            return wait
        if bucket is not None:
            bucket.tokens = max(0.0, bucket.tokens - cost)
        for q in (window, self._global):
            if q is not None:
                q.extend([now] * cost)
        return None


def _window_wait(q: deque[float], now: float, window: float, limit: int, cost: int) -> float:
    while q and q[0] <= now - window:
        q.popleft()
    cost = min(cost, limit)
    excess = len(q) + cost - limit
    if excess <= 0:
        return 0.0
    return q[excess - 1] + window - now


def retry_after_seconds(wait: float) -> int:
    """Telegram reports whole seconds, rounded up, never 0."""
    return max(1, math.ceil(wait - 1e-9))
