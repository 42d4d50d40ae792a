"""Discord's side of a reply: channel messages and interaction responses, paced and translated.

Two :class:`bot.core.ports.Surface` implementations:

- :class:`ChannelSurface` — a DM, text channel or thread: ``POST``/``PATCH
  /channels/{id}/messages``. In servers the first message replies to the question.
- :class:`InteractionSurface` — a deferred slash command. The first send fills the deferred
  "thinking…" response (``PATCH …/messages/@original``), later sends are followups, and edits
  go to the same interaction webhook. An interaction token is valid for 15 minutes: from
  :data:`TOKEN_TTL` minus :data:`TOKEN_MARGIN` on (or as soon as Discord answers 50027
  "Invalid Webhook Token") everything goes through a :class:`ChannelSurface` for the same
  channel instead, and messages already posted are edited through the channel route.

A streaming reply's controls (the ⏹ button, custom id ``stop:<id>``) go with the send or edit
as a view that discord.py does not keep (:func:`stop_view`: the click is routed by its custom
id); a send or edit without them removes them.

Every message is sent with ``AllowedMentions.none()`` so a model's ``@everyone`` or ``<@id>``
pings nobody. Errors become the core's: ``RateLimited`` or a 429 that discord.py gave up
sleeping through -> :class:`RetryLater`; ``NotFound`` on an edit -> :class:`MessageGone`; any
other failure -> :class:`SurfaceError`. Nothing here retries; the core's StreamingReply
decides.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import aiohttp
import discord

from bot.core.chat.markdown import split_markdown
from bot.core.errors import MessageGone, RetryLater, SurfaceError
from bot.core.models import ReplyControls
from bot.core.pacing import DISCORD_CHANNEL, Pacer
from bot.core.ports import Clock
from bot.platforms.common import STOP_LABEL, STOP_PREFIX

__all__ = [
    "MAX_MESSAGE_LEN",
    "NO_PINGS",
    "ChannelSurface",
    "InteractionSurface",
    "say",
    "stop_view",
    "translate",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_LEN = 2000
NO_PINGS = discord.AllowedMentions.none()
TOKEN_TTL = 15 * 60.0
TOKEN_MARGIN = 60.0  # switch to the channel a minute early: a request in flight must not expire
DEFAULT_RETRY_AFTER = 1.0
# 50027 Invalid Webhook Token (expired), 10015 Unknown Webhook.
_TOKEN_GONE = (50027, 10015)
FAILURES = (discord.DiscordException, aiohttp.ClientError, OSError)
"""What a Discord call can raise (OSError covers timeouts and refused connections)."""


def translate(exc: BaseException, *, editing: bool = False) -> SurfaceError:
    """The core's view of a failed Discord call."""
    if isinstance(exc, discord.RateLimited):
        return RetryLater(exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:
            return RetryLater(_retry_after(exc))
        if editing and isinstance(exc, discord.NotFound):
            return MessageGone(f"Discord: {exc.text or 'Unknown Message'}")
        return SurfaceError(f"Discord: HTTP {exc.status} (code {exc.code}): {exc.text}")
    return SurfaceError(f"Discord: {type(exc).__name__}: {exc}")


def stop_view(controls: ReplyControls | None) -> discord.ui.View | None:
    """The ⏹ button under a streaming reply, or ``None`` (on an edit: no components)."""
    if controls is None:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label=STOP_LABEL,
            custom_id=STOP_PREFIX + controls.stop,
            style=discord.ButtonStyle.secondary,
        )
    )
    view.stop()  # not kept by discord.py: clicks find their handler by custom id
    return view


def _with_view(controls: ReplyControls | None) -> dict[str, Any]:
    """A send's ``view`` argument: only with controls (a webhook's send refuses ``None``)."""
    view = stop_view(controls)
    return {} if view is None else {"view": view}


def _retry_after(exc: discord.HTTPException) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return max(0.0, float(headers[name]))
        except (KeyError, TypeError, ValueError):
            continue
    return DEFAULT_RETRY_AFTER


def _token_gone(exc: BaseException) -> bool:
    return isinstance(exc, discord.HTTPException) and (exc.code in _TOKEN_GONE or exc.status == 401)


class ChannelSurface:
    """One DM, channel or thread; implements :class:`bot.core.ports.Surface`."""

    def __init__(
        self, channel: discord.PartialMessageable, *, reply_to: discord.Message | None = None
    ) -> None:
        self._channel = channel
        self.channel_id = channel.id
        self.lane = str(channel.id)  # Discord's write limits are per channel (threads included)
        self.lane_kind = DISCORD_CHANNEL
        self.paced = True  # every write here counts against the channel's budget
        self._reference = (
            None if reply_to is None else reply_to.to_reference(fail_if_not_exists=False)
        )

    @property
    def max_len(self) -> int:
        return MAX_MESSAGE_LEN

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        extra = _with_view(controls)
        try:
            if self._reference is not None:
                message = await self._channel.send(
                    text,
                    reference=self._reference,
                    mention_author=False,
                    allowed_mentions=NO_PINGS,
                    **extra,
                )
                self._reference = None  # only the first message of a reply quotes the question
            else:
                message = await self._channel.send(text, allowed_mentions=NO_PINGS, **extra)
        except FAILURES as exc:
            raise translate(exc) from exc
        return str(message.id)

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None:
        message = self._channel.get_partial_message(int(message_id))
        try:
            await message.edit(content=text, allowed_mentions=NO_PINGS, view=stop_view(controls))
        except FAILURES as exc:
            raise translate(exc, editing=True) from exc

    async def typing(self) -> None:
        try:
            await self._channel.typing()
        except FAILURES as exc:
            raise translate(exc) from exc


class InteractionSurface:
    """A deferred application command's response (see the module docstring)."""

    def __init__(
        self,
        interaction: discord.Interaction,
        fallback: ChannelSurface,
        *,
        clock: Clock,
        token_ttl: float = TOKEN_TTL,
    ) -> None:
        self._interaction = interaction
        self._fallback = fallback
        self._clock = clock
        self.lane = fallback.lane
        self.lane_kind = fallback.lane_kind
        self._expires_at = clock.now() + token_ttl - TOKEN_MARGIN
        self._expired = False
        self._original_id: int | None = None  # the deferred message, once Discord names it
        self._original_used = False  # whether the deferred message shows text yet
        self._webhook_ids: set[int] = set()  # messages the interaction webhook may edit

    def deferred(self, response: object) -> None:
        """Remember the deferred message's id from the callback response, if Discord sent it
        (needed to fill it through the channel once the token has expired)."""
        message_id = getattr(response, "message_id", None)
        if isinstance(message_id, int):
            self._original_id = message_id

    @property
    def original_id(self) -> int | None:
        """The id of the deferred response's message, if Discord named it."""
        return self._original_id

    @property
    def paced(self) -> bool:
        """Whether a one-shot answer must take a slot of the channel's budget: only once it
        goes through the channel route (an interaction webhook has a bucket of its own)."""
        return self.expired

    @property
    def expired(self) -> bool:
        """Whether the interaction token is (about to be) invalid."""
        if not self._expired and self._clock.now() >= self._expires_at:
            self._expire("its token is 15 minutes old")
        return self._expired

    def _expire(self, why: str) -> None:
        if not self._expired:
            log.info("discord interaction %s: %s; continuing in the channel", self.lane, why)
        self._expired = True

    @property
    def max_len(self) -> int:
        return MAX_MESSAGE_LEN

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, controls: ReplyControls | None = None) -> str:
        if not self.expired:
            try:
                return await self._webhook_send(text, controls)
            except FAILURES as exc:
                if not _token_gone(exc):
                    raise translate(exc) from exc
                self._expire("Discord refused its token")
        return await self._channel_send(text, controls)

    async def _webhook_send(self, text: str, controls: ReplyControls | None) -> str:
        interaction = self._interaction
        if not self._original_used:
            message: discord.Message = await interaction.edit_original_response(
                content=text, allowed_mentions=NO_PINGS, view=stop_view(controls)
            )
            self._original_used = True
            self._original_id = message.id
        else:
            message = await interaction.followup.send(
                text, wait=True, allowed_mentions=NO_PINGS, **_with_view(controls)
            )
        self._webhook_ids.add(message.id)
        return str(message.id)

    async def _channel_send(self, text: str, controls: ReplyControls | None) -> str:
        original = self._original_id
        if not self._original_used and original is not None:
            # Fill the "thinking…" message through the channel route when Discord allows it.
            self._original_used = True
            try:
                await self._fallback.edit(str(original), text, controls=controls)
            except RetryLater:
                self._original_used = False
                raise
            except SurfaceError as exc:
                log.info("discord: deferred message %s not editable: %s", original, exc)
            else:
                return str(original)
        self._original_used = True
        return await self._fallback.send(text, controls=controls)

    async def edit(
        self, message_id: str, text: str, *, controls: ReplyControls | None = None
    ) -> None:
        mid = int(message_id)
        if mid in self._webhook_ids and not self.expired:
            interaction = self._interaction
            view = stop_view(controls)
            try:
                if mid == self._original_id:
                    await interaction.edit_original_response(
                        content=text, allowed_mentions=NO_PINGS, view=view
                    )
                else:
                    await interaction.followup.edit_message(
                        mid, content=text, allowed_mentions=NO_PINGS, view=view
                    )
                return
            except FAILURES as exc:
                if not _token_gone(exc):
                    raise translate(exc, editing=True) from exc
                self._expire("Discord refused its token")
        await self._fallback.edit(message_id, text, controls=controls)

    async def typing(self) -> None:
        # The deferred response already shows "thinking…"; only a plain channel needs typing.
        if self.expired and not self._original_used:
            await self._fallback.typing()


async def say(
    pacer: Pacer, surface: ChannelSurface | InteractionSurface, text: str, *, attempts: int = 3
) -> list[str]:
    """Send a short, non-streamed answer (split at 2000 characters), within the channel's
    budget when it goes to the channel; returns the ids of the messages sent. Failures (rate
    limited ``attempts`` times included) are logged, not raised. (Streamed answers always use
    the channel's lane: StreamingReply.)"""
    sent: list[str] = []
    for chunk in split_markdown(text, surface.max_len, surface.measure):
        try:
            sent.append(
                await pacer.call(
                    surface.lane,
                    surface.lane_kind,
                    functools.partial(surface.send, chunk),
                    attempts=attempts,
                    paced=surface.paced,  # an interaction webhook has a bucket of its own
                )
            )
        except SurfaceError as exc:
            log.warning("discord channel %s: could not send: %s", surface.lane, exc)
            return sent
    return sent
