"""Operators, end to end through ``bot.app.run_service``: access lists, quotas and their
refunds, limits under a burst, /usage and /stats, the metrics endpoint."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.ops.wiring import process_name
from bot.store import Store
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram import FakeTelegram
from tests.generation_world import generation_settings, running_service
from tests.world import chat_requests, discord_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
OTHER = 7


def with_sections(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """``settings`` with whole sections replaced (validated like the TOML file would be)."""
    data = settings.model_dump()
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    for name in ("cometapi", "telegram", "discord"):  # SecretStr dumps masked: keep the values
        data[name] = getattr(settings, name)
    return Settings(**data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def texts(tg: FakeTelegram, chat: int) -> list[str]:
    return [m.text or m.caption or "" for m in tg.messages(chat)]


async def test_a_user_outside_the_allow_list_is_refused_on_telegram(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        settings = with_sections(
            generation_settings(tmp_path, comet, tg), access={"users": [f"tg:{USER}"]}
        )
        comet.script_chat(tokens=["welcome back"])
        async with running_service(settings, tg):
            tg.inject_private_message("let me in", user_id=OTHER)
            await tg.wait_for(lambda: texts(tg, OTHER), timeout=10)
            tg.inject_private_message("/imagine a cat", user_id=OTHER)
            tg.inject_private_message("hello", user_id=USER)
            await tg.wait_for(lambda: "welcome back" in texts(tg, USER), timeout=10)
            await tg.wait_idle(quiet=0.3)
        (refusal,) = texts(tg, OTHER)  # said once; the repeat within a minute stays quiet
        assert "this bot is private" in refusal and f"tg:{OTHER}" in refusal
        assert len(chat_requests(comet)) == 1  # only the allowed user reached the model
        assert comet.requests_to("/mj/submit") == []


async def test_a_user_outside_the_allow_list_is_refused_on_discord(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeDiscord() as dc:
        async with discord_service(tmp_path, comet, dc, sections={"access": {"users": ["dc:1"]}}):
            dm = int(dc.dm_channel()["id"])
            await dc.say("hello bot")
            await dc.wait_for(lambda: dc.messages(dm), timeout=10)
            inter = await dc.interact(dc.slash("chat", {"prompt": "and now?"}))
            await dc.wait_for(lambda: dc.interaction(inter.id).acked, timeout=10)
        refusal = dc.messages(dm)[0].content
        assert "this bot is private" in refusal
        assert dc.interaction(inter.id).responses[0]["data"]["flags"] & 64  # ephemeral
        assert "this bot is private" in dc.interaction(inter.id).responses[0]["data"]["content"]
        assert chat_requests(comet) == []


async def test_daily_quota_stops_the_next_generation_and_failures_are_refunded(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = with_sections(
            generation_settings(tmp_path, comet, tg), limits={"daily_imagine": 1}
        )
        comet.fail_next_task("mj", "任务执行超时")
        async with running_service(settings, tg):
            tg.inject_private_message("/imagine a lighthouse", user_id=USER)
            await tg.wait_for(lambda: any("❌" in t for t in texts(tg, USER)), 15)
            # the failed task gave the quota back: one more is allowed...
            tg.inject_private_message("/imagine a lighthouse at dawn", user_id=USER)
            await tg.wait_for(lambda: any(m.media_type == "photo" for m in tg.messages(USER)), 20)
            # ...and the one after that is refused before anything is submitted
            tg.inject_private_message("/imagine a third lighthouse", user_id=USER)
            await tg.wait_for(lambda: any("quota" in t for t in texts(tg, USER)), 10)
            tg.inject_private_message("/usage", user_id=USER)
            await tg.wait_for(lambda: any("Your use today" in t for t in texts(tg, USER)), 10)
        assert len(comet.requests_to("/mj/submit/imagine")) == 2
        refusal = next(t for t in texts(tg, USER) if "quota" in t)
        assert "You have used your 1 image for today" in refusal
        usage = next(t for t in texts(tg, USER) if "Your use today" in t)
        assert "Images: 1 — 0 of 1 left" in usage
        assert tg.violations == 0


async def test_concurrent_task_cap_and_cooldown_hold_under_a_burst_of_20(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = with_sections(
            generation_settings(tmp_path, comet, tg),
            limits={"max_concurrent_tasks": 3, "chat_cooldown_seconds": 60},
        )
        comet.auto_advance = False  # the tasks stay in flight
        async with running_service(settings, tg):
            for i in range(20):
                tg.inject_private_message(f"/imagine burst {i}", user_id=USER)
            for i in range(20):
                tg.inject_private_message(f"question {i}", user_id=OTHER)
            await comet.wait_for(lambda: len(comet.requests_to("/mj/submit")) >= 3, 15)
            await comet.wait_for(lambda: chat_requests(comet), 15)
            await tg.wait_idle(quiet=1.0, timeout=30)
        assert len(comet.requests_to("/mj/submit/imagine")) == 3
        assert len(chat_requests(comet)) == 1
        # refusals are told once, not 17 and 19 times: the chat's send budget is not wasted
        assert sum("generations in progress" in t for t in texts(tg, USER)) == 1
        assert sum("Please wait" in t for t in texts(tg, OTHER)) == 1
        assert tg.total_429s == 0 and tg.violations == 0


async def test_usage_stats_and_metrics_match_the_work_done(tmp_path: Path) -> None:
    port = free_port()
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        settings = with_sections(
            generation_settings(tmp_path, comet, tg),
            access={"admins": [f"tg:{USER}"]},
            http={"enabled": True, "port": port},
        )
        comet.script_chat(tokens=["one"], usage=(9, 2))
        comet.script_chat(tokens=["two"], usage=(20, 3))
        async with running_service(settings, tg):
            tg.inject_private_message("first", user_id=OTHER)
            await tg.wait_for(lambda: "one" in texts(tg, OTHER), 10)
            tg.inject_private_message("second", user_id=OTHER)
            await tg.wait_for(lambda: "two" in texts(tg, OTHER), 10)
            # /reset waits for the answer in flight to be stored: the figures are final then
            tg.inject_private_message("/reset", user_id=OTHER)
            await tg.wait_for(lambda: any("fresh" in t for t in texts(tg, OTHER)), 10)
            tg.inject_private_message("/usage", user_id=OTHER)
            await tg.wait_for(lambda: any("Your use today" in t for t in texts(tg, OTHER)), 10)
            tg.inject_private_message("/stats", user_id=OTHER)  # not an admin
            await tg.wait_for(
                lambda: any("only the bot's admins" in t for t in texts(tg, OTHER)), 10
            )
            tg.inject_private_message("/stats", user_id=USER)
            await tg.wait_for(lambda: any("Chat turns" in t for t in texts(tg, USER)), 10)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await http.get("/healthz")
                metrics = (await http.get("/metrics")).text
        usage = next(t for t in texts(tg, OTHER) if "Your use today" in t)
        assert "Chat: 2 replies, 34 tokens" in usage  # 9+2 and 20+3, as CometAPI reported
        stats = next(t for t in texts(tg, USER) if "Chat turns" in t)
        assert "Chat turns: 2" in stats
        assert "Tokens: 34 (29 prompt, 5 completion)" in stats
        assert health.status_code == 200
        assert health.json()["platforms"] == {"telegram": True}
        # This process, the poller, is in /healthz and (from the registry) in /stats.
        assert health.json()["process"] == process_name()
        assert "poller" in health.json()["roles"]
        assert f"Processes: 1 — {process_name()} (poller" in stats
        async with Store.open(settings.storage.location) as store:
            assert await store.live_processes(3600) == []  # a clean stop removed its row
        assert 'cometbot_replies_total{outcome="ok",platform="tg"} 2.0' in metrics
        assert 'cometbot_tokens_total{model="gpt-4o-mini",type="prompt"} 29.0' in metrics
        assert 'cometbot_tokens_total{model="gpt-4o-mini",type="completion"} 5.0' in metrics
        assert "cometbot_requests_refused_total" in metrics
