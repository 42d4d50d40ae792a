"""What processes sharing one database tell each other (design §9).

* :meth:`Coordination.task_ready`: a finished task waits for the process that posts to its
  chat (``NOTIFY cometbot_ready``); :meth:`Coordination.listen` hears it there.
* :meth:`Coordination.role_lock`: an exclusive role (Telegram) as a session-level advisory
  lock on a connection of its own. PostgreSQL ends the session when the process dies (at
  once after a kill; within seconds after a lost machine, by the TCP keepalives set
  below), and the lock goes with it.

With SQLite there is one process: nothing to tell, and every lock is this process's
(:class:`LocalCoordination`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Protocol

from bot.core.roles import RoleLock

__all__ = ["READY_CHANNEL", "Coordination", "LocalCoordination", "PostgresCoordination"]

log = logging.getLogger(__name__)

READY_CHANNEL: Final = "cometbot_ready"
#: Advisory lock keys of the exclusive roles (any constants of ours).
ROLE_KEYS: Final = {"telegram": 0x636F6D6574_01, "discord": 0x636F6D6574_02}
#: The server drops a silent client's session after about 5 + 2 * 3 seconds.
_KEEPALIVES: Final = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "application_name": "cometbot-role",
}
PROBE_INTERVAL: Final = 3.0
"""How often a role holder checks its lock's session is still there."""
RECONNECT_DELAY: Final = 2.0


class Coordination(Protocol):
    async def task_ready(self, task_id: int) -> None: ...

    def listen(
        self, on_ready: Callable[[int], None]
    ) -> contextlib.AbstractAsyncContextManager[None]: ...

    def role_lock(self, role: str) -> RoleLock: ...


class _AlwaysHeld:
    async def acquire(self) -> bool:
        return True

    async def wait_lost(self) -> None:
        await asyncio.Event().wait()  # never, in one process

    async def release(self) -> None:
        return None


class LocalCoordination:
    """One process on a SQLite file: it owns everything, nobody to tell."""

    async def task_ready(self, task_id: int) -> None:
        return None

    @contextlib.asynccontextmanager
    async def listen(self, on_ready: Callable[[int], None]) -> AsyncIterator[None]:
        yield

    def role_lock(self, role: str) -> RoleLock:
        return _AlwaysHeld()


class _AdvisoryLock:
    """A session-level advisory lock on a dedicated connection (see the module docstring)."""

    def __init__(self, url: str, key: int) -> None:
        self._url = url
        self._key = key
        self._connection: Any = None
        self._closed = asyncio.Event()

    async def acquire(self) -> bool:
        import asyncpg

        if self._connection is None or self._connection.is_closed():
            self._closed = asyncio.Event()
            closed = self._closed
            self._connection = await asyncpg.connect(self._url, server_settings=_KEEPALIVES)
            self._connection.add_termination_listener(lambda _: closed.set())
        held = await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
        return bool(held)

    async def wait_lost(self) -> None:
        # The termination listener hears a closed connection; a silent one (a cut network)
        # is found by a probe that does not answer in time.
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), PROBE_INTERVAL)
                return
            try:
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), PROBE_INTERVAL)
            except Exception as exc:
                log.warning("role lock: the database does not answer (%s)", exc)
                return

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            # Ending the session releases the lock, whatever state it is in.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), PROBE_INTERVAL)
            if not connection.is_closed():
                connection.terminate()


class PostgresCoordination:
    """Processes on one PostgreSQL database (``url``); ``notify`` runs on the store's pool."""

    def __init__(self, url: str, notify: Callable[[str, str], Any]) -> None:
        self._url = url
        self._notify = notify

    async def task_ready(self, task_id: int) -> None:
        await self._notify(READY_CHANNEL, str(task_id))

    @contextlib.asynccontextmanager
    async def listen(self, on_ready: Callable[[int], None]) -> AsyncIterator[None]:
        """Call ``on_ready(task_id)`` for every notification until the block ends; a lost
        connection is made again (the owner's sweep covers what was missed meanwhile)."""
        task = asyncio.get_running_loop().create_task(self._listen(on_ready))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self, on_ready: Callable[[int], None]) -> None:
        import asyncpg

        def heard(_connection: Any, _pid: int, _channel: str, payload: object) -> None:
            with contextlib.suppress(ValueError):
                on_ready(int(str(payload)))

        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self._url, server_settings=_KEEPALIVES)
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _, closed=closed: closed.set())
                await connection.add_listener(READY_CHANNEL, heard)
                await closed.wait()
                log.warning("handoff listener: the connection closed; connecting again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("handoff listener: %s; trying again in %.0f s", exc, RECONNECT_DELAY)
            finally:
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(RECONNECT_DELAY)

    def role_lock(self, role: str) -> RoleLock:
        return _AdvisoryLock(self._url, ROLE_KEYS[role])
