"""Which database a ``[storage]`` location names, and how to show it without its password."""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit

__all__ = ["DEFAULT_POOL_SIZE", "is_postgres_url", "redacted"]

#: Connections per process: a handful of statements run at once (chat turns, the poller's
#: batch, deliveries); more would only queue inside PostgreSQL.
DEFAULT_POOL_SIZE: Final = 10


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"
