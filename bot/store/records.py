"""Compatibility alias: the task and button records now live in :mod:`bot.core.records`."""

from __future__ import annotations

from bot.core.records import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    UNSET,
    ButtonRef,
    ButtonSpec,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
    Unset,
    UsageKind,
)

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "UNSET",
    "ButtonRef",
    "ButtonSpec",
    "Provider",
    "Task",
    "TaskStatus",
    "TaskUpdate",
    "Unset",
    "UsageKind",
]
