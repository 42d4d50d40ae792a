"""The optional operations endpoint (``[http] enabled``): ``GET /healthz`` and ``GET /metrics``.

``/healthz`` answers 200 ``{"status": "ok", "store": true, "platforms": {"telegram": true},
"process": "host:12", "roles": ["poller", "telegram"]}`` when every check passes and 503
(``"status": "unavailable"``) when the store cannot answer or a platform is disconnected.
Checks are callables passed in, sync or async; one fails by returning ``False``, raising, or
taking longer than :data:`CHECK_TIMEOUT` (so ``store.ping``, which returns None or raises, is
a check as it is). ``process`` and ``roles`` say which process answered and what it holds
now (design §9: with several processes, each serves its own endpoint); they are there when
the server is given them.
``/metrics`` is the Prometheus text of :class:`bot.ops.metrics.Metrics`, with the task
gauges read from the store first.

Bind it to loopback (the default) or put it behind something that restricts access: it
shows counts, never ids, prompts or secrets.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Final

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE, Metrics

__all__ = ["CHECK_TIMEOUT", "HealthCheck", "OpsServer"]

log = logging.getLogger(__name__)

HealthCheck = Callable[[], "bool | Awaitable[bool | None] | None"]
CHECK_TIMEOUT: Final = 2.0
_METRICS_CONTENT_TYPE: Final = CONTENT_TYPE.split(";")[0]


async def _passes(name: str, check: HealthCheck, limit: float) -> bool:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, limit)
        return result is not False
    except Exception as exc:
        log.warning("healthz: %s check failed: %s", name, type(exc).__name__)
        return False


class OpsServer:
    """``async with OpsServer(...) as server:`` serves until the block ends.

    ``store`` is the store's check (``store.ping``), ``platforms``
    one check per platform name, ``before_scrape`` an async hook run before each /metrics
    (e.g. ``lambda: metrics.refresh(store)``). ``port=0`` picks a free port (see :attr:`port`).
    ``process`` is this process's name and ``roles`` reads the roles it holds (``Roles.names``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9090,
        metrics: Metrics | None = None,
        store: HealthCheck | None = None,
        platforms: Mapping[str, HealthCheck] | None = None,
        before_scrape: Callable[[], Awaitable[None]] | None = None,
        check_timeout: float = CHECK_TIMEOUT,
        process: str | None = None,
        roles: Callable[[], Sequence[str]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._store = store
        self._platforms = dict(platforms or {})
        self._before_scrape = before_scrape
        self._timeout = check_timeout
        self._process = process
        self._roles = roles
        self._runner: web.AppRunner | None = None
        self.port = port

    def add_platform(self, name: str, check: HealthCheck) -> None:
        """Add a platform check (platforms start after the server, so they register late)."""
        self._platforms[name] = check

    async def health(self) -> tuple[bool, dict[str, object]]:
        """Run every check; whether all passed and the /healthz body."""
        store_ok = self._store is None or await _passes("store", self._store, self._timeout)
        names = list(self._platforms)
        results = await asyncio.gather(
            *(_passes(name, self._platforms[name], self._timeout) for name in names)
        )
        platforms = dict(zip(names, results, strict=True))
        ok = store_ok and all(results)
        body: dict[str, object] = {
            "status": "ok" if ok else "unavailable",
            "store": store_ok,
            "platforms": platforms,
        }
        if self._process is not None:
            body["process"] = self._process
        if self._roles is not None:
            body["roles"] = list(self._roles())
        return ok, body

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, body = await self.health()
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        if self._metrics is None:
            raise web.HTTPNotFound
        if self._before_scrape is not None:
            try:
                await asyncio.wait_for(self._before_scrape(), self._timeout)
            except Exception as exc:  # stale gauges beat no metrics at all
                log.warning("metrics: refreshing from the store failed: %s", type(exc).__name__)
        return web.Response(
            body=self._metrics.render(), content_type=_METRICS_CONTENT_TYPE, charset="utf-8"
        )

    async def __aenter__(self) -> OpsServer:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("ops endpoint on http://%s:%d (/healthz, /metrics)", self._host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
