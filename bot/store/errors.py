"""Errors the store raises.

::

    StoreError               base of every store error
    ├── SchemaTooNewError    the database was written by a newer bot; refused, left untouched
    ├── ConstraintError      a write broke a constraint (a foreign key, a unique key)
    └── DatabaseError        the database refused or failed (disk full, locked, connection lost)

Each engine converts its driver's errors (``sqlite3``, ``asyncpg``) into these, so
callers never see which database they run on.
"""

from __future__ import annotations

__all__ = ["ConstraintError", "DatabaseError", "SchemaTooNewError", "StoreError"]


class StoreError(Exception):
    """Base of every error the store raises."""


class SchemaTooNewError(StoreError):
    """The database's schema version is newer than any migration this bot knows."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this bot supports ({known}); "
            "upgrade the bot or point [storage] at another database"
        )
        self.found = found
        self.known = known


class ConstraintError(StoreError):
    """A write broke a constraint; nothing of it was stored."""


class DatabaseError(StoreError):
    """The database could not run a statement (its driver's error is the cause)."""
