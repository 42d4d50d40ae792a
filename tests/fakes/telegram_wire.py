"""Wire-level helpers for the fake Telegram server: parameter decoding, entity detection,
media objects and the optional OpenAPI parameter check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.fakes.telegram_limits import CHAT_NOT_FOUND, ApiError, bad_request, utf16_len
from tests.fakes.telegram_state import StoredFile

DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "telegram-openapi.json"
SPEC_CHECKED_METHODS = ("sendMessage", "editMessageText")

_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "commands",
        "scope",
        "allowed_updates",
        "media",
        "results",
        "permissions",
        "reaction",
        "message_ids",
    }
)
_INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "timeout",
        "message_thread_id",
        "reply_to_message_id",
        "duration",
        "width",
        "height",
        "user_id",
        "cache_time",
        "from_chat_id",
        "draft_id",
        "max_connections",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "has_spoiler",
        "drop_pending_updates",
        "supports_streaming",
        "disable_web_page_preview",
        "show_caption_above_media",
    }
)
_INT_RE = re.compile(r"^-?\d+$")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")
_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Mention and bot_command entities, as Telegram's clients would attach them."""
    found: list[tuple[int, int, str]] = []
    for match in _MENTION_RE.finditer(text):
        found.append((match.start(), match.end(), "mention"))
    for match in _COMMAND_RE.finditer(text):
        found.append((match.start(), match.end(), "bot_command"))
    found.sort()
    return [
        {
            "type": kind,
            "offset": utf16_len(text[:start]),
            "length": utf16_len(text[start:end]),
        }
        for start, end, kind in found
    ]


def photo_sizes(stored: StoredFile, width: int, height: int) -> list[dict[str, Any]]:
    scale = 90 / max(width, height, 1)
    return [
        {
            "file_id": f"{stored.file_id}_s",
            "file_unique_id": f"{stored.file_unique_id}_s",
            "width": max(1, int(width * scale)),
            "height": max(1, int(height * scale)),
            "file_size": stored.size,
        },
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": stored.size,
        },
    ]


def media_payload(kind: str, stored: StoredFile, params: dict[str, Any]) -> Any:
    if kind == "photo":
        return photo_sizes(
            stored, int(params.get("width") or 800), int(params.get("height") or 600)
        )
    obj: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "mime_type": stored.content_type,
    }
    if stored.filename and kind != "voice":
        obj["file_name"] = stored.filename
    if kind in ("audio", "video", "animation", "voice"):
        obj["duration"] = int(params.get("duration") or 0)
    if kind in ("video", "animation"):
        obj["width"] = int(params.get("width") or 640)
        obj["height"] = int(params.get("height") or 360)
    if kind == "audio":
        for key in ("performer", "title"):
            if params.get(key):
                obj[key] = params[key]
    return obj


def normalize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Decode the JSON-in-form encoding PTB uses (ints, booleans, nested objects)."""
    return {key: _decode_field(key, value) for key, value in params.items()}


def _decode_field(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(f"can't parse {key} JSON object") from exc
    if key in _INT_FIELDS:
        if not _INT_RE.match(value):
            raise bad_request(f'field "{key}" must be of type Integer')
        return int(value)
    if key == "chat_id" and _INT_RE.match(value):
        return int(value)
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def require_chat(params: dict[str, Any]) -> int | str:
    chat_id = params.get("chat_id")
    if chat_id is None or chat_id == "":
        raise bad_request("chat_id is empty")
    if not isinstance(chat_id, int | str) or isinstance(chat_id, bool):
        raise ApiError(400, CHAT_NOT_FOUND)
    return chat_id


def scope_key(scope: Any) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def update_kind(update: dict[str, Any]) -> str:
    return next((k for k in update if k != "update_id"), "")


def load_spec(path: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Parameter names and required names per method from an OpenAPI file (if present)."""
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, tuple[set[str], set[str]]] = {}
    for method in SPEC_CHECKED_METHODS:
        post = doc.get("paths", {}).get(f"/{method}", {}).get("post", {})
        for content in post.get("requestBody", {}).get("content", {}).values():
            schema = content.get("schema", {})
            out[method] = (set(schema.get("properties", {})), set(schema.get("required", [])))
            break
    return out
