"""Reading a model's stream under limits: it stops early when it goes quiet, runs too long or
grows too long, and can be stopped from outside.

::

    watch = StreamWatch(AnswerLimits(idle_timeout=180, deadline=900, max_chars=100_000), clock)
    streamed = await watch.run(model.stream(name, messages), reply.feed)
    if streamed.stopped is not None:
        note = streamed.stopped.note

Only new text counts as progress: content or reasoning. SSE keep-alive comments never reach
the core, and chunks without text (a role, an empty delta) are read but do not reset the idle
timer, so an upstream that only keeps the connection warm is stopped after ``idle_timeout``.

The decision lives in the core, not in the SDK or its adapter, because it is about the
answer, not the wire: it reads the injected :class:`~bot.core.ports.Clock` (virtual time in
tests), and the same path, :meth:`StreamWatch.stop` with an :class:`EarlyStop` reason, is
what anything else that ends an answer early uses. The stream is read by a task of its own,
so the watch waits on one timer per idle period rather than one per chunk; stopping cancels
that task, which closes the upstream request.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from bot.core.clock import wait_event
from bot.core.errors import ModelError
from bot.core.models import ChatDelta, Usage
from bot.core.ports import Clock

__all__ = ["AnswerLimits", "EarlyStop", "StreamWatch", "Streamed"]


class EarlyStop(enum.Enum):
    """Why an answer ended before the model finished it; the value is the note shown under
    the text so far (one short sentence)."""

    IDLE = "⚠️ The answer stopped early: the model sent nothing more for too long."
    DEADLINE = "⚠️ The answer stopped early: it took too long."
    LENGTH = "⚠️ The answer stopped early: it reached the length limit."
    USER = "⏹ Stopped."
    """Someone pressed ⏹ or sent ``/stop`` (:mod:`bot.core.chat.stops`)."""

    @property
    def note(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """``[chat]`` answer limits: seconds without new text, seconds in all, characters."""

    idle_timeout: float = 180.0
    deadline: float = 900.0
    max_chars: int = 100_000


@dataclass(slots=True)
class Streamed:
    """What a watched stream brought."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    error: ModelError | None = None
    stopped: EarlyStop | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)


class StreamWatch:
    """Reads one answer's stream under :class:`AnswerLimits` (see the module docstring)."""

    def __init__(self, limits: AnswerLimits, clock: Clock) -> None:
        self._limits = limits
        self._clock = clock
        self._result = Streamed()
        self._progress_at = 0.0
        self._chars = 0
        self._reader: asyncio.Task[None] | None = None

    def stop(self, reason: EarlyStop) -> None:
        """End the answer now for ``reason`` (the first reason given wins); the upstream
        request is cancelled and :meth:`run` returns the text so far."""
        if self._reader is not None and self._reader.done():
            return  # the answer is over: nothing to stop
        if self._result.stopped is None:
            self._result.stopped = reason
        if self._reader is not None:
            self._reader.cancel()

    async def run(
        self,
        stream: AsyncGenerator[ChatDelta, None],
        feed: Callable[[str], None],
        visible: Callable[[str], str] | None = None,
    ) -> Streamed:
        """Read ``stream`` to its end (or an early stop), passing text to ``feed``;
        ``visible`` first takes the part of each chunk that is not shown (an image's markup,
        :class:`~bot.core.chat.images.ImageScanner`), so it is neither kept nor counted. A
        :class:`ModelError` ends it and is returned in :attr:`Streamed.error`; other errors
        propagate. Cancelling ``run`` cancels the reading too."""
        limits, clock = self._limits, self._clock
        started = self._progress_at = clock.now()
        done = asyncio.Event()
        reader = self._reader = asyncio.create_task(self._read(stream, feed, visible))
        reader.add_done_callback(lambda _: done.set())
        if self._result.stopped is not None:  # stopped before it began
            reader.cancel()
        try:
            while not done.is_set():
                idle_at = self._progress_at + limits.idle_timeout
                deadline_at = started + limits.deadline
                if await wait_event(done, min(idle_at, deadline_at) - clock.now(), clock):
                    break
                now = clock.now()
                if now >= deadline_at:
                    self.stop(EarlyStop.DEADLINE)
                elif now >= self._progress_at + limits.idle_timeout:
                    self.stop(EarlyStop.IDLE)
                else:  # text arrived meanwhile: wait again from the newest text
                    continue
                break  # the reader is cancelled: wait below for it to close the request
            await asyncio.wait([reader])
        finally:
            if not reader.done():  # run itself was cancelled (shutdown): stop reading too
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([reader])
        if not reader.cancelled() and (exc := reader.exception()) is not None:
            raise exc
        return self._result

    async def _read(
        self,
        stream: AsyncGenerator[ChatDelta, None],
        feed: Callable[[str], None],
        visible: Callable[[str], str] | None,
    ) -> None:
        result, clock, max_chars = self._result, self._clock, self._limits.max_chars
        try:
            async with contextlib.aclosing(stream):
                async for delta in stream:
                    if delta.usage is not None:
                        result.usage = delta.usage
                    if (text := delta.text) and visible is not None:
                        text = visible(text)
                        self._progress_at = clock.now()  # an image's data is progress too
                    if text:
                        room = max_chars - self._chars
                        if len(text) > room:  # keep what fits, then stop reading
                            text = text[:room]
                            result.stopped = result.stopped or EarlyStop.LENGTH
                        if text:
                            self._chars += len(text)
                            result.parts.append(text)
                            feed(text)
                            self._progress_at = clock.now()
                        if result.stopped is not None:
                            return  # leaving the block closes the upstream request
                    elif delta.reasoning:  # thinking out loud is progress too, shown or not
                        self._progress_at = clock.now()
        except ModelError as exc:
            result.error = exc
