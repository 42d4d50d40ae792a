"""Fixtures shared by the CometAPI client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.cometapi import FakeCometAPI, RecordingSleep


@pytest.fixture
async def fake() -> AsyncIterator[FakeCometAPI]:
    """The fake CometAPI on 127.0.0.1, one per test."""
    async with FakeCometAPI() as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    """A stand-in for the client's retry sleep that records the delays instead of waiting."""
    return RecordingSleep()


pytest_plugins = ["tests.backends"]
