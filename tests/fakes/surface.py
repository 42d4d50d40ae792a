"""A recording Surface on virtual time, for tests of the core's replies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.core.errors import MessageGone
from bot.core.models import ReplyControls
from tests.fakes.clock import FakeClock


@dataclass(frozen=True)
class Call:
    t: float
    op: str
    mid: str | None
    text: str
    ok: bool = True
    surface: str = ""
    controls: ReplyControls | None = None


class FakeSurface:
    """Records every call with its virtual time; scripted to fail on the k-th send/edit."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        max_len: int = 4096,
        measure: Callable[[str], int] = len,
        log: list[Call] | None = None,
        name: str = "",
    ) -> None:
        self.clock = clock
        self._max_len = max_len
        self._measure = measure
        self.name = name
        self.calls: list[Call] = []
        self.log = log if log is not None else []
        self.typing_at: list[float] = []
        self.shown: dict[str, str] = {}
        self.controls: dict[str, ReplyControls | None] = {}  # what each message carries now
        self.order: list[str] = []
        self.failures: dict[int, BaseException] = {}
        self.typing_failures: dict[int, BaseException] = {}
        self.violations: list[str] = []
        self.redundant_edits = 0
        self.measured = 0

    @property
    def max_len(self) -> int:
        return self._max_len

    def measure(self, text: str) -> int:
        self.measured += 1
        return self._measure(text)

    def _record(
        self, op: str, mid: str | None, text: str, controls: ReplyControls | None = None
    ) -> None:
        exc = self.failures.get(len(self.calls) + 1)
        call = Call(self.clock.now(), op, mid, text, exc is None, self.name, controls)
        self.calls.append(call)
        self.log.append(call)
        if not text.strip() or self._measure(text) > self._max_len:
            self.violations.append(text)
        if exc is not None:
            raise exc

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        self._record("send", None, text, controls)
        mid = f"m{len(self.order) + 1}"
        self.shown[mid] = text
        self.controls[mid] = controls
        self.order.append(mid)
        return mid

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None:
        self._record("edit", message_id, text, controls)
        if message_id not in self.shown:
            raise MessageGone(message_id)
        if (self.shown[message_id], self.controls[message_id]) == (text, controls):
            self.redundant_edits += 1  # "not modified": the platform treats it as success
        self.shown[message_id] = text
        self.controls[message_id] = controls

    async def typing(self) -> None:
        self.typing_at.append(self.clock.now())
        exc = self.typing_failures.get(len(self.typing_at))
        if exc is not None:
            raise exc

    def vanish(self, message_id: str) -> None:
        del self.shown[message_id]

    def final_texts(self) -> list[str]:
        return [self.shown[m] for m in self.order if m in self.shown]
