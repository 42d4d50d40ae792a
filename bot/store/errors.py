"""Errors the store raises.

::

    StoreError               base of every store error
    └── SchemaTooNewError    the file was written by a newer bot; refused, left untouched

SQLite's own ``sqlite3.Error`` (disk full, locked past the busy timeout, ...)
passes through unchanged: callers treat it as an internal failure.
"""

from __future__ import annotations

__all__ = ["SchemaTooNewError", "StoreError"]


class StoreError(Exception):
    """Base of every error the store raises itself."""


class SchemaTooNewError(StoreError):
    """The database's ``user_version`` is newer than any migration this bot knows."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this bot supports ({known}); "
            "upgrade the bot or point [storage] path at another file"
        )
        self.found = found
        self.known = known
