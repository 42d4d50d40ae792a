"""The ops endpoint over real TCP on 127.0.0.1: /healthz and /metrics."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.core.models import ConversationKey, Platform
from bot.core.roles import DISCORD, POLLER, TELEGRAM, Roles
from bot.ops.http import OpsServer
from bot.ops.metrics import Metrics
from bot.ops.wiring import access_policy, limits_config, open_ops_server
from bot.store import NewTask, Provider, Store, TaskStatus, TaskUpdate

KEY = ConversationKey(Platform.TELEGRAM, "1")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("BOT_"):
            monkeypatch.delenv(key)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with Store.open(":memory:") as store:
        yield store


async def get(server: OpsServer, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def get_json(server: OpsServer, path: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, await response.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_off_by_default_and_on_loopback() -> None:
    http = Settings().http
    assert (http.enabled, http.host, http.port) == (False, "127.0.0.1", 9090)


async def test_healthz_ok(store: Store) -> None:
    async def discord_ready() -> bool:
        return True

    server = OpsServer(
        port=0, store=store.ping, platforms={"telegram": lambda: True, "discord": discord_ready}
    )
    async with server:
        assert server.port != 0
        status, body = await get_json(server, "/healthz")
    assert status == 200
    assert body == {"status": "ok", "store": True, "platforms": {"telegram": True, "discord": True}}


async def test_healthz_says_which_process_answers_and_its_roles_now() -> None:
    roles = Roles()
    roles.gain(POLLER)
    async with OpsServer(port=0, process="host:12", roles=roles.names) as server:
        status, body = await get_json(server, "/healthz")
        assert status == 200
        assert body == {
            "status": "ok",
            "store": True,
            "platforms": {},
            "process": "host:12",
            "roles": ["poller"],
        }
        roles.gain(DISCORD, "0,1")  # read at each request
        _, body = await get_json(server, "/healthz")
        assert isinstance(body, dict)
        assert body["roles"] == ["discord:0,1", "poller"]


async def test_healthz_503_when_a_platform_is_down() -> None:
    connected = {"telegram": True}
    server = OpsServer(port=0, platforms={"telegram": lambda: connected["telegram"]})
    async with server:
        assert (await get_json(server, "/healthz"))[0] == 200
        connected["telegram"] = False
        status, body = await get_json(server, "/healthz")
    assert status == 503
    assert body == {"status": "unavailable", "store": True, "platforms": {"telegram": False}}


async def test_healthz_503_when_the_store_is_unreachable() -> None:
    closed = await Store.connect(":memory:")
    await closed.close()
    async with OpsServer(port=0, store=closed.ping, platforms={}) as server:
        status, body = await get_json(server, "/healthz")
    assert status == 503
    assert body == {"status": "unavailable", "store": False, "platforms": {}}


async def test_a_check_that_raises_or_hangs_fails(store: Store) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    server = OpsServer(
        port=0,
        store=store.ping,
        platforms={"telegram": broken, "discord": hangs},
        check_timeout=0.05,
    )
    async with server:
        status, body = await get_json(server, "/healthz")
    assert status == 503
    assert body == {
        "status": "unavailable",
        "store": True,
        "platforms": {"telegram": False, "discord": False},
    }


async def test_metrics_scrape_matches_what_was_recorded(store: Store) -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.reply_done("tg", "ok")
    metrics.reply_done("dc", "error")
    metrics.tokens(120, 30, model="gpt-4o-mini")
    metrics.tokens(5, 0, model="gpt-4o-mini")
    metrics.upstream_error("RateLimitError", 429)
    metrics.upstream_error("APITimeoutError")
    metrics.platform_rate_limited("tg")
    metrics.platform_rate_limited("tg")
    metrics.poll_cycle(0.2, 3)
    metrics.poll_cycle(0.02, 1)
    metrics.task_state("mj", "succeeded")
    metrics.refused("quota")
    ids = [
        await store.create_task(NewTask(Provider.MIDJOURNEY, "imagine", "tg:1", KEY))
        for _ in range(3)
    ]
    await store.update_task(TaskUpdate(ids[0], status=TaskStatus.SUCCEEDED))
    await store.update_task(TaskUpdate(ids[1], status=TaskStatus.RUNNING))

    async def refresh() -> None:
        await metrics.refresh(store)

    async with OpsServer(port=0, metrics=metrics, before_scrape=refresh) as server:
        status, content_type, text = await get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    found = samples(text)
    assert found[("cometbot_replies_total", (("outcome", "ok"), ("platform", "tg")))] == 3
    assert found[("cometbot_replies_total", (("outcome", "error"), ("platform", "dc")))] == 1
    tokens = "cometbot_tokens_total"
    assert found[(tokens, (("model", "gpt-4o-mini"), ("type", "prompt")))] == 125
    assert found[(tokens, (("model", "gpt-4o-mini"), ("type", "completion")))] == 30
    errors = "cometbot_upstream_errors_total"
    assert found[(errors, (("kind", "RateLimitError"), ("status", "429")))] == 1
    assert found[(errors, (("kind", "APITimeoutError"), ("status", "")))] == 1
    assert found[("cometbot_platform_rate_limited_total", (("platform", "tg"),))] == 2
    assert found[("cometbot_poll_cycle_seconds_count", ())] == 2
    assert found[("cometbot_poll_cycle_seconds_sum", ())] == pytest.approx(0.22)
    assert found[("cometbot_poll_cycle_seconds_bucket", (("le", "0.05"),))] == 1
    assert found[("cometbot_poll_requests_total", ())] == 4
    transitions = "cometbot_task_transitions_total"
    assert found[(transitions, (("provider", "mj"), ("status", "succeeded")))] == 1
    assert found[("cometbot_requests_refused_total", (("reason", "quota"),))] == 1
    # The gauges come from the store at scrape time.
    assert found[("cometbot_tasks", (("provider", "mj"), ("status", "pending")))] == 1
    assert found[("cometbot_tasks", (("provider", "mj"), ("status", "running")))] == 1
    assert found[("cometbot_tasks", (("provider", "mj"), ("status", "succeeded")))] == 1
    assert found[("cometbot_queue_length", ())] == 2


async def test_metrics_use_a_private_registry() -> None:
    from prometheus_client import REGISTRY, generate_latest

    first, second = Metrics(), Metrics()  # no "duplicated timeseries" between instances
    first.reply_done("tg", "ok")
    assert b"cometbot_" not in generate_latest(REGISTRY)
    key = ("cometbot_replies_total", (("outcome", "ok"), ("platform", "tg")))
    assert key in samples(first.render().decode())
    assert key not in samples(second.render().decode())


async def test_no_metrics_object_means_404() -> None:
    async with OpsServer(port=0) as server:
        status, _, _ = await get(server, "/metrics")
    assert status == 404


async def test_a_failing_refresh_still_serves_metrics() -> None:
    metrics = Metrics()
    metrics.reply_done("tg", "ok")

    async def broken() -> None:
        raise RuntimeError("store closed")

    async with OpsServer(port=0, metrics=metrics, before_scrape=broken) as server:
        status, _, text = await get(server, "/metrics")
    assert status == 200
    assert "cometbot_replies_total" in text


async def test_open_ops_server_from_settings(store: Store) -> None:
    off = Settings()
    async with open_ops_server(off.http, metrics=Metrics(), store=store) as server:
        assert server is None
    on = Settings(http={"enabled": True, "port": 0})
    roles = Roles()
    roles.gain(TELEGRAM)
    async with open_ops_server(
        on.http, metrics=Metrics(), store=store, process="host:3", roles=roles.names
    ) as server:
        assert server is not None
        server.add_platform("telegram", lambda: True)
        status, body = await get_json(server, "/healthz")
        assert status == 200
        assert body == {
            "status": "ok",
            "store": True,
            "platforms": {"telegram": True},
            "process": "host:3",
            "roles": ["telegram"],
        }
        status, _, text = await get(server, "/metrics")
        assert status == 200
        assert "cometbot_queue_length 0.0" in text


def test_policy_and_limits_from_settings() -> None:
    settings = Settings(
        access={"users": ["tg:1"], "admins": ["dc:9"], "telegram_chats": [-5]},
        limits={"daily_imagine": 4, "chat_cooldown_seconds": 2.5},
    )
    policy = access_policy(settings.access)
    assert policy.users == {"tg:1"}
    assert policy.telegram_chats == {"-5"}
    assert policy.is_admin("dc:9")
    config = limits_config(settings.limits, settings.access)
    assert (config.daily_imagine, config.chat_cooldown, config.max_concurrent_tasks) == (4, 2.5, 3)
    assert config.exempt == {"dc:9"}
    strict = Settings(access={"admins": ["dc:9"], "admins_exempt_from_limits": False})
    assert limits_config(strict.limits, strict.access).exempt == frozenset()
