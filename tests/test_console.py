"""The console: the same core in a terminal, against the fake CometAPI."""

from __future__ import annotations

import io
from pathlib import Path

from bot.app import open_core
from bot.platforms.common import Services
from bot.platforms.console import Console, unpaced
from tests.fakes.cometapi import FakeCometAPI
from tests.world import chat_requests, history_of, settings_for


async def run_console(tmp_path: Path, comet: FakeCometAPI, lines: list[str]) -> str:
    out = io.StringIO()
    async with open_core(settings_for(tmp_path, comet)) as core:
        console = Console(
            Services(core.chat, core.gatekeeper, unpaced(core.clock), core.clock),
            stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
            stdout=out,
        )
        assert await console.run() == 0
    return out.getvalue()


async def test_console_streams_answers_and_remembers(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet:
        comet.script_chat(tokens=["Hello", ", ", "operator", "."])
        comet.script_chat(tokens=["Still here."])
        output = await run_console(tmp_path, comet, ["hi there", "again"])
        assert "bot> Hello, operator." in output
        assert "bot> Still here." in output
        second = history_of(chat_requests(comet)[1])
        assert second[1:] == [
            ("user", "hi there"),
            ("assistant", "Hello, operator."),
            ("user", "again"),
        ]


async def test_console_commands(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet:
        output = await run_console(
            tmp_path,
            comet,
            ["/model gpt-4o", "/model nope", "/system Be terse.", "/system", "/usage", "/stats"],
        )
        assert "Model set to `gpt-4o` for this conversation." in output
        assert "Unknown model 'nope'" in output
        assert "Persona (set for this conversation):\n\nBe terse." in output
        assert "today" in output.lower()
        assert "Users:" in output


async def test_console_reports_upstream_errors_plainly(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet:
        comet.fail_next(1, 401, path_prefix="/v1/chat")
        output = await run_console(tmp_path, comet, ["hello", "/quit", "never read"])
        assert "CometAPI key was refused" in output
        assert comet.api_key not in output
        assert "Traceback" not in output
