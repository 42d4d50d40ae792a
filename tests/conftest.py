"""Fixtures shared across tests: the fake CometAPI, and a throwaway PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.cometapi import FakeCometAPI, RecordingSleep
from tests.pgserver import PostgresServer


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    """The fake CometAPI on 127.0.0.1, one per test."""
    async with FakeCometAPI() as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    """A stand-in for the client's retry sleep that records the delays instead of waiting."""
    return RecordingSleep()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run, started only when a test first asks for it."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a fresh empty database on the shared server, dropped after the test."""
    url = await postgres_server.create_database()
    try:
        yield url
    finally:
        await postgres_server.drop_database(url.rsplit("/", 1)[1])


pytest_plugins = ["tests.backends"]
