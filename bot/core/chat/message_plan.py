"""MessagePlan: which messages one streamed answer takes, and what each should show now.

An answer grows token by token, but one platform message holds at most ``max_len`` (in the
platform's ``measure``). The plan keeps the answer's text and its list of messages. When the
current message outgrows the limit it is *sealed* at the cut
:func:`~bot.core.chat.markdown.cut_markdown` picks (a code fence open there is closed, and
reopened at the start of the next message), gets its final content, and a new message
continues with the rest. Sealed messages never change again. Cuts are stable, so the messages
end up showing exactly ``split_markdown(final_text)`` however the stream was timed.

The plan does no I/O and knows no time: :class:`~bot.core.chat.streaming.StreamingReply` asks
it for the next message whose ``target`` differs from what was ``sent``, delivers that, and
records the outcome in the message (its ``id`` and ``sent``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.chat.markdown import Measure, close_open_fence, cut_markdown

__all__ = ["MessagePlan", "PlannedMessage"]


@dataclass(slots=True)
class PlannedMessage:
    """One platform message of an answer."""

    id: str | None = None  # None: not posted (yet, or again after it vanished)
    sent: str | None = None  # the last payload delivered
    target: str | None = None  # what it should show now; None: nothing visible yet
    sealed: bool = False  # cut off: its target is final
    gone: bool = False  # a sealed message someone deleted: never posted again
    start: int = 0  # where its text starts in the answer
    controls: bool = False  # whether it should carry the reply's controls (while it grows)
    sent_controls: bool = False  # whether the last payload delivered carried them

    @property
    def pending(self) -> bool:
        # Controls never cost a request of their own to appear: they ride on the next text
        # change. Shown ones must go with the final payload, even when the text is the same.
        return self.target is not None and (
            self.target != self.sent or (self.sent_controls and not self.controls)
        )


class MessagePlan:
    """The text of one answer and the messages that show it (see the module docstring).

    ``empty_text`` is what an answer without any text shows. With ``controls`` set, the
    growing message carries the reply's controls from its first edit until it is sealed or
    the answer finishes: they come with an edit the text needs anyway and leave with the
    message's final payload, never by an edit of their own unless that payload was already
    shown.
    """

    def __init__(self, max_len: int, measure: Measure, *, empty_text: str) -> None:
        self.controls = False
        self._max_len = max_len
        self._measure = measure
        self._empty_text = empty_text
        self._parts: list[str] = []
        self._final: str | None = None  # the composed final text, once finishing
        self._dirty = False  # text changed since the last sync
        self.has_text = False
        """Something visible was fed: a send is imminent."""
        self.messages = [PlannedMessage()]
        self._base = 0  # where the current message starts in the full text
        self._reopen = ""  # fence line the current message starts with, if any
        self._cut = False  # cut short: the messages and their targets are final

    @property
    def text(self) -> str:
        """The answer's text fed so far, verbatim."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def feed(self, delta: str) -> None:
        """Append a piece of the answer. Cheap: the cutting happens in :meth:`next_pending`."""
        self._parts.append(delta)
        if not self.has_text and not delta.isspace():
            self.has_text = True
        self._dirty = True

    def finish(self, note: str | None) -> None:
        """Compose the final text: the answer, then ``note`` after a blank line (closing an
        open code fence first); the note alone, or ``empty_text``, when there is no text."""
        text = self.text
        untouched = self._base == 0 and len(self.messages) == 1
        if not text.strip() and untouched:
            final = note or self._empty_text
        elif not text.strip():  # blank but already cut: keep it a prefix of the final text
            final = text + (note or self._empty_text)
        elif note:
            # Close a dangling code fence so the note is not shown as code.
            closed = close_open_fence(text)
            sep = "" if closed.endswith("\n\n") else "\n" if closed.endswith("\n") else "\n\n"
            final = closed + sep + note
        else:
            final = text
        self._final = final
        self._dirty = True

    def cut_short(self, note: str, *, in_flight: PlannedMessage | None = None) -> None:
        """No time left to post what is not posted yet (shutdown): end the answer in the
        last message already shown (``in_flight``, being posted, counts as shown; the first
        message when none is) and show ``note`` after it, so a cut answer always ends with
        its note. A message still growing gets the note appended (as :meth:`finish` does,
        at most one more message if it overflows); a sealed one keeps its final text and
        the note follows in one message of its own. The text after it is dropped."""
        self._sync()
        shown = [
            i
            for i, m in enumerate(self.messages)
            if (m.id is not None and not m.gone) or m is in_flight
        ]
        last = shown[-1] if shown else 0
        if last == len(self.messages) - 1 and not self.messages[last].sealed:
            self.finish(note)
            return
        tail = PlannedMessage(target=note, sealed=True, start=len(self.text))
        self.messages[last + 1 :] = [tail]
        self._cut = True
        self._dirty = False

    @property
    def all_posted(self) -> bool:
        """Whether every message of the answer so far has been posted (only edits are left)."""
        self._sync()
        return all(m.id is not None or m.gone for m in self.messages)

    def next_pending(self) -> PlannedMessage | None:
        """The first message that should show something it does not show yet."""
        self._sync()
        for m in self.messages:
            if m.pending and not m.gone:
                return m
        return None

    def has_work(self) -> bool:
        """Whether a delivery is due (new text, or a message behind its target)."""
        dirty = self._dirty and not self._cut
        return dirty or any(m.pending and not m.gone for m in self.messages)

    @property
    def urgent(self) -> bool:
        """Whether the next delivery is one the reader waits for: the first or a continuation
        message, or a sealed message's last edit (rather than a growing message's edit)."""
        if self.messages[-1].id is None:
            return True
        return any(m.sealed and m.pending for m in self.messages)

    def shown(self) -> list[PlannedMessage]:
        """The messages posted and still there, in order."""
        return [m for m in self.messages if m.id is not None and not m.gone]

    @property
    def settled(self) -> bool:
        """Whether every message still there shows its target."""
        return not any(m.pending for m in self.messages if not m.gone)

    def lost(self, message: PlannedMessage) -> bool:
        """``message`` was deleted by someone; whether it is to be posted again.

        The growing message is: its text continues in a new message. An earlier, sealed one
        is not, since re-posting it now would put it out of order.
        """
        if message is self.messages[-1]:
            message.id = message.sent = None
            message.sent_controls = False
            return True
        message.gone = True
        return False

    def _sync(self) -> None:
        """Bring message targets up to date with the text, sealing overflowing messages."""
        if not self._dirty or self._cut:
            return
        self._dirty = False
        full = self._final if self._final is not None else self.text
        current = self.messages[-1]
        while True:
            body = full[self._base :]
            text = self._reopen + body
            cut = cut_markdown(text, self._max_len, self._measure)
            if cut is None:
                current.target = text if body.strip() else None
                # Not on the first message's first send: most short answers end before its
                # first edit, and a button shown there would cost an edit just to take it
                # away. An answer long enough for a second message shows it at once.
                current.controls = (
                    self.controls
                    and self._final is None
                    and (current.id is not None or len(self.messages) > 1)
                )
                return
            current.sealed = True
            current.controls = False
            current.target = cut.head if cut.head.strip() else None
            if current.target is None and current.id is None:
                self.messages.pop()  # never shown and nothing to show: no message at all
            # A cut never falls inside the reopened fence line, so this always moves forward.
            self._base += max(1, cut.consumed - len(self._reopen))
            self._reopen = cut.reopen
            current = PlannedMessage(start=self._base)
            self.messages.append(current)
