"""Two real ``python -m bot`` processes on one PostgreSQL database (design §9): chats are
answered once, a task submitted in one process is delivered once by the other after the
first is killed, the Telegram role moves to the survivor within 15 s, and no task is
fetched twice in one round."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import socket
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.test_shutdown import BotProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
USER = 42
TAKEOVER_WITHIN = 15.0
FIRST_INTERVAL = 0.5
JITTER = 0.1


def write_config(
    tmp_path: Path, comet: FakeCometAPI, tg: FakeTelegram, url: str, telegram: str = ""
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[cometapi]
api_key = "{comet.api_key}"
base_url = "{comet.base_url}"
timeout = 5

[telegram]
token = "{tg.token}"
api_base_url = "{tg.api_base_url}"
file_base_url = "{tg.file_base_url}"
{telegram}

[storage]
url = "{url}"

[generation]
poll_first_interval = {FIRST_INTERVAL}
poll_max_interval = 1.0
poll_jitter = {JITTER}
poll_batch_window = 0.0
poll_lease = 3
poll_takeover_grace = 1

[logging]
level = "DEBUG"
""",
        encoding="utf-8",
    )
    return path


class Process(BotProcess):
    """``python -m bot`` in the background, its output in ``log``; started once it says so
    (a standby never polls Telegram)."""

    def __init__(self, config: Path, log: Path) -> None:
        super().__init__(config, log)
        self.log = log

    async def start(self) -> None:  # type: ignore[override]
        await self.launch()
        await self.wait_log("cometbot is running", 30)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def wait_log(self, needle: str, timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc is not None
            if self.proc.returncode is not None:
                pytest.fail(f"the bot exited early:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {needle!r} within {timeout} s:\n{self.text()[-3000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def wait_exit(self) -> None:
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 5)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def polls_by_task(comet: FakeCometAPI) -> dict[str, list[float]]:
    """When each upstream task id was fetched (Midjourney's batch poll carries ids)."""
    seen: dict[str, list[float]] = defaultdict(list)
    for request in comet.requests_to("/mj/task/list-by-condition"):
        for task_id in (request.json or {}).get("ids", []):
            seen[task_id].append(request.at)
    return seen


async def test_two_processes_share_the_work_and_survive_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram() as tg:
        config = write_config(tmp_path, comet, tg, postgres_url)
        first = Process(config, tmp_path / "first.log")
        second = Process(config, tmp_path / "second.log")
        try:
            await first.start()
            await first.wait_log("telegram: this process holds the role now", 10)
            await second.start()

            # Chats are answered once: one process receives Telegram's updates.
            tg.inject_private_message("hello both", user_id=USER)
            await tg.wait_for(lambda: tg.texts(USER) == ["Echo: hello both"], timeout=15)

            # /imagine in the first process; the task outlives it.
            comet.auto_advance = False
            tg.inject_private_message("/imagine a lighthouse in fog", user_id=USER)
            await comet.wait_for(lambda: comet.requests_to("/mj/task/list-by-condition"), 15)
            first.kill()
            killed_at = time.monotonic()
            await first.wait_exit()
            polls = len(tg.calls("getUpdates"))
            # Sent while no process receives: Telegram keeps it for the next one.
            tg.inject_private_message("still there?", user_id=USER)

            # The survivor takes the Telegram role within 15 s and gets the held update.
            await tg.wait_for(lambda: len(tg.calls("getUpdates")) > polls, TAKEOVER_WITHIN)
            took_over = time.monotonic() - killed_at
            assert took_over <= TAKEOVER_WITHIN
            await second.wait_log("telegram: this process holds the role now", 1)

            comet.auto_advance = True
            photos = lambda: [m for m in tg.messages(USER) if m.media_type == "photo"]  # noqa: E731
            await tg.wait_for(photos, timeout=30)
            await tg.wait_for(lambda: "Echo: still there?" in tg.texts(USER), timeout=15)
            await tg.wait_idle(quiet=1.0)
        finally:
            await first.stop()
            await second.stop()

        assert len(photos()) == 1  # delivered exactly once, by the survivor
        assert len(comet.requests_to("/mj/submit")) == 1  # never resubmitted
        assert tg.texts(USER).count("Echo: hello both") == 1
        assert tg.texts(USER).count("Echo: still there?") == 1
        assert len(comet.requests_to("/v1/chat/completions")) == 2
        # No task was fetched twice in one round: between two fetches of a task lies at
        # least its shortest poll interval (two processes polling it would be near-together).
        for task_id, times in polls_by_task(comet).items():
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(gap >= FIRST_INTERVAL * (1 - JITTER) - 0.05 for gap in gaps), (task_id, gaps)
        assert "Traceback" not in second.text()
        print(f"Telegram role taken over {took_over:.2f} s after the kill")


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so no client socket of the processes
    (asyncpg, aiohttp) can take it between now and the bot's bind."""
    for port in random.sample(range(20_000, 32_000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


async def deliver_when_someone_listens(tg: FakeTelegram, within: float) -> float:
    """Post the pending update to the webhook until a process answers 200; how long it took."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(aiohttp.ClientConnectionError):
            if await tg.deliver_webhook() == 200:
                return time.monotonic() - started
        if time.monotonic() - started > within:
            pytest.fail(f"nobody served the webhook within {within} s")
        await asyncio.sleep(0.1)


async def test_in_webhook_mode_the_survivor_serves_the_webhook_and_gets_held_updates(
    tmp_path: Path, postgres_url: str
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        port = free_port()
        webhook = (
            f'webhook_url = "http://127.0.0.1:{port}/tg"\n'
            'webhook_secret = "s3cret-token"\n'
            f'webhook_listen = "127.0.0.1:{port}"\n'
        )
        config = write_config(tmp_path, comet, tg, postgres_url, telegram=webhook)
        first = Process(config, tmp_path / "first.log")
        second = Process(config, tmp_path / "second.log")
        try:
            await first.start()
            await first.wait_log("telegram: this process holds the role now", 10)
            await second.start()
            tg.inject_private_message("over the hook", user_id=USER)
            await deliver_when_someone_listens(tg, 5)
            await tg.wait_for(lambda: "Echo: over the hook" in tg.texts(USER), timeout=15)

            first.kill()
            await first.wait_exit()
            # Telegram holds the update while nobody answers, and tries again.
            tg.inject_private_message("anyone?", user_id=USER)
            took = await deliver_when_someone_listens(tg, TAKEOVER_WITHIN)
            await tg.wait_for(lambda: "Echo: anyone?" in tg.texts(USER), timeout=15)
            await tg.wait_idle(quiet=0.5)
        finally:
            await first.stop()
            await second.stop()
        assert took <= TAKEOVER_WITHIN
        assert tg.texts(USER) == ["Echo: over the hook", "Echo: anyone?"]
        assert len(tg.calls("setWebhook")) == 2  # one per holder, the same URL and secret
        assert tg.calls("deleteWebhook") == [] and tg.calls("getUpdates") == []
        print(f"webhook served by the survivor {took:.2f} s after the kill")
