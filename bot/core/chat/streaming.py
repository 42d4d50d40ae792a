"""StreamingReply: a model's streamed answer shown in a chat by sending and editing messages.

::

    async with StreamingReply(surface, pacer=pacer, lane="tg:42", lane_kind=TELEGRAM_PRIVATE,
                              clock=clock) as reply:
        async for delta in model.stream(...):
            reply.feed(delta.text)          # sync and cheap: appends, wakes the flusher
        result = await reply.finish(note=None)

How it behaves (design.md §5):

- A typing indicator goes out after ``typing_after`` seconds without text (at once by
  default; the platforms wait a moment, so a fast answer costs no extra request) and every
  ``typing_every`` seconds until the first text is visible, never while the chat is
  penalized.
- One *flusher* task holds at most one budget request (:class:`~bot.core.pacing.Ticket`) at a
  time. When it is granted it sends the newest full text of the current message, so tokens
  that arrive while waiting are coalesced. The first message, a continuation message, a sealed
  message's last edit and everything after :meth:`StreamingReply.finish` ask for
  :attr:`Priority.URGENT`; growing-message edits ask for :attr:`Priority.EDIT`, and a waiting
  edit is upgraded when the reply finishes. A payload equal to the last one sent is not sent
  and its slot is refunded.
- When the current message outgrows ``surface.max_len`` it is sealed and a new message
  continues with the rest; sealed messages never change again, and the chunks are exactly
  ``split_markdown(final_text)`` however the stream was timed
  (:class:`~bot.core.chat.message_plan.MessagePlan` decides which message shows what).
- ``RetryLater`` penalizes the lane in the shared pacer (nothing at all goes to that chat until
  then) and the newest text follows afterwards. ``MessageGone`` on the growing message moves
  it to a new message. Other errors are logged and retried with backoff; the final delivery
  gives up after a few attempts.
- Controls (:meth:`StreamingReply.show_controls`: the ⏹ button) ride on the growing message's
  edits (and a continuation message's first send) and leave with its final payload (sealed,
  or the reply finished); they never make a request of their own, except to leave a message
  whose final text was already shown.
- Leaving the ``async with`` block without :meth:`finish` finishes implicitly; with an
  exception it finishes with a short note; when cancelled (shutdown) it makes one bounded,
  best-effort attempt to deliver the text so far plus ``cancel_note``, ending in the messages
  already shown rather than waiting for the ones not posted yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from bot.core.chat.message_plan import MessagePlan, PlannedMessage
from bot.core.clock import wait_event
from bot.core.errors import MessageGone, RetryLater, UserFacingError
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import ReplyControls
from bot.core.pacing import Pacer, Priority, Ticket
from bot.core.ports import Clock, Surface

__all__ = ["ReplyResult", "StreamingReply"]

log = logging.getLogger(__name__)

EMPTY_TEXT = "(no answer)"
CANCEL_NOTE = "⚠️ The answer was interrupted."
FAIL_NOTE = "⚠️ Something went wrong, so this answer is incomplete."
TYPING_EVERY = 4.0
SHUTDOWN_GRACE = SHUTDOWN.flush
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
FINAL_ATTEMPTS = 5  # failures (not 429s) tolerated while delivering the final text
FINAL_RATE_LIMITS = 10  # 429s tolerated while delivering the final text


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """The messages a reply ended with. Iterating yields the message ids."""

    message_ids: tuple[str, ...]
    chunks: tuple[str, ...]
    """The last payload delivered to each message, in order."""
    complete: bool
    """Whether every message shows its intended final text."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.message_ids)

    def __len__(self) -> int:
        return len(self.message_ids)


class StreamingReply:
    """Shows one streamed answer on one :class:`~bot.core.ports.Surface` (see module doc).

    ``lane``/``lane_kind`` name the chat in the shared ``pacer`` (every reply in one chat must
    use the same lane). ``typing_paced=True`` makes typing indicators take a
    :attr:`Priority.BACKGROUND` slot, for platforms that count them against the budget.
    ``shutdown_grace`` bounds the final attempt when the reply is cancelled.
    """

    def __init__(
        self,
        surface: Surface,
        *,
        pacer: Pacer,
        lane: str,
        lane_kind: str,
        clock: Clock,
        typing_every: float = TYPING_EVERY,
        typing_paced: bool = False,
        typing_after: float = 0.0,
        empty_text: str = EMPTY_TEXT,
        cancel_note: str = CANCEL_NOTE,
        shutdown_grace: float = SHUTDOWN_GRACE,
    ) -> None:
        self._surface = surface
        self._pacer = pacer
        self._lane = lane
        self._kind = lane_kind
        self._clock = clock
        self._typing_every = typing_every
        self._typing_paced = typing_paced
        self._typing_after = typing_after
        self._cancel_note = cancel_note
        self._grace = shutdown_grace

        self._plan = MessagePlan(surface.max_len, surface.measure, empty_text=empty_text)
        self._controls: ReplyControls | None = None
        self._finishing = False
        self._abandoned = False
        self._ticket: Ticket | None = None
        self._delivering: PlannedMessage | None = None  # the send or edit in flight
        self._wake = asyncio.Event()  # new text or finish: the flusher has work
        self._finish_event = asyncio.Event()
        self._visible = asyncio.Event()  # first message shown (or reply over): stop typing
        self._done = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._typer: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> StreamingReply:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if isinstance(exc, asyncio.CancelledError):
                await self._shutdown_flush()
            elif exc is not None and not self._finishing:
                message = exc.message if isinstance(exc, UserFacingError) else None
                await self._finish_guarded(f"⚠️ {message}" if message else FAIL_NOTE)
            else:
                await self._finish_guarded(None)
        finally:
            await self._stop_tasks()

    async def _finish_guarded(self, note: str | None) -> None:
        try:
            await self.finish(note)
        except asyncio.CancelledError:
            await self._shutdown_flush()
            raise

    def _start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())
            self._typer = asyncio.create_task(self._typing_loop())

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._flusher, self._typer) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- public API -----------------------------------------------------------------------------

    def show_controls(self, controls: ReplyControls) -> None:
        """Carry ``controls`` under the growing message while the reply streams (call it
        before the first text is fed)."""
        self._controls = controls
        self._plan.controls = True

    def feed(self, delta: str) -> None:
        """Append a piece of the answer. Cheap: no rendering or measuring happens here."""
        if not delta:
            return
        if self._finishing:
            log.debug("reply in %s: text fed after finish() ignored", self._lane)
            return
        self._plan.feed(delta)
        self._wake.set()

    async def finish(self, note: str | None = None) -> ReplyResult:
        """Deliver the final text exactly and return what was sent.

        ``note`` (e.g. ``"⚠️ The answer stopped early: …"``) is appended after a blank line,
        closing an open code fence first; with no text at all the note stands alone, and an
        empty answer without a note shows ``empty_text``. Idempotent.
        """
        if not self._finishing:
            self._begin_finish(note)
        self._start()
        await self._done.wait()
        return self.result

    @property
    def result(self) -> ReplyResult:
        """The messages shown so far (final once :meth:`finish` has returned)."""
        shown = self._plan.shown()
        complete = self._done.is_set() and not self._abandoned and self._plan.settled
        return ReplyResult(
            tuple(m.id for m in shown if m.id is not None),
            tuple(m.sent or "" for m in shown),
            complete,
        )

    # -- finishing ------------------------------------------------------------------------------

    def _begin_finish(self, note: str | None, *, cut: bool = False) -> None:
        self._finishing = True
        self._finish_event.set()
        if cut:  # shutdown: end in the messages already shown, with the note
            self._plan.cut_short(note or self._cancel_note, in_flight=self._delivering)
        else:
            self._plan.finish(note)
        self._wake.set()
        if self._ticket is not None:
            self._ticket.upgrade(Priority.URGENT)

    def _priority(self) -> Priority:
        return Priority.URGENT if self._finishing or self._plan.urgent else Priority.EDIT

    # -- the flusher ----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        failures = 0  # consecutive failures, for the backoff
        final_failures = final_limited = 0  # counted only once finishing: they bound finish()
        try:
            while True:
                self._wake.clear()
                if not self._plan.has_work():
                    if self._finishing:
                        return
                    await self._wake.wait()
                    continue
                ticket = self._ticket = self._pacer.request(
                    self._lane, self._kind, self._priority()
                )
                try:
                    await ticket.wait()
                finally:
                    self._ticket = None
                message = self._plan.next_pending()  # the newest text, after waiting
                if message is None:
                    ticket.refund()
                    continue
                try:
                    await self._deliver(message)
                except RetryLater as exc:
                    self._pacer.penalize(self._lane, exc.retry_after)
                    final_limited += self._finishing
                    if final_limited > FINAL_RATE_LIMITS:
                        self._give_up(f"rate limited {final_limited} times")
                        return
                except MessageGone:
                    self._message_gone(message)
                except Exception as exc:
                    failures += 1
                    final_failures += self._finishing
                    log.warning(
                        "reply in %s: %s failed (%s: %s), attempt %d",
                        self._lane,
                        "send" if message.id is None else "edit",
                        type(exc).__name__,
                        exc,
                        failures,
                    )
                    if final_failures >= FINAL_ATTEMPTS:
                        self._give_up(f"{final_failures} failed attempts")
                        return
                    await self._backoff(failures)
                else:
                    failures = 0
        except Exception:
            log.exception("reply in %s: flusher crashed", self._lane)
            self._abandoned = True
        finally:
            self._visible.set()
            self._done.set()

    async def _deliver(self, message: PlannedMessage) -> None:
        text, wants = message.target, message.controls
        assert text is not None
        controls = self._controls if wants else None
        self._delivering = message
        try:
            if message.id is None:
                message.id = await self._surface.send(text, controls=controls)
                message.sent, message.sent_controls = text, wants
                self._visible.set()
            else:
                await self._surface.edit(message.id, text, controls=controls)
                message.sent, message.sent_controls = text, wants
        finally:
            self._delivering = None

    def _message_gone(self, message: PlannedMessage) -> None:
        vanished = message.id
        if self._plan.lost(message):
            log.info("reply in %s: message %s vanished, continuing anew", self._lane, vanished)
        else:
            log.info("reply in %s: sealed message %s vanished", self._lane, vanished)

    def _give_up(self, why: str) -> None:
        log.error("reply in %s: final text not delivered (%s)", self._lane, why)
        self._abandoned = True

    async def _backoff(self, failures: int) -> None:
        delay = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2 ** (failures - 1))
        if self._finishing:
            await self._clock.sleep(delay)
        else:  # finishing cuts a streaming backoff short: the final text is more important
            await wait_event(self._finish_event, delay, self._clock)

    # -- typing and shutdown --------------------------------------------------------------------

    async def _typing_loop(self) -> None:
        clock, pacer, lane = self._clock, self._pacer, self._lane
        if self._typing_after > 0:  # a fast first token makes the typing call pointless
            await wait_event(self._visible, self._typing_after, clock)
        while not self._visible.is_set():
            wait = pacer.blocked_until(lane) - clock.now()
            if wait > 0:  # nothing at all goes to a penalized chat, typing included
                await wait_event(self._visible, wait, clock)
                continue
            if self._plan.has_text or self._finishing:
                return  # text is on its way: a typing call now would only compete with it
            try:
                if self._typing_paced:
                    await pacer.acquire(lane, self._kind, Priority.BACKGROUND)
                await self._surface.typing()
            except RetryLater as exc:
                pacer.penalize(lane, exc.retry_after)
                continue
            except Exception as exc:
                log.debug("reply in %s: typing failed: %s", lane, exc)
            await wait_event(self._visible, self._typing_every, clock)

    async def _shutdown_flush(self) -> None:
        """Cancelled: one bounded, best-effort attempt at delivering the text so far.

        Messages not posted yet are not waited for (a long answer posts about one a second):
        the answer ends in the messages already shown, with ``cancel_note``. Only a finished
        answer whose messages are all posted, with edits left at most, is left to complete."""
        if not (self._finishing and self._plan.all_posted):
            self._begin_finish(self._cancel_note, cut=True)
        self._start()
        if not await wait_event(self._done, self._grace, self._clock):
            log.warning("reply in %s: final text not delivered before shutdown", self._lane)
