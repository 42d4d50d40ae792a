"""Generation use cases: /imagine, /blend, /describe, /music, /video, buttons and modals.

Each use case checks its input (nothing is stored or sent for bad input), asks
:class:`~bot.core.ports.Admission` (the one place a generation is allowed or refused:
quotas, cooldowns, caps), then:

1. writes the task row (``pending``) — before anything is paid for;
2. shows a status message at once (for buttons: after the submit, because the answer
   decides between a status message and a question);
3. submits once. A refusal marks the row failed and the status message says why; an
   *unclear* outcome (timeout, 504/524: :class:`~bot.core.errors.SubmitUncertain`) also
   marks it failed, with a sentence saying so — it is never resubmitted, since the task
   may exist and be charged (correlating it upstream is left for later: CometAPI offers
   no lookup by our own id for every family);
4. records the upstream id with its deadline and first poll time, and wakes the poller,
   which takes it from there (:mod:`bot.core.generation.poller`).

A Midjourney button whose action answers "modal" (code 21: Custom Zoom, or remix) leaves
its row ``waiting`` and asks the user a question (Telegram: a ForceReply message); the
reply (:meth:`GenerationService.answer`) completes it with ``/mj/submit/modal``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.core.errors import GenerationError, SubmitUncertain, SurfaceError, UserFacingError
from bot.core.generation.poller import TaskPoller
from bot.core.generation.presses import ButtonPresses
from bot.core.generation.progress import post_paced
from bot.core.generation.prompts import (
    MusicSpec,
    PromptLimits,
    VideoSpec,
    check_imagine,
    check_music,
    check_video,
    modal_prompt,
)
from bot.core.generation.records import (
    DEFAULT_DEADLINES,
    ButtonRef,
    NewTask,
    Provider,
    Task,
    TaskStatus,
    TaskUpdate,
)
from bot.core.generation.requests import (
    ActionRequest,
    BlendRequest,
    DescribeRequest,
    GenerationRequest,
    ImagineRequest,
    ModalRequest,
    MusicRequest,
    NewTaskRequest,
    Origin,
    VideoRequest,
)
from bot.core.generation.views import (
    BROKEN,
    DEAD_PARENT,
    GONE,
    MODAL_EXPIRED,
    modal_question,
    progress_view,
    submitting_view,
)
from bot.core.models import ImageInput, OutgoingMessage, Platform, Submitted
from bot.core.ports import Admission, Admitted, Outbox, TaskBackend, TaskStore

__all__ = [
    "GenerationConfig",
    "GenerationService",
    "OpenAdmission",
    "Origin",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    limits: PromptLimits = dataclasses.field(default_factory=PromptLimits)
    deadlines: Mapping[Provider, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_DEADLINES)
    )
    first_interval: float = 3.0
    suno_model: str = "chirp-v4"
    kling_model: str = "kling-v2-1"
    kling_duration: int = 5
    kling_aspect_ratio: str = "16:9"
    modal_timeout: float = 1500.0
    """How long a Midjourney modal waits for the user's answer (upstream drops it ~30 min)."""
    buttons_owner_only: bool = True
    press_window: float = 5.0  # seconds after a press in which its button submits nothing


class OpenAdmission:
    """The admission used when no limits are configured."""

    def recorded(self) -> None:
        return None

    async def refund(self) -> bool:
        return False


class GenerationService:
    """The generation use cases, for every platform (see the module docstring)."""

    def __init__(
        self,
        *,
        store: TaskStore,
        backend: TaskBackend,
        poller: TaskPoller,
        outboxes: Mapping[Platform, Outbox],
        config: GenerationConfig,
        admission: Admission | None = None,
        wall: Callable[[], float] = time.time,
        is_admin: Callable[[str], bool] = lambda user: False,
    ) -> None:
        self._store = store
        self._backend = backend
        self._poller = poller
        self._outboxes = outboxes
        self._config = config
        self.admission = admission
        self._wall = wall
        self._presses = ButtonPresses(
            config.buttons_owner_only, config.press_window, is_admin, wall
        )

    @property
    def config(self) -> GenerationConfig:
        return self._config

    def check_imagine(self, prompt: str) -> str:
        """The checks of :meth:`imagine`, for platforms to run before downloading images."""
        return check_imagine(prompt, self._config.limits)

    # -- use cases ------------------------------------------------------------------------------

    async def imagine(
        self, origin: Origin, prompt: str, *, images: Sequence[ImageInput] = ()
    ) -> int:
        """Midjourney text (+ reference images) -> a grid. Parameters pass through."""
        prompt = check_imagine(prompt, self._config.limits)
        return await self._start(origin, ImagineRequest(prompt, tuple(images)), quota="imagine")

    async def blend(
        self, origin: Origin, images: Sequence[ImageInput], *, dimensions: str = "SQUARE"
    ) -> int:
        if not 2 <= len(images) <= 5:
            raise UserFacingError("Blend needs 2 to 5 images: send them as one album.")
        if dimensions not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            raise UserFacingError("The shape must be portrait, square or landscape.")
        request = BlendRequest(tuple(images), dimensions)
        return await self._start(origin, request, quota="imagine")

    async def describe(
        self, origin: Origin, *, image: ImageInput | None = None, link: str | None = None
    ) -> int:
        """Midjourney image -> four prompts, each with a button that imagines it."""
        if (image is None) == (link is None):
            raise UserFacingError("Send one image (or one image link) to describe.")
        if link is not None and not link.startswith(("http://", "https://")):
            raise UserFacingError("That does not look like an image link (http/https).")
        return await self._start(origin, DescribeRequest(image, link), quota="imagine")

    async def music(self, origin: Origin, spec: MusicSpec) -> int:
        """Suno: two clips (inspiration mode, or custom lyrics + style + title)."""
        spec = check_music(spec, self._config.limits)
        request = MusicRequest(spec, self._config.suno_model)
        return await self._start(origin, request, quota="music")

    async def video(
        self, origin: Origin, spec: VideoSpec, *, image: ImageInput | None = None
    ) -> int:
        """Kling text-to-video, or image-to-video with an image."""
        spec = check_video(spec, self._config.limits, image=image is not None)
        request = VideoRequest(spec, self._config.kling_model, image)
        return await self._start(origin, request, quota="video")

    async def button(self, token: str, origin: Origin) -> ButtonRef:
        """The button behind a token, if ``origin`` may press it there and now (fast: answer
        the click with this before :meth:`press` submits; :mod:`.presses` says the rules)."""
        ref = await self._store.get_button(token)
        parent = None if ref is None else await self._store.get_task(ref.task_id)
        if ref is None or parent is None:
            raise UserFacingError(GONE)
        if parent.status is not TaskStatus.SUCCEEDED:
            raise UserFacingError(DEAD_PARENT)
        self._presses.check(parent, origin)
        self._presses.claim(token)
        return ref

    async def press(self, origin: Origin, ref: ButtonRef) -> int:
        """Submit a button's action (``origin.reply_to``: the message carrying it)."""
        parent = await self._store.get_task(ref.task_id)
        if parent is None or parent.status is not TaskStatus.SUCCEEDED:
            raise UserFacingError(DEAD_PARENT)
        self._presses.check(parent, origin)
        with self._presses.pressing(ref.token):
            return await self._press(origin, ref, parent)

    async def _press(self, origin: Origin, ref: ButtonRef, parent: Task) -> int:
        result = parent.result or {}
        if ref.kind == "describe":
            prompts = result.get("prompts") or []
            index = int(ref.label) - 1 if ref.label.isdigit() else -1
            if not 0 <= index < len(prompts):
                raise UserFacingError(GONE)
            return await self.imagine(origin, str(prompts[index]))
        request = ActionRequest(
            parent=parent.upstream_id or "",
            custom_id=ref.custom_id,
            label=" ".join(p for p in (ref.emoji, ref.label) if p) or "Button",
            prompt=str(result.get("prompt") or parent.request.get("prompt") or ""),
            modal="custom_zoom" if ref.kind == "custom_zoom" else "prompt",
        )
        return await self._start(
            origin, request, quota="imagine", parent_id=parent.id, status_first=False
        )

    async def answer(self, origin: Origin, question_id: str, text: str) -> bool:
        """A reply to a modal question; False when ``question_id`` asks nothing of this user."""
        task = await self._store.waiting_task(origin.user_id, question_id)
        if task is None:
            return False
        if task.deadline is not None and self._wall() > task.deadline:
            await self._fail(task, MODAL_EXPIRED, status=TaskStatus.EXPIRED)
            return True
        prompt = modal_prompt(task, text, self._config.limits)
        # Row first: should the process die during the paid submit, the row says "unknown".
        await self._store.update_task(TaskUpdate(task.id, status=TaskStatus.PENDING))
        submitted = await self._submit(task, ModalRequest(task.upstream_id or "", prompt))
        if submitted is not None:
            await self._submitted(task, submitted)
        return True

    # -- the shared path ------------------------------------------------------------------------

    async def _start(
        self,
        origin: Origin,
        request: NewTaskRequest,
        *,
        quota: str,
        parent_id: int | None = None,
        status_first: bool = True,
    ) -> int:
        outbox = self._outboxes.get(origin.key.platform)
        if outbox is None:
            raise UserFacingError("Generation is not available here.")
        admitted = await self._admit(origin.user_id, quota)
        row = request.row()
        try:
            task_id = await self._store.create_task(
                NewTask(
                    provider=request.provider,
                    kind=request.kind,
                    owner_id=origin.user_id,
                    conversation=origin.key,
                    request=row,
                    parent_id=parent_id,
                    reply_to_id=origin.reply_to,
                    route=origin.route,
                    submitter=self._poller.name,
                )
            )
        except BaseException:
            await admitted.refund()
            raise
        admitted.recorded()
        now = self._wall()
        task = Task(
            id=task_id,
            provider=request.provider,
            kind=request.kind,
            owner_id=origin.user_id,
            conversation=origin.key,
            status=TaskStatus.PENDING,
            request=row,
            created_at=now,
            updated_at=now,
            parent_id=parent_id,
            reply_to_id=origin.reply_to,
        )
        if status_first:
            message_id = await self._post(outbox, task, submitting_view(task).text)
            if message_id is not None:
                await self._store.update_task(TaskUpdate(task_id, status_message_id=message_id))
                task = dataclasses.replace(task, status_message_id=message_id)
        submitted = await self._submit(task, request, admitted=admitted)
        if submitted is not None:
            await self._submitted(task, submitted)
        return task_id

    async def _submit(
        self, task: Task, request: GenerationRequest, *, admitted: Admitted | None = None
    ) -> Submitted | None:
        """One paid submit; on any failure the row is failed and the user told (None)."""
        provider = request.provider
        try:
            return await self._backend.submit(request)
        except asyncio.CancelledError:
            raise  # the row stays pending: the next start reports it as uncertain
        except GenerationError as exc:
            log.info("task %d: %s submit refused: %s", task.id, provider.value, type(exc).__name__)
            if admitted is not None and not isinstance(exc, SubmitUncertain):
                await admitted.refund()
            await self._fail(task, exc.message)
        except Exception:
            log.exception("task %d: %s submit crashed", task.id, provider.value)
            await self._fail(task, BROKEN)
        return None

    async def _submitted(self, task: Task, submitted: Submitted) -> None:
        now = self._wall()
        if submitted.waiting:
            await self._ask(task, submitted.upstream_id, now)
            return
        outbox = self._outboxes[task.conversation.platform]
        queued = progress_view(task, status=TaskStatus.SUBMITTED, progress=0, preview_url=None)
        message_id = task.status_message_id
        shown = message_id is not None  # a status message exists: switch it to "queued"
        if message_id is None:
            message_id = await self._post(outbox, task, queued.text)
        task = dataclasses.replace(
            task,
            status=TaskStatus.SUBMITTED,
            upstream_id=submitted.upstream_id,
            status_message_id=message_id,
        )
        await self._store.update_task(
            TaskUpdate(
                task.id,
                status=TaskStatus.SUBMITTED,
                upstream_id=submitted.upstream_id,
                status_message_id=message_id,
                progress=0,
                attempts=0,
                deadline=now + self._config.deadlines[task.provider],
                next_poll_at=now + self._config.first_interval,
            )
        )
        if shown:
            self._poller.show(task, queued)
        self._poller.wake()

    async def _ask(self, task: Task, upstream_id: str, now: float) -> None:
        await self._store.update_task(
            TaskUpdate(
                task.id,
                status=TaskStatus.WAITING,
                upstream_id=upstream_id,
                deadline=now + self._config.modal_timeout,
                next_poll_at=None,
            )
        )
        outbox = self._outboxes[task.conversation.platform]
        question = OutgoingMessage(modal_question(task), ask=True)
        try:
            message_id = await post_paced(
                outbox, task.conversation, question, reply_to=task.reply_to_id
            )
        except SurfaceError as exc:
            log.warning("task %d: could not ask for the modal input: %s", task.id, exc)
            await self._fail(task, "I could not ask you for the missing input. Please try again.")
            return
        await self._store.update_task(TaskUpdate(task.id, status_message_id=message_id))

    async def _fail(
        self, task: Task, message: str, *, status: TaskStatus = TaskStatus.FAILED
    ) -> None:
        await self._store.update_task(
            TaskUpdate(task.id, status=status, error=message, next_poll_at=None)
        )
        self._poller.deliver(task.id)

    async def _post(self, outbox: Outbox, task: Task, text: str) -> str | None:
        try:
            return await post_paced(
                outbox, task.conversation, OutgoingMessage(text), reply_to=task.reply_to_id
            )
        except SurfaceError as exc:
            log.warning("task %d: could not post its status message: %s", task.id, exc)
            return None

    async def _admit(self, user: str, kind: str) -> Admitted:
        if self.admission is None:
            return OpenAdmission()
        return await self.admission.admit_generation(user, kind)
