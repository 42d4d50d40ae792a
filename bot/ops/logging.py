"""Logging from ``[logging]``: level, plain or JSON lines, request context, secret redaction.

:func:`setup_logging` installs one handler on the root logger. Every record that passes
it gets

* the request context of :mod:`bot.core.logcontext` (platform, chat, user, request_id,
  task) as attributes, printed after the message in plain format and as keys in JSON;
* its message, arguments, traceback and stack scrubbed of the configured secrets (the API
  key, the bot tokens, in raw and URL-encoded form) and of anything shaped like a bearer
  header, a CometAPI key or a Telegram/Discord bot token: a last line of defence, the code
  itself never logs secrets.

Noisy libraries (httpx logs every request at INFO) are held at WARNING; discord.py's
warnings that voice is unsupported (PyNaCl, davey) are dropped: the bot never joins voice.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, TextIO
from urllib.parse import quote, urlsplit

from bot.core.logcontext import (
    CONTEXT_FIELDS,
    bind_log_context,
    current_log_context,
    log_context,
)

if TYPE_CHECKING:
    from bot.config import LoggingSettings, Settings

__all__ = [
    "NOISY_LOGGERS",
    "ContextFilter",
    "DropVoiceWarnings",
    "JsonFormatter",
    "PlainFormatter",
    "RedactingFilter",
    "bind_log_context",
    "log_context",
    "secret_values",
    "setup_logging",
]

NOISY_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "telegram.ext",
    "discord.gateway",
    "discord.http",
    "discord.client",
    "aiohttp.access",
    "aiosqlite",
)
PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED: Final = "***"
_MIN_SECRET: Final = 4
# Shapes of credentials, redacted even when not configured (e.g. a token pasted into a prompt
# that ends up in a debug line).
_PATTERNS: Final = (
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token
    re.compile(r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"),  # Discord
)
_HANDLER_MARK: Final = "_cometbot_handler"
_VOICE_LOGGER: Final = "discord.client"


class DropVoiceWarnings(logging.Filter):
    """Drops discord.py's "<library> is not installed, voice will NOT be supported": said at
    every start, about a feature this bot never uses."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in str(record.msg)


def secret_values(settings: Settings) -> list[str]:
    """The configured secrets: the CometAPI key, the platform tokens, the webhook secret,
    the database URL and its password."""
    url = settings.storage.url.get_secret_value()
    password = urlsplit(url).password or "" if url else ""
    return [
        settings.cometapi.api_key.get_secret_value(),
        settings.telegram.token.get_secret_value(),
        settings.telegram.webhook_secret.get_secret_value(),
        settings.discord.token.get_secret_value(),
        url,
        password,
    ]


class RedactingFilter(logging.Filter):
    """Replaces secrets in a record's message, traceback and stack; never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        variants: set[str] = set()
        for raw in secrets:
            secret = raw.strip()
            if len(secret) < _MIN_SECRET:
                continue
            variants.update({secret, quote(secret, safe="")})
            _, colon, tail = secret.partition(":")
            if colon and len(tail) >= 16:  # a Telegram token's secret half
                variants.add(tail)
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw pieces, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


class ContextFilter(logging.Filter):
    """Copies the current :func:`log_context` onto each record (``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_log_context()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        return True


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    fields = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = str(value)
    return fields


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message [platform=tg chat=42 request_id=abc]`` then any traceback."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = _context_of(record)
        if context:
            line += " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context
    fields that are set, and ``exc``/``stack`` when present."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z"
        entry: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context_of(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(
    config: LoggingSettings,
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install the bot's handler on the root logger (replacing one installed before).

    Returns the handler (tests remove it). ``stream`` defaults to stderr.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if config.format == "json" else PlainFormatter())
    root.addHandler(handler)
    root.setLevel(config.level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    voice = logging.getLogger(_VOICE_LOGGER)
    if not any(isinstance(f, DropVoiceWarnings) for f in voice.filters):
        voice.addFilter(DropVoiceWarnings())
    logging.captureWarnings(True)
    return handler
