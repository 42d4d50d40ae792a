"""The real process: ``python -m bot`` against the fakes, stopped with SIGTERM.

SIGTERM during a streamed reply leaves its final text delivered and the process gone within
10 s; tasks in flight stay in the store and a restart delivers them; the full log of a
session (at DEBUG) contains neither the API key nor the bot token.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.world import rendered

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
USER = 42
TOKEN = "123456:AAHfakeTokenForTestsOnly0123456789xyz"
STOP_WITHIN = 10.0


def write_config(tmp_path: Path, comet: FakeCometAPI, tg: FakeTelegram) -> Path:
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

[storage]
path = "{tmp_path / "bot.sqlite3"}"

[generation]
poll_first_interval = 0.2
poll_max_interval = 0.5
poll_batch_window = 0.0

[logging]
level = "DEBUG"
""",
        encoding="utf-8",
    )
    return path


class BotProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self._config = config
        self._log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, tg: FakeTelegram) -> None:
        polls = len(tg.calls("getUpdates"))
        await self.launch()
        await tg.wait_for(lambda: len(tg.calls("getUpdates")) > polls, timeout=30)

    async def launch(self) -> None:
        """Start ``python -m bot`` with no ``BOT_*`` variables of ours; don't wait."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        with self._log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(self._config),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def terminate(self) -> int:
        """SIGTERM, then the exit code; fails the test if it takes longer than 10 s."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), STOP_WITHIN)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            pytest.fail(f"the bot did not stop within {STOP_WITHIN:.0f} s of SIGTERM")


async def test_sigterm_during_a_streamed_reply_flushes_it_and_exits(tmp_path: Path) -> None:
    tokens = [f"w{i} " for i in range(20)] + ["end."]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeTelegram(token=TOKEN) as tg:
        bot = BotProcess(write_config(tmp_path, comet, tg), tmp_path / "bot.log")
        comet.script_chat(tokens=tokens, delay=0.08)  # ~1.7 s of streaming
        await bot.start(tg)
        tg.inject_private_message("tell me", user_id=USER)
        await tg.wait_for_call("sendMessage", USER, timeout=15)  # the reply is visible
        assert await bot.terminate() == 0
        messages = tg.messages(USER)
        assert messages[-1].text == rendered(answer)  # finished within the grace period
        assert tg.violations == 0
        log = (tmp_path / "bot.log").read_text(encoding="utf-8", errors="replace")
    assert "stopped" in log
    # The real process runs on the event loop production gets (uvloop off Windows).
    assert f"cometbot is running on {'asyncio' if sys.platform == 'win32' else 'uvloop'}" in log
    assert comet.api_key not in log
    assert TOKEN not in log and TOKEN.split(":", 1)[1] not in log


async def test_tasks_in_flight_at_sigterm_are_delivered_after_a_restart(tmp_path: Path) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(token=TOKEN) as tg:
        bot = BotProcess(write_config(tmp_path, comet, tg), tmp_path / "bot.log")
        comet.auto_advance = False  # the task outlives the first process
        await bot.start(tg)
        tg.inject_private_message("/imagine a lighthouse in fog", user_id=USER)
        await comet.wait_for(lambda: comet.requests_to("/mj/task/list-by-condition"), 15)
        assert await bot.terminate() == 0
        assert not [m for m in tg.messages(USER) if m.media_type == "photo"]
        comet.auto_advance = True
        await bot.start(tg)
        await tg.wait_for(
            lambda: [m for m in tg.messages(USER) if m.media_type == "photo"], timeout=30
        )
        await tg.wait_idle(quiet=0.5)
        assert await bot.terminate() == 0
        photos = [m for m in tg.messages(USER) if m.media_type == "photo"]
        assert len(photos) == 1
        assert len(comet.requests_to("/mj/submit")) == 1  # never resubmitted
        log = (tmp_path / "bot.log").read_text(encoding="utf-8", errors="replace")
    assert comet.api_key not in log and TOKEN.split(":", 1)[1] not in log
