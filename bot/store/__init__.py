"""Persistence: conversations, channel settings, usage, generation tasks and buttons.

``async with Store.open(location) as store:`` opens a SQLite file (one aiosqlite
connection in WAL mode, the default) or a ``postgresql://`` database (an asyncpg pool,
for several processes) and applies the numbered migrations of
:mod:`bot.store.migrations` / :mod:`bot.store.pg_migrations`. :class:`Store` implements
the core's store ports; the task and button records it returns are in
:mod:`bot.core.generation.records`.
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
from bot.store.errors import ConstraintError, DatabaseError, SchemaTooNewError, StoreError
from bot.store.location import is_postgres_url, redacted
from bot.store.migrations import SCHEMA_VERSION
from bot.store.store import Store

__all__ = [
    "ACTIVE_STATUSES",
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "UNSET",
    "ButtonRef",
    "ButtonSpec",
    "ConstraintError",
    "DatabaseError",
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
    "is_postgres_url",
    "redacted",
]
