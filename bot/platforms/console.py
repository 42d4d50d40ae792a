"""A terminal chat on the same core, for operators trying a key, a model or a persona.

``python -m bot console``: type a message and the answer streams to stdout; ``/model``,
``/system``, ``/reset``, ``/help`` and ``/quit`` work as in the chats. The conversation is
stored like any other (key ``console:local``), so it survives a restart too.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.service import ChatService
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey, Incoming, Platform
from bot.core.pacing import Pacer, PacerRules
from bot.core.ports import Clock

CONSOLE_KEY = ConversationKey(Platform.CONSOLE, "local")
LANE_KIND = "console"
HELP = (
    "Type a message to chat. Commands: /model [NAME], /system [TEXT|default], /reset, "
    "/usage, /stats, /quit"
)
OPERATOR = Requester(Platform.CONSOLE, "operator", "local", is_private=True)


class ConsoleSurface:
    """Prints a growing reply: each edit writes only what is new (a terminal cannot unprint)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown = ""
        self._count = 0

    @property
    def max_len(self) -> int:
        return 1_000_000  # a terminal has no message limit

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str) -> str:
        self._count += 1
        if self._shown:
            self._out.write("\n")
        self._shown = ""
        self._write(text)
        return str(self._count)

    async def edit(self, message_id: str, text: str) -> None:
        self._write(text)

    async def typing(self) -> None:
        return None

    def _write(self, text: str) -> None:
        if text.startswith(self._shown):
            self._out.write(text[len(self._shown) :])
        else:  # the text was rewritten (rare: a note replaced the tail); show it whole
            self._out.write("\n" + text)
        self._shown = text
        self._out.flush()


class Console:
    def __init__(
        self,
        chat: ChatService,
        *,
        gatekeeper: Gatekeeper,
        clock: Clock,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self._chat = chat
        self._gatekeeper = gatekeeper
        self._clock = clock
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._pacer = Pacer(PacerRules(lanes={LANE_KIND: ()}), clock=clock)

    async def run(self) -> int:
        self._print(HELP)
        while True:
            self._out.write("\nyou> ")
            self._out.flush()
            line = await asyncio.to_thread(self._in.readline)
            if not line:  # end of input
                self._print("")
                return 0
            text = line.strip()
            if text in ("/quit", "/exit"):
                return 0
            try:
                await self._handle(text)
            except UserFacingError as exc:
                self._print(exc.message)

    async def _handle(self, text: str) -> None:
        command, _, arg = text.partition(" ")
        arg = arg.strip()
        if command == "/help":
            self._print(HELP)
        elif command == "/usage":
            self._print(await self._gatekeeper.usage_text(OPERATOR))
        elif command == "/stats":
            self._print(await self._gatekeeper.stats_text(OPERATOR))
        elif command == "/reset":
            await self._chat.reset(CONSOLE_KEY)
            self._print("Started a fresh conversation.")
        elif command == "/model":
            if arg:
                self._print(f"Model set to {await self._chat.set_model(CONSOLE_KEY, arg)}.")
            else:
                menu = ", ".join(await self._chat.model_menu())
                current = await self._chat.current_model(CONSOLE_KEY)
                self._print(f"Current model: {current}\nSome choices: {menu}")
        elif command == "/system":
            if not arg:
                persona, default = await self._chat.persona(CONSOLE_KEY)
                self._print(f"Persona ({'default' if default else 'set'}): {persona}")
            else:
                await self._chat.set_persona(CONSOLE_KEY, None if arg == "default" else arg)
                self._print("Persona updated.")
        elif text:
            await self._ask(text)

    async def _ask(self, text: str) -> None:
        incoming = Incoming(key=CONSOLE_KEY, user_id=OPERATOR.user, user_name="operator", text=text)
        self._out.write("bot> ")
        surface = ConsoleSurface(self._out)
        await self._chat.answer(incoming, self._open_reply(surface))
        self._out.write("\n")
        self._out.flush()

    def _open_reply(self, surface: ConsoleSurface) -> StreamingReply:
        return StreamingReply(
            surface, pacer=self._pacer, lane="console", lane_kind=LANE_KIND, clock=self._clock
        )

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()
