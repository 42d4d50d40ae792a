"""SQLite persistence: conversations, channel settings, usage, generation tasks and buttons.

``async with Store.open(path) as store:`` opens one aiosqlite connection in WAL
mode and applies the numbered migrations of :mod:`bot.store.migrations`.
:class:`Store` implements :class:`bot.core.ports.ChatStore`; the task and button
records it returns are in :mod:`bot.core.generation.records`.
"""

from __future__ import annotations

from bot.core.access.usage import UsageKind
from bot.core.generation.records import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    UNSET,
    ButtonRef,
    ButtonSpec,
    NewTask,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
    Unset,
)
from bot.store.errors import SchemaTooNewError, StoreError
from bot.store.migrations import SCHEMA_VERSION
from bot.store.store import Store

__all__ = [
    "ACTIVE_STATUSES",
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "UNSET",
    "ButtonRef",
    "ButtonSpec",
    "NewTask",
    "Provider",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "Task",
    "TaskStatus",
    "TaskUpdate",
    "Unset",
    "UsageKind",
]
