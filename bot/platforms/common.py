"""What Telegram and Discord share: the one guard around every handler, the drain at
shutdown, the texts they answer with when something goes wrong, and the result buttons' wire
prefix.

:class:`Guard` is the one place per platform where errors become replies (style: raise in
the domain, render in one place): a :class:`~bot.core.errors.UserFacingError` is said
verbatim (unless it is a repeated refusal, marked quiet), anything else is logged with its
traceback and answered with :data:`GENERIC_APOLOGY`. It also runs each handler inside the
gatekeeper's work context (counted for a graceful shutdown, its log lines tagged) and keeps
the handler's task, so :meth:`Guard.drain` can let the handlers in flight finish, then cut
them short (a cancelled reply still shows its text so far, see
:class:`~bot.core.chat.streaming.StreamingReply`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.policy import Requester
from bot.core.chat.service import ChatService
from bot.core.chat.voice import VoiceService
from bot.core.errors import UserFacingError
from bot.core.generation.images import ImageService
from bot.core.generation.service import GenerationService
from bot.core.lifecycle import RESTARTING, SHUTDOWN
from bot.core.models import ConversationKey, MediaFile, MediaLimits, Platform
from bot.core.pacing import Pacer, Priority
from bot.core.ports import Clock

__all__ = [
    "BUTTON_PREFIX",
    "GENERIC_APOLOGY",
    "RESTARTING",
    "STOP_LABEL",
    "STOP_PREFIX",
    "Guard",
    "OutboxPictures",
    "PacedOutbox",
    "Report",
    "Services",
    "Work",
]

log = logging.getLogger(__name__)

GENERIC_APOLOGY: Final = "Sorry, something went wrong on my side. Please try again."
BUTTON_PREFIX: Final = "mj:"
"""A result button's Telegram ``callback_data`` and Discord ``custom_id``: ``mj:<token>``
(the token names the stored button; Telegram allows 64 bytes, Discord 100 characters)."""
STOP_PREFIX: Final = "stop:"
"""A streaming reply's ⏹ button: ``stop:<id>``, the id of the running answer (8 characters,
:class:`~bot.core.chat.stops.RunningAnswer`)."""
STOP_LABEL: Final = "⏹ Stop"


@dataclass(frozen=True, slots=True)
class Services:
    """What a platform adapter serves and paces with, handed over as one object by the
    composition root (``bot.app``) or a test."""

    chat: ChatService
    gatekeeper: Gatekeeper
    pacer: Pacer
    """The platform's own shared send/edit budget."""
    clock: Clock
    generation: GenerationService | None = None
    """``None``: the platform offers chat only."""
    media_limits: MediaLimits | None = None
    """``None``: the platform's own upload limits."""
    images: ImageService | None = None
    """``/image``; ``None``: the platform does not offer it."""
    voice: VoiceService | None = None
    """``None``: voice notes and audio files are not answered."""


T = TypeVar("T")


TELEGRAM_ROUTE: Final = "tg"
"""The route of every Telegram task: one process at a time talks to Telegram."""


def discord_route(shard_id: int) -> str:
    """The route of a Discord task: its guild's shard (DMs are shard 0's)."""
    return f"dc:{shard_id}"


class PacedOutbox:
    """What both platforms' outboxes (:class:`~bot.core.ports.Outbox`) share: their upload
    limits, and how their calls take the chat's slots of the platform's pacer. Subclasses
    say which lane a conversation is (:meth:`lane`) and make the calls themselves."""

    FINAL_ATTEMPTS: Final = 5
    """Tries of a final status view while the platform keeps answering 429."""

    def __init__(self, pacer: Pacer, limits: MediaLimits, routes: Iterable[str] = ()) -> None:
        self._pacer = pacer
        self._limits = limits
        self._routes = frozenset(routes)

    @property
    def limits(self) -> MediaLimits:
        return self._limits

    def routes(self) -> frozenset[str]:
        """The task routes this process posts to (``Origin.route`` of the tasks it starts)."""
        return self._routes

    def lane(self, key: ConversationKey) -> tuple[str, str]:
        """The pacer lane and lane kind of a conversation (the ones its chat replies use)."""
        raise NotImplementedError

    async def paced(
        self, key: ConversationKey, call: Callable[[], Awaitable[T]], *, attempts: int
    ) -> T:
        lane, kind = self.lane(key)
        return await self._pacer.call(lane, kind, call, attempts=attempts)

    async def post_pictures(
        self, key: ConversationKey, files: Sequence[MediaFile], *, reply_to: str | None
    ) -> None:
        """Post a chat answer's pictures now, inside :meth:`paced` (several in one message
        or album where the platform allows)."""
        raise NotImplementedError

    async def show(
        self, key: ConversationKey, edit: Callable[[], Awaitable[None]], *, final: bool
    ) -> None:
        """Edit a status message: a final view urgently, retried after 429s; an intermediate
        one once, and dropped while the chat is blocked (a newer view, or the final one,
        follows: it is not worth waiting out a penalty for)."""
        lane, kind = self.lane(key)
        await self._pacer.call(
            lane,
            kind,
            edit,
            priority=Priority.URGENT if final else Priority.EDIT,
            attempts=self.FINAL_ATTEMPTS if final else 1,
            droppable=not final,
        )


class OutboxPictures:
    """:class:`~bot.core.media_ports.Pictures` of one conversation: its platform's outbox, in the
    chat's urgent slots of the shared pacer (a 429 waits out the penalty, then retries)."""

    ATTEMPTS: Final = 5

    def __init__(self, outbox: PacedOutbox, key: ConversationKey) -> None:
        self._outbox = outbox
        self._key = key

    async def post_pictures(self, files: Sequence[MediaFile], *, reply_to: str | None) -> None:
        outbox, key = self._outbox, self._key
        await outbox.paced(
            key,
            lambda: outbox.post_pictures(key, files, reply_to=reply_to),
            attempts=self.ATTEMPTS,
        )


Work = Callable[[], Awaitable[object]]
Report = Callable[[str], Awaitable[object]]
"""Says one line to whoever the handler serves."""


class Guard:
    """Runs a platform's handlers (see the module docstring)."""

    def __init__(self, gatekeeper: Gatekeeper, platform: Platform) -> None:
        self._gatekeeper = gatekeeper
        self._platform = platform
        self._name = platform.name.lower()
        self._inflight: set[asyncio.Task[object]] = set()

    async def run(
        self,
        work: Work,
        report: Report,
        *,
        what: str,
        who: Requester | None,
        admit: bool = False,
    ) -> None:
        """Run ``work`` for ``who`` (checked first with ``admit``); errors go to ``report``.
        ``what`` names the handler in the logs ("update 12", "/model in 345")."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            with self._gatekeeper.work(
                platform=self._platform.value,
                chat=who.chat if who is not None else "?",
                user=who.user if who is not None else None,
            ):
                if admit and who is not None:
                    self._gatekeeper.admit(who)
                await work()
        except UserFacingError as exc:
            if not exc.quiet:
                await self._report(report, exc.message, what)
        except Exception:
            log.exception("%s: %s failed", self._name, what)
            await self._report(report, GENERIC_APOLOGY, what)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _report(self, report: Report, text: str, what: str) -> None:
        try:
            await report(text)
        except Exception as exc:
            log.warning("%s: could not answer %s: %s", self._name, what, exc)

    async def drain(self, within: float = SHUTDOWN.alone) -> None:
        """Let the handlers in flight finish for ``within`` seconds, then cancel the rest and
        wait (:attr:`~bot.core.lifecycle.ShutdownBudget.flush_wait`) while they show their
        text so far. Call it while the platform's connection is still open."""
        pending = {t for t in self._inflight if not t.done()}
        if not pending:
            return
        log.info("%s: waiting for %d handlers in flight", self._name, len(pending))
        _, late = await asyncio.wait(pending, timeout=within)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=SHUTDOWN.flush_wait)
