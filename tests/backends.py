"""Both store backends for one test suite: ``store_location`` is a SQLite ``":memory:"``
database or a fresh PostgreSQL database, and tests using it run once on each."""

from __future__ import annotations

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
