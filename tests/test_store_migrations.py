"""Opening the store: migrations, pragmas, refusal of newer files, cleanup on failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.core.models import ConversationKey, Platform, Role, Turn
from bot.store import SCHEMA_VERSION, NewTask, Provider, SchemaTooNewError, Store
from bot.store.errors import ConstraintError
from bot.store.migrations import migrate, user_version

KEY = ConversationKey(Platform.TELEGRAM, "100")
TABLES = {"conversations", "turns", "tasks", "buttons", "usage_daily"}


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def _schema(path: Path) -> list[tuple[str, str]]:
    with _raw(path) as conn:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


async def test_new_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    async with Store.open(path):
        pass
    conn = _raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names >= TABLES
    conn.close()


async def test_file_database_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Store.open(path):
        conn = _raw(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


async def test_memory_database_works() -> None:
    async with Store.open(":memory:") as store:
        await store.add_turn(KEY, Turn(Role.USER, "hi"))
        assert [t.content for t in await store.recent_turns(KEY, limit=5)] == ["hi"]


async def test_foreign_keys_are_enforced() -> None:
    async with Store.open(":memory:") as store:
        with pytest.raises(ConstraintError):
            await store.create_task(
                NewTask(Provider.MIDJOURNEY, "action", "tg:1", KEY, parent_id=999)
            )


async def test_reopening_keeps_data_and_changes_no_schema(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Store.open(path) as store:
        await store.add_turn(KEY, Turn(Role.USER, "remember me", speaker="Ann"))
        await store.set_model(KEY, "gpt-4o")
    before = _schema(path)

    # Migration 1 uses plain CREATE TABLE: re-running it would raise "already exists".
    async with Store.open(path) as store:
        turns = await store.recent_turns(KEY, limit=10)
        settings = await store.get_settings(KEY)

    assert [(t.content, t.speaker) for t in turns] == [("remember me", "Ann")]
    assert settings.model == "gpt-4o"
    assert _schema(path) == before
    with _raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with _raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNewError) as caught:
        async with Store.open(path):
            pytest.fail("a newer file must not open")
    assert caught.value.found == SCHEMA_VERSION + 1
    assert caught.value.known == SCHEMA_VERSION
    assert "newer" in str(caught.value)
    assert _schema(path) == []
    with _raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


async def test_failed_open_closes_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "future.sqlite3"
    with _raw(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    closed: list[aiosqlite.Connection] = []
    original_close = aiosqlite.Connection.close

    async def spy_close(self: aiosqlite.Connection) -> None:
        closed.append(self)
        await original_close(self)

    monkeypatch.setattr(aiosqlite.Connection, "close", spy_close)
    with pytest.raises(SchemaTooNewError):
        await Store.connect(path)
    assert len(closed) == 1


async def test_each_migration_runs_once_in_order(tmp_path: Path) -> None:
    migrations = (
        ("CREATE TABLE log (step INTEGER)", "INSERT INTO log VALUES (1)"),
        ("INSERT INTO log VALUES (2)",),
    )
    async with aiosqlite.connect(tmp_path / "m.sqlite3", isolation_level=None) as db:
        assert await migrate(db, migrations[:1]) == 1
        assert await migrate(db, migrations) == 2
        assert await migrate(db, migrations) == 2
        rows = list(await db.execute_fetchall("SELECT step FROM log ORDER BY rowid"))
        assert [r[0] for r in rows] == [1, 2]
        assert await user_version(db) == 2


async def test_failing_migration_rolls_back_completely(tmp_path: Path) -> None:
    migrations = (
        ("CREATE TABLE ok (x INTEGER)",),
        ("CREATE TABLE half (x INTEGER)", "INSERT INTO no_such_table VALUES (1)"),
    )
    async with aiosqlite.connect(tmp_path / "m.sqlite3", isolation_level=None) as db:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(db, migrations)
        assert await user_version(db) == 1
        names = {r[0] for r in await db.execute_fetchall("SELECT name FROM sqlite_master")}
        assert names == {"ok"}
        assert not db.in_transaction


async def test_close_is_idempotent() -> None:
    store = await Store.connect(":memory:")
    await store.close()
    await store.close()


async def test_migration_2_adds_the_voice_setting_off_for_existing_chats(tmp_path: Path) -> None:
    from bot.store.migrations import MIGRATIONS

    path = tmp_path / "v1.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, MIGRATIONS[:1]) == 1
        await db.execute(
            "INSERT INTO conversations (key, platform, created_at, model) VALUES (?, ?, 0, ?)",
            (str(KEY), KEY.platform.value, "gpt-4o"),
        )
    async with Store.open(path) as store:
        before = await store.get_settings(KEY)
        assert (before.model, before.voice) == ("gpt-4o", False)
        await store.set_voice(KEY, True)
        assert (await store.get_settings(KEY)).voice is True
        await store.set_voice(KEY, False)
        assert (await store.get_settings(KEY)).voice is False
    assert SCHEMA_VERSION >= 2


async def test_migration_3_keeps_tasks_in_flight_claimable(tmp_path: Path) -> None:
    """A file from before several processes: its tasks have no route, lease or parts yet,
    and the poller of the new version claims them as before."""
    from bot.store import TaskStatus, TaskUpdate
    from bot.store.migrations import MIGRATIONS

    path = tmp_path / "v2.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, MIGRATIONS[:2]) == 2
        await db.execute(
            "INSERT INTO tasks (provider, kind, owner_id, conversation, status, upstream_id,"
            " next_poll_at, created_at, updated_at) VALUES"
            " ('mj', 'imagine', 'tg:1', ?, 'running', 'u1', 10, 0, 0)",
            (str(KEY),),
        )
    async with Store.open(path, clock=lambda: 100.0) as store:
        (task,) = await store.claim_due_tasks("p", due_before=100, lease=30, limit=5)
        assert (task.route, task.status, task.lease_owner) == (None, TaskStatus.RUNNING, "p")
        await store.update_tasks([TaskUpdate(task.id, progress=5)], release=True)
        assert await store.claim_part(task.id, "image", "p")
