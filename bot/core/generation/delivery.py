"""Result delivery: a finished task's result (or failure), posted exactly once across restarts.

:class:`Deliverer` (progress edits are
:class:`~bot.core.generation.progress.StatusEditor`'s; a delivery
first *settles* the task's editor so no stale progress lands after the final text):

* a delivery is a list of *parts* (the grid, clip 1, clip 2, a video, a notice); after the
  platform confirms a part, its message id is written into the row (``result["sent"]``)
  before the next part starts, and a resumed delivery skips the parts already there;
* waiting for the chat's pacer slot may be interrupted at any time; sending a part and
  recording it form one *step* that cancellation does not cut in half: on shutdown a step
  in flight finishes (within ``grace`` seconds) before the delivery stops;
* a step first writes the part's name as *being sent* (``result["sending"]``); an answer
  from the platform (a message id, or an error: then nothing went out) clears it. A step
  that never got its answer (slower than ``grace``, or the process was killed) leaves it,
  and the next start cannot tell whether that part went out: the platforms offer no
  idempotency key and no way to ask. It is not posted again (*at most once* rather than
  twice): it counts as sent, with no message id, and the final status says a part may be
  missing.
* the status message then shows the final view (an idempotent edit) and the row is marked
  delivered; ``mark_delivered`` is idempotent too;
* a file that cannot be fetched is retried (a 404 or a refused URL once, soon); when given
  up, the status message says so, the quota is refunded if nothing was posted, and the
  operator gets a log line and a count (:mod:`bot.core.generation.fetch`).

Result shapes (``task.result``, written by the task backend): ``{"type": "image",
"image_url", "prompt", "buttons": [{custom_id, label, emoji, kind}]}``, ``{"type":
"prompts", "prompts": [...]}``, ``{"type": "audio", "clips": [{title, audio_url,
image_url, duration, tags}]}``, ``{"type": "video", "video_url", "duration"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from bot.core.errors import (
    MessageGone,
    PlatformUnavailable,
    ResultUnavailable,
    SurfaceError,
    UpstreamError,
)
from bot.core.generation.fetch import fetch_media, fetch_thumbnail, unfetched_view
from bot.core.generation.progress import POST_ATTEMPTS, StatusEditor
from bot.core.generation.records import ButtonSpec, Task, TaskStatus, TaskUpdate
from bot.core.generation.views import (
    button_rows,
    done_view,
    excerpt,
    failed_view,
    headline,
)
from bot.core.lifecycle import SHUTDOWN
from bot.core.models import (
    ButtonView,
    MediaFile,
    MediaKind,
    OutgoingMessage,
    Platform,
    StatusView,
)
from bot.core.ports import Clock, Outbox, Refunds, TaskBackend, TaskStore, Telemetry
from bot.core.telemetry import NullTelemetry

__all__ = ["Deliverer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
SENT: Final = "sent"
"""Key in ``task.result``: part name -> platform message id, for parts already delivered."""
SENDING: Final = "sending"
"""Key in ``task.result``: the part whose post was under way and unanswered (see above)."""
UNCONFIRMED: Final = ""
"""The message id of a part that may or may not have been posted before a stop."""
MAYBE_MISSING: Final = (
    "⚠️ The bot restarted while posting: a part may be missing (none is sent twice)."
)
RETRY_DELAYS: Final = (5.0, 15.0, 60.0, 300.0, 900.0)
UNAVAILABLE_RETRY_DELAYS: Final = (3.0,)
"""A 404 or a refused URL: one more try (a CDN may lag behind the task's status), then give up."""
DELIVERIES: Final = 16
"""Deliveries (download, then post) under way at once. Slow servers cannot hold them for
long (the downloader's deadline and minimum rate; retries wait outside any slot), and a few
results on one leave the rest free. Memory: at most this many times the download cap."""
STEP_GRACE: Final = SHUTDOWN.flush  # a step in flight at a stop lands like a cut reply
CAPTION_LIMIT: Final = 900


class Deliverer:
    """Delivers finished tasks, at most ``concurrency`` at a time (see the module docstring).
    ``refunds`` gives the quota back for a result that could not be fetched; ``telemetry``
    counts those."""

    def __init__(
        self,
        *,
        store: TaskStore,
        backend: TaskBackend,
        outboxes: Mapping[Platform, Outbox],
        editor: StatusEditor,
        clock: Clock,
        concurrency: int = DELIVERIES,
        grace: float = STEP_GRACE,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        unavailable_retry_delays: tuple[float, ...] = UNAVAILABLE_RETRY_DELAYS,
        refunds: Refunds | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._store = store
        self._backend = backend
        self._outboxes = outboxes
        self._editor = editor
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._grace = grace
        self._retry_delays = retry_delays
        self._unavailable_delays = unavailable_retry_delays
        self._refunds = refunds
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._jobs: dict[int, asyncio.Task[None]] = {}

    def schedule(self, task_id: int) -> None:
        """Deliver the task soon (no-op if its delivery is already under way)."""
        if task_id in self._jobs:
            return
        job = asyncio.get_running_loop().create_task(self._run(task_id))
        self._jobs[task_id] = job
        job.add_done_callback(lambda _: self._jobs.pop(task_id, None))

    async def close(self) -> None:
        """Stop: queued deliveries are dropped (they resume at the next start); a step in
        flight finishes first, within the grace period."""
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def _run(self, task_id: int) -> None:
        attempt = 0
        while True:
            try:
                async with self._slots:
                    await self._deliver(task_id)
                return
            except (PlatformUnavailable, UpstreamError) as exc:
                delays = (
                    self._unavailable_delays
                    if isinstance(exc, ResultUnavailable)
                    else self._retry_delays
                )
                if attempt >= len(delays):
                    if isinstance(exc, UpstreamError):
                        await self._give_up(task_id, exc)
                        return
                    log.error("task %d: delivery failed for good: %s", task_id, exc)  # noqa: TRY400
                    break
                delay = delays[attempt]
                log.warning("task %d: delivery failed (%s); again in %.0f s", task_id, exc, delay)
                await self._clock.sleep(delay)
                attempt += 1
            except SurfaceError as exc:
                log.warning("task %d: the platform refused the delivery: %s", task_id, exc)
                break
            except Exception:
                log.exception("task %d: delivery crashed", task_id)
                break
        # Given up: record it, so a restart does not retry a delivery that cannot succeed.
        await self._store.mark_delivered(task_id)

    async def _give_up(self, task_id: int, exc: UpstreamError) -> None:
        """The result cannot be fetched: tell the user and the operator, refund what gave
        nothing, and record the task as delivered (a restart does not try again)."""
        task = await self._store.get_task(task_id)
        outbox = self._outboxes.get(task.conversation.platform) if task is not None else None
        if task is None or task.delivered_at is not None or outbox is None:
            return  # done meanwhile, or its platform is not running: the next start retries
        provider = task.provider.value
        log.error(
            "task %d (%s): the result could not be fetched, given up: %s", task.id, provider, exc
        )
        self._telemetry.result_unfetched(provider, exc.reason)
        delivery = _Delivery(self, task, outbox)
        refunded = delivery.nothing_posted and self._refunds is not None
        if refunded and self._refunds is not None:
            try:
                await self._refunds.refund_task(task)
            except Exception:
                log.exception("task %d: quota refund failed", task.id)
        try:
            await delivery.unfetched(refunded=refunded)
        except SurfaceError as error:
            log.warning("task %d: could not say the result is missing: %s", task.id, error)
        await self._store.mark_delivered(task.id)

    async def _deliver(self, task_id: int) -> None:
        task = await self._store.get_task(task_id)
        if task is None or task.delivered_at is not None or not task.status.is_terminal:
            return
        outbox = self._outboxes.get(task.conversation.platform)
        if outbox is None:
            log.info("task %d: %s is not running; delivery waits", task.id, task.conversation)
            return
        await self._editor.settle(task.id)
        if task.status is TaskStatus.SUCCEEDED:
            await _Delivery(self, task, outbox).result()
        else:
            await _Delivery(self, task, outbox).failure()
        await self._store.mark_delivered(task.id)

    async def step(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` (a post and its record) to the end even if cancelled meanwhile."""
        inner = asyncio.ensure_future(work())
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if not inner.done():
                sleeper = asyncio.ensure_future(self._clock.sleep(self._grace))
                try:
                    await asyncio.wait((inner, sleeper), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                if not inner.done():
                    inner.cancel()
            raise


class _Delivery:
    """One task's delivery: its parts in order, each recorded once posted."""

    def __init__(self, owner: Deliverer, task: Task, outbox: Outbox) -> None:
        self._owner = owner
        self._store = owner._store
        self._backend = owner._backend
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
                await self._owner.step(lambda: self._edit(view))
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
                await self._owner.step(lambda: self._edit(done))
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
            await self._record(name)
            try:
                message_id = await self._outbox.post(
                    task.conversation, message, reply_to=task.reply_to_id
                )
            except Exception:
                await self._record(None)  # the platform answered: nothing went out
                raise
            await self._record(None, (name, message_id))

        # The outbox waits for the chat's slot (safe to stop) before it starts the step.
        await self._outbox.paced(
            self._task.conversation,
            lambda: self._owner.step(post_and_record),
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
