"""Both store backends for one test suite: ``store_location`` is a SQLite ``":memory:"``
database or a fresh PostgreSQL database, and tests using it run once on each;
``durable_location`` is one that several stores can open in turn or at once (a SQLite
file), standing for a restart or for several processes."""

from __future__ import annotations

from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_location(backend: str, request: pytest.FixtureRequest) -> str:
    """Where a test's store lives: SQLite in memory, or an empty PostgreSQL database."""
    if backend == "sqlite":
        return ":memory:"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def durable_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database that outlives one open store: a SQLite file, or a PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "bot.db")
    return str(request.getfixturevalue("postgres_url"))
