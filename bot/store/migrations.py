"""Numbered schema migrations, tracked in ``PRAGMA user_version``.

Migration *n* (1-based) is ``MIGRATIONS[n - 1]``. Each one runs in its own
``BEGIN IMMEDIATE`` transaction together with the ``user_version`` bump, so a
failure leaves the file at the previous version. Never edit a released
migration: append a new one.

Schema conventions: times are Unix seconds (REAL), JSON is TEXT, platform ids
are TEXT, and history is never deleted (``/reset`` only moves
``conversations.reset_turn_id``).
"""

from __future__ import annotations

import logging
from typing import Final

import aiosqlite

from bot.store.errors import SchemaTooNewError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "user_version"]

log = logging.getLogger(__name__)

_V1: Final = (
    # One row per conversation (channel, DM, thread, forum topic). The channel's
    # settings live here too: they are 1:1 with the conversation and read with it.
    """
    CREATE TABLE conversations (
        id            INTEGER PRIMARY KEY,
        key           TEXT NOT NULL UNIQUE,
        platform      TEXT NOT NULL,
        created_at    REAL NOT NULL,
        reset_turn_id INTEGER NOT NULL DEFAULT 0,
        reset_at      REAL,
        model         TEXT,
        persona       TEXT
    )
    """,
    # Turns ids grow monotonically, so "after the reset" is ``id > reset_turn_id``
    # and "newest N" is a backwards range scan of (conversation_id, id).
    """
    CREATE TABLE turns (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id),
        role            TEXT NOT NULL,
        content         TEXT NOT NULL,
        speaker         TEXT,
        user_id         TEXT,
        tokens          INTEGER NOT NULL DEFAULT 0,
        model           TEXT,
        created_at      REAL NOT NULL
    )
    """,
    "CREATE INDEX turns_by_conversation ON turns (conversation_id, id)",
    """
    CREATE TABLE tasks (
        id                INTEGER PRIMARY KEY,
        provider          TEXT NOT NULL,
        kind              TEXT NOT NULL,
        upstream_id       TEXT,
        parent_id         INTEGER REFERENCES tasks (id),
        owner_id          TEXT NOT NULL,
        conversation      TEXT NOT NULL,
        status_message_id TEXT,
        reply_to_id       TEXT,
        request           TEXT NOT NULL DEFAULT '{}',
        status            TEXT NOT NULL,
        progress          INTEGER NOT NULL DEFAULT 0,
        deadline          REAL,
        next_poll_at      REAL,
        attempts          INTEGER NOT NULL DEFAULT 0,
        result            TEXT,
        error             TEXT,
        created_at        REAL NOT NULL,
        updated_at        REAL NOT NULL,
        delivered_at      REAL
    )
    """,
    # Partial: only pollable tasks are indexed, so the poller's query stays small
    # however many finished tasks pile up. The status list must match the query's
    # text exactly for SQLite to use it (see bot.store.tasks._ACTIVE).
    """
    CREATE INDEX tasks_due ON tasks (next_poll_at)
        WHERE status IN ('pending', 'submitted', 'running')
    """,
    "CREATE INDEX tasks_by_upstream ON tasks (provider, upstream_id)",
    "CREATE INDEX tasks_by_owner ON tasks (owner_id, status)",
    "CREATE INDEX tasks_undelivered ON tasks (id) WHERE delivered_at IS NULL",
    """
    CREATE TABLE buttons (
        token      TEXT PRIMARY KEY,
        task_id    INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        custom_id  TEXT NOT NULL,
        label      TEXT NOT NULL DEFAULT '',
        emoji      TEXT NOT NULL DEFAULT '',
        kind       TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (task_id, custom_id)
    )
    """,
    # Daily counters instead of an event log: "used today" and quota
    # reserve/refund are single-row reads and upserts on the primary key.
    """
    CREATE TABLE usage_daily (
        user_id TEXT NOT NULL,
        day     TEXT NOT NULL,
        kind    TEXT NOT NULL,
        amount  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, day, kind)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX usage_by_day ON usage_daily (day)",
)

_V2: Final = (
    # /voice on|off: answers in this conversation are also spoken (0: text only).
    "ALTER TABLE conversations ADD COLUMN voice INTEGER NOT NULL DEFAULT 0",
)

_V3: Final = (
    # Several processes on one database (design §9). A poller claims due tasks by
    # writing its name and a lease expiry; a dead process's claims lapse with the lease.
    "ALTER TABLE tasks ADD COLUMN lease_owner TEXT",
    "ALTER TABLE tasks ADD COLUMN lease_until REAL",
    # Which process may post the result: the platform's routing hint (a Discord guild,
    # "dm"), read by the process that owns that part of the platform.
    "ALTER TABLE tasks ADD COLUMN route TEXT",
    # One row per posted (or being posted) part of a result: the primary key is what makes
    # a part go out at most once, whichever process delivers.
    """
    CREATE TABLE task_parts (
        task_id    INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        part       TEXT NOT NULL,
        owner      TEXT NOT NULL,
        message_id TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (task_id, part)
    )
    """,
    # Cooldowns live here so they survive a restart and hold across processes.
    """
    CREATE TABLE cooldowns (
        user_id TEXT NOT NULL,
        kind    TEXT NOT NULL,
        until   REAL NOT NULL,
        PRIMARY KEY (user_id, kind)
    )
    """,
    # Live processes and the roles they hold (/stats, /healthz); a row is renewed
    # while its process runs and ignored once ``seen_at`` is stale.
    """
    CREATE TABLE processes (
        name       TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        seen_at    REAL NOT NULL,
        roles      TEXT NOT NULL DEFAULT ''
    )
    """,
)

#: Statements of each migration, in order; migration n is ``MIGRATIONS[n - 1]``.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3)
#: The ``user_version`` of a fully migrated file.
SCHEMA_VERSION: Final = len(MIGRATIONS)


async def user_version(db: aiosqlite.Connection) -> int:
    """The schema version stored in the file header (0 for a new file)."""
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def migrate(
    db: aiosqlite.Connection,
    migrations: tuple[tuple[str, ...], ...] = MIGRATIONS,
) -> int:
    """Bring ``db`` (opened with ``isolation_level=None``) up to date; returns its version.

    Raises :class:`SchemaTooNewError` if the file was written by a newer bot, and
    leaves such a file untouched.
    """
    target = len(migrations)
    current = await user_version(db)
    _refuse_newer(current, target)
    while current < target:
        await db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = await user_version(db)
            _refuse_newer(current, target)
            if current < target:
                for statement in migrations[current]:
                    await db.execute(statement)
                current += 1
                # PRAGMA takes no parameters; ``current`` is our own int.
                await db.execute(f"PRAGMA user_version = {current:d}")
                log.info("store migrated to schema version %d", current)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return current


def _refuse_newer(current: int, target: int) -> None:
    if current > target:
        raise SchemaTooNewError(current, target)
