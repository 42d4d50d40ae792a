"""Request context for log lines: which platform, chat and CometAPI request a line concerns.

Platforms wrap each update in ``with log_context(platform="tg", chat=str(chat_id)):`` and
every record logged inside (by any module, in that asyncio task and the tasks it starts)
carries those fields; :mod:`bot.ops.logging` prints them. A CometAPI request id learnt
half-way is added with :func:`bind_log_context`. Values are short identifiers, never
message text or secrets. This lives in the core (stdlib only) so both the core and the
platforms can set it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Final

__all__ = ["CONTEXT_FIELDS", "bind_log_context", "current_log_context", "log_context"]

#: The fields log lines carry, in the order they are printed.
CONTEXT_FIELDS: Final = ("platform", "chat", "user", "request_id", "task")

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("cometbot_log_context", default=_EMPTY)


def current_log_context() -> Mapping[str, str]:
    """The fields in effect here (read-only)."""
    return _context.get()


def _merged(fields: Mapping[str, object | None]) -> Mapping[str, str]:
    merged = dict(_context.get())
    merged.update({name: str(value) for name, value in fields.items() if value is not None})
    return MappingProxyType(merged)


@contextmanager
def log_context(
    *,
    platform: object | None = None,
    chat: object | None = None,
    user: object | None = None,
    request_id: object | None = None,
    task: object | None = None,
) -> Iterator[None]:
    """Add fields to every log record inside the block; ``None`` leaves a field as it is, so
    nested blocks add to outer ones."""
    token = _context.set(
        _merged(
            {
                "platform": platform,
                "chat": chat,
                "user": user,
                "request_id": request_id,
                "task": task,
            }
        )
    )
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: object | None) -> None:
    """Add fields until the enclosing :func:`log_context` block ends (or the task does)."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {', '.join(sorted(unknown))}")
    _context.set(_merged(fields))
