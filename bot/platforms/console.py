"""A terminal chat on the same core, for operators trying a key, a model or a persona.

``python -m bot console``: type a message and the answer streams to stdout; ``/model``,
``/system``, ``/reset``, ``/usage``, ``/stats`` and ``/help`` answer as in the chats (the
core's :class:`~bot.core.chat.commands.ChatCommands` decides them), ``/quit`` ends. The
conversation is stored like any other (key ``console:local``), so it survives a restart too.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.core.access.policy import Requester
from bot.core.chat.commands import Answer, Changer, ChatCommands, Dialect, Picker
from bot.core.chat.streaming import StreamingReply
from bot.core.errors import UserFacingError
from bot.core.models import ConversationKey, Incoming, Platform, ReplyControls, qualify
from bot.core.pacing import Pacer, PacerRules
from bot.core.ports import Clock
from bot.platforms.common import Services

CONSOLE_KEY = ConversationKey(Platform.CONSOLE, "local")
LANE_KIND = "console"
WELCOME = "Type a message to chat; /help lists the commands, /quit ends the session."
DIALECT = Dialect(
    how_to_ask="Type a message to chat; /stats shows the bot's use, /quit ends the session.",
    picker=Picker.TYPED,
)
OPERATOR_ID = qualify(Platform.CONSOLE, "operator")
OPERATOR = Requester(Platform.CONSOLE, OPERATOR_ID, "local", is_private=True)


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

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        # No buttons in a terminal: Ctrl-C is its stop.
        self._count += 1
        if self._shown:
            self._out.write("\n")
        self._shown = ""
        self._write(text)
        return str(self._count)

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None:
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


def unpaced(clock: Clock) -> Pacer:
    """A pacer that grants at once: the console's lane kind has no windows."""
    return Pacer(PacerRules(lanes={LANE_KIND: ()}), clock=clock)


class Console:
    """A chat in a terminal: ``services.pacer`` is best :func:`unpaced` (a terminal has no
    rate limit); generation is not offered."""

    def __init__(
        self, services: Services, *, stdin: TextIO | None = None, stdout: TextIO | None = None
    ) -> None:
        self._chat = services.chat
        self._commands = ChatCommands(services.chat, services.gatekeeper, DIALECT)
        self._clock = services.clock
        self._pacer = services.pacer
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout

    async def run(self) -> int:
        self._print(WELCOME)
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
        answer = await self._command(command, arg)
        if answer is not None:
            self._print(answer.text)
        elif text:
            await self._ask(text)

    async def _command(self, command: str, arg: str) -> Answer | None:
        """The answer to a chat command; None if ``command`` is not one."""
        commands = self._commands
        if command == "/help":
            return commands.help()
        if command == "/usage":
            return await commands.usage(OPERATOR)
        if command == "/stats":
            return await commands.stats(OPERATOR)
        if command == "/reset":
            return await commands.reset(CONSOLE_KEY)
        if command == "/model":
            return await commands.model(CONSOLE_KEY, arg, by=Changer(OPERATOR))
        if command == "/system":
            return await commands.system(CONSOLE_KEY, arg, by=Changer(OPERATOR))
        return None

    async def _ask(self, text: str) -> None:
        incoming = Incoming(key=CONSOLE_KEY, user_id=OPERATOR_ID, user_name="operator", text=text)
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
