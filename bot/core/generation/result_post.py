"""One finished task's result, posted part by part and recorded as it goes.

:class:`ResultPost` is what :class:`~bot.core.generation.delivery.Deliverer` runs for one
task: the parts in order (the grid, clip 1, clip 2, a video, a notice), each built (files
downloaded through :mod:`bot.core.generation.fetch`), posted in the chat's paced slot and
recorded in ``task.result`` by one uncancellable *step*; then the final status view. The
rules (what is recorded when, at most once after a stop) are in the delivery module's
docstring.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, TypeVar

from bot.core.errors import MessageGone, PlatformUnavailable, SurfaceError
from bot.core.generation.fetch import fetch_media, fetch_thumbnail, unfetched_view
from bot.core.generation.progress import POST_ATTEMPTS
from bot.core.generation.records import ButtonSpec, Task, TaskUpdate
from bot.core.generation.views import button_rows, done_view, excerpt, failed_view, headline
from bot.core.models import ButtonView, MediaFile, MediaKind, OutgoingMessage, StatusView
from bot.core.ports import Outbox, TaskBackend, TaskStore

__all__ = ["ResultPost", "Step"]

log = logging.getLogger(__name__)

T = TypeVar("T")


SENT: Final = "sent"
"""Key in ``task.result``: part name -> platform message id, for parts already delivered."""
SENDING: Final = "sending"
"""Key in ``task.result``: the part whose post was under way, still unanswered."""
UNCONFIRMED: Final = ""
"""The message id of a part that may or may not have been posted before a stop."""
MAYBE_MISSING: Final = (
    "⚠️ The bot restarted while posting: a part may be missing (none is sent twice)."
)
CAPTION_LIMIT: Final = 900


class Step(Protocol):
    """Runs a post and its record to the end even if cancelled meanwhile (the deliverer's
    :meth:`~bot.core.generation.delivery.Deliverer.step`)."""

    def __call__(self, work: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


class ResultPost:
    """One task's delivery: its parts in order, each recorded once posted."""

    def __init__(
        self,
        task: Task,
        outbox: Outbox,
        *,
        store: TaskStore,
        backend: TaskBackend,
        step: Step,
        owner: str = "local",
    ) -> None:
        self._step = step
        self._owner = owner
        self._store = store
        self._backend = backend
        self._task = task
        self._outbox = outbox
        self._result: dict[str, Any] = dict(task.result or {})
        self._sent: dict[str, str] = dict(self._result.get(SENT) or {})
        self._unconfirmed = UNCONFIRMED in self._sent.values()

    @property
    def nothing_posted(self) -> bool:
        return not self._sent

    async def failure(self) -> None:
        await self._final_notice(failed_view(self._task))

    async def unfetched(self, *, refunded: bool) -> None:
        """The final word when the result's file could not be fetched."""
        view = unfetched_view(self._task, partial=not self.nothing_posted, refunded=refunded)
        await self._final_notice(view)

    async def _final_notice(self, view: StatusView) -> None:
        """``view`` on the status message, or as a notice when there is none (any more)."""
        if self._task.status_message_id is not None:
            with contextlib.suppress(MessageGone):
                await self._step(lambda: self._edit(view))
                return
        await self._part("notice", lambda: _text(view.text))

    async def result(self) -> None:
        kind = self._result.get("type")
        if kind == "image":
            await self._part("image", self._image)
        elif kind == "prompts":
            await self._part("prompts", self._prompts)
        elif kind == "audio":
            for index in range(len(self._result.get("clips") or [])):
                await self._part(f"clip:{index}", functools.partial(self._clip, index))
        elif kind == "video":
            await self._part("video", self._video)
        else:
            await self._part("notice", lambda: _text(f"{headline(self._task)}\n✅ Done."))
        if self._task.status_message_id is not None:
            done = done_view(self._task)
            if self._unconfirmed:
                done = StatusView(f"{done.text}\n{MAYBE_MISSING}", final=True)
            try:
                await self._step(lambda: self._edit(done))
            except PlatformUnavailable:
                raise  # try again: the parts already posted are skipped
            except SurfaceError as exc:  # deleted or not editable: the result is there anyway
                log.info("task %d: final status edit failed: %s", self._task.id, exc)

    async def _edit(self, view: StatusView) -> None:
        assert self._task.status_message_id is not None
        await self._outbox.edit(self._task.conversation, self._task.status_message_id, view)

    async def _part(self, name: str, build: Callable[[], Awaitable[OutgoingMessage]]) -> None:
        if name in self._sent:
            return
        if self._result.get(SENDING) == name:  # the last run stopped before its answer
            log.warning("task %d: %s may have gone out before the stop", self._task.id, name)
            self._unconfirmed = True
            await self._record(None, (name, UNCONFIRMED))  # at most once: never sent again
            return
        message = await build()  # downloads: cancellable, nothing is posted yet

        async def post_and_record() -> None:
            task = self._task
            if not await self._store.claim_part(task.id, name, self._owner):
                # Another process posted it, or is posting it (two owners for a moment,
                # while a role changes hands), or a run killed between its claim and its
                # record did: never twice, and not certainly there.
                log.warning("task %d: %s was claimed elsewhere; not posted here", task.id, name)
                self._unconfirmed = True
                await self._record(None, (name, UNCONFIRMED))
                return
            await self._record(name)
            try:
                message_id = await self._outbox.post(
                    task.conversation, message, reply_to=task.reply_to_id
                )
            except Exception:
                # The platform answered: nothing went out, the part may be claimed again.
                await self._store.release_part(task.id, name)
                await self._record(None)
                raise
            await self._store.part_posted(task.id, name, message_id)
            await self._record(None, (name, message_id))

        # The outbox waits for the chat's slot (safe to stop) before it starts the step.
        await self._outbox.paced(
            self._task.conversation,
            lambda: self._step(post_and_record),
            attempts=POST_ATTEMPTS,
        )

    async def _record(self, sending: str | None, sent: tuple[str, str] | None = None) -> None:
        """Write which part is being sent (None: none) and, with ``sent``, a part's message
        id, into the task's row."""
        if sent is not None:
            self._sent[sent[0]] = sent[1]
            self._result[SENT] = dict(self._sent)
        self._result[SENDING] = sending
        await self._store.update_task(TaskUpdate(self._task.id, result=self._result))

    # -- building the parts ---------------------------------------------------------------------

    async def _image(self) -> OutgoingMessage:
        result = self._result
        specs = [
            ButtonSpec(
                str(b["custom_id"]), str(b.get("label", "")), str(b.get("emoji", "")), b["kind"]
            )
            for b in result.get("buttons") or []
        ]
        tokens = await self._store.add_buttons(self._task.id, specs) if specs else []
        rows = button_rows(
            [ButtonView(t, s.label, s.emoji) for t, s in zip(tokens, specs, strict=True)]
        )
        caption = _caption(headline(self._task))
        url = str(result.get("image_url") or "")
        media = await self._media(url, MediaKind.PHOTO, f"midjourney-{self._task.upstream_id}")
        if media is None:
            return OutgoingMessage(f"{caption}\n{url}", buttons=rows)
        return OutgoingMessage(caption, media=media, buttons=rows)

    async def _prompts(self) -> OutgoingMessage:
        prompts = [str(p) for p in self._result.get("prompts") or []]
        if not prompts:
            return _plain("🔎 Midjourney found no prompt for this image.")
        specs = [
            ButtonSpec(f"describe:{n}", str(n), "🎨", "describe")
            for n in range(1, len(prompts) + 1)
        ]
        tokens = await self._store.add_buttons(self._task.id, specs)
        lines = ["🔎 Prompts for your image (press a number to imagine it):"]
        lines += [f"{n}. {prompt}" for n, prompt in enumerate(prompts, 1)]
        buttons = [ButtonView(t, s.label, s.emoji) for t, s in zip(tokens, specs, strict=True)]
        return OutgoingMessage("\n\n".join(lines), buttons=button_rows(buttons))

    async def _clip(self, index: int) -> OutgoingMessage:
        clip: dict[str, Any] = self._result["clips"][index]
        title = str(clip.get("title") or "Untitled")
        tags = str(clip.get("tags") or "")
        caption = _caption(f"🎵 {title}" + (f" — {excerpt(tags, 200)}" if tags else ""))
        url = str(clip.get("audio_url") or "")
        media = await self._media(url, MediaKind.AUDIO, _stem(title, index))
        if media is None:
            return _plain(f"{caption}\n{url}")
        thumbnail = await self._thumbnail(str(clip.get("image_url") or ""))
        duration = clip.get("duration")
        return OutgoingMessage(
            caption,
            media=MediaFile(
                MediaKind.AUDIO,
                media.data,
                media.filename,
                media.mime_type,
                title=title,
                performer="Suno",
                duration=float(duration) if isinstance(duration, int | float) else None,
                thumbnail=thumbnail,
            ),
        )

    async def _video(self) -> OutgoingMessage:
        caption = _caption(headline(self._task))
        url = str(self._result.get("video_url") or "")
        media = await self._media(url, MediaKind.VIDEO, f"kling-{self._task.upstream_id}")
        if media is None:
            return _plain(f"{caption}\nThe video is too large to upload here; watch it at {url}")
        duration = self._result.get("duration")
        if isinstance(duration, int | float):
            media = MediaFile(
                media.kind, media.data, media.filename, media.mime_type, duration=float(duration)
            )
        return OutgoingMessage(caption, media=media)

    async def _media(self, url: str, kind: MediaKind, stem: str) -> MediaFile | None:
        return await fetch_media(self._backend, self._outbox.limits, url, kind, stem)

    async def _thumbnail(self, url: str) -> bytes | None:
        return await fetch_thumbnail(self._backend, url)


async def _text(text: str) -> OutgoingMessage:
    return _plain(text)


def _plain(text: str) -> OutgoingMessage:
    return OutgoingMessage(text)


def _caption(text: str) -> str:
    return text if len(text) <= CAPTION_LIMIT else text[: CAPTION_LIMIT - 1] + "…"


def _stem(title: str, index: int) -> str:
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in title).strip() or "song"
    return f"{safe[:60]} ({index + 1})"
