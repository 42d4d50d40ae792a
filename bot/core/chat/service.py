"""A chat turn: stored context -> model stream -> StreamingReply -> stored turns.

One reply at a time per conversation: a second message in the same channel
waits for the first answer to finish, so answers never interleave and each one
sees the turn before it in its context.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.chat.context import MAX_TURNS_LOADED, build_context, estimate_tokens
from bot.core.chat.documents import DocumentLimits, DocumentReader, file_marks, framed_question
from bot.core.chat.images import ImageScanner
from bot.core.chat.pictures import gather_pictures
from bot.core.chat.stops import RunningAnswers
from bot.core.chat.streaming import StreamingReply
from bot.core.chat.watch import AnswerLimits, EarlyStop, StreamWatch
from bot.core.clock import SystemClock
from bot.core.errors import ModelError, SurfaceError, UserFacingError
from bot.core.locks import KeyedLocks
from bot.core.logcontext import bind_log_context
from bot.core.media_ports import ImageFetcher, PdfText, Pictures
from bot.core.models import ConversationKey, Incoming, MediaFile, Platform, Role, Turn, Usage
from bot.core.ports import ChatModel, ChatStore, Clock, Telemetry
from bot.core.telemetry import NullTelemetry
from bot.core.text import is_blank

log = logging.getLogger(__name__)

MENU_SIZE = 24
# Offered first in /model menus when the operator configured no list: CometAPI lists hundreds.
POPULAR_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "o4-mini",
    "claude-sonnet-4-5",
    "claude-3-7-sonnet-latest",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "deepseek-chat",
    "deepseek-reasoner",
    "grok-4",
    "qwen-max",
)


class ChatTurns(Protocol):
    """Held around each turn once the conversation is this turn's (the gatekeeper's
    per-user quota re-check); raises a :class:`UserFacingError` to refuse the turn."""

    def chat_turn(self, user: str) -> contextlib.AbstractAsyncContextManager[None]: ...


class _Unlimited:
    @contextlib.asynccontextmanager
    async def chat_turn(self, user: str) -> AsyncIterator[None]:
        yield


@dataclass(frozen=True, slots=True)
class ChatConfig:
    default_model: str
    system_prompt: str
    context_tokens: int = 8000
    model_context_tokens: tuple[tuple[str, int], ...] = ()
    max_prompt_chars: int = 8000
    models: tuple[str, ...] = ()
    """Models users may pick; empty: whatever the model list offers."""
    answer_limits: AnswerLimits = field(default_factory=AnswerLimits)
    """When a streamed answer is stopped early: silence, total time, length."""
    documents: DocumentLimits = field(default_factory=DocumentLimits)
    """Caps for files sent with a question."""

    def budget(self, model: str) -> int:
        return dict(self.model_context_tokens).get(model, self.context_tokens)


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    usage: Usage | None
    error: ModelError | None
    message_ids: tuple[str, ...]
    stopped: EarlyStop | None = None
    """Why the answer ended before the model finished it, if it did."""


class ChatService:
    """Answers chat messages on any platform."""

    def __init__(
        self,
        *,
        model: ChatModel,
        store: ChatStore,
        config: ChatConfig,
        telemetry: Telemetry | None = None,
        clock: Clock | None = None,
        turns: ChatTurns | None = None,
        pdf: PdfText | None = None,
        images: ImageFetcher | None = None,
    ) -> None:
        # No wall clock here: the store dates the turns it stores (one clock for every date).
        # ``clock`` only times the answer limits (a monotonic clock).
        self._clock: Clock = clock or SystemClock()
        self._model = model
        self._store = store
        self._config = config
        self._telemetry: Telemetry = telemetry or NullTelemetry()
        self._locks = KeyedLocks()
        self._turns: ChatTurns = turns or _Unlimited()
        self._images = images
        self.running = RunningAnswers()
        """The answers being streamed, for the ⏹ button and ``/stop``."""
        self.documents = DocumentReader(config.documents, pdf)
        """Files sent with a question: platforms check, download, then read through it."""

    @property
    def config(self) -> ChatConfig:
        return self._config

    def validate(self, incoming: Incoming) -> None:
        """Refuse bad input before anything is stored or sent upstream."""
        if is_blank(incoming.text) and not incoming.images and not incoming.documents:
            raise UserFacingError("Send me some text (or a photo) and I will answer.")
        if len(incoming.text) > self._config.max_prompt_chars:
            raise UserFacingError(
                f"That message is too long ({len(incoming.text):,} characters); "
                f"the limit is {self._config.max_prompt_chars:,}."
            )

    async def answer(
        self, incoming: Incoming, reply: StreamingReply, *, pictures: Pictures | None = None
    ) -> ChatResult:
        """Answer ``incoming`` through ``reply`` (not yet entered), with the answer's images
        posted to ``pictures``; waits for an earlier answer in the same conversation to
        finish first."""
        self.validate(incoming)
        async with (
            self._locks.hold(str(incoming.key)),
            # Admission happened before waiting for the conversation: the quota is checked
            # again now, so a burst of messages cannot all go upstream.
            self._turns.chat_turn(incoming.user_id),
        ):
            return await self._answer_locked(incoming, reply, pictures)

    async def _answer_locked(
        self, incoming: Incoming, reply: StreamingReply, pictures: Pictures | None
    ) -> ChatResult:
        key = incoming.key
        settings = await self._store.get_settings(key)
        model = settings.model or self._config.default_model
        persona = settings.persona or self._config.system_prompt
        history = await self._store.recent_turns(key, limit=MAX_TURNS_LOADED)
        messages = build_context(
            system_prompt=persona,
            history=history,
            # A file's text goes upstream with this turn only; the stored turn names it.
            question=framed_question(incoming.text, incoming.documents),
            speaker=incoming.user_name,
            images=incoming.images,
            group=incoming.is_group,
            budget=self._config.budget(model),
        )
        # The question is stored first: whatever happens upstream, it is not lost.
        await self._store.add_turn(
            key,
            Turn(
                role=Role.USER,
                content=_stored_question(incoming),
                speaker=incoming.user_name,
                tokens=estimate_tokens(incoming.text),
            ),
            user_id=incoming.user_id,
        )
        watch = StreamWatch(self._config.answer_limits, self._clock)
        run = self.running.start(key, incoming.user_id, lambda: watch.stop(EarlyStop.USER))
        reply.show_controls(run.controls)
        scanner = ImageScanner()
        async with reply:
            with run:
                streamed = await watch.run(
                    self._model.stream(model, messages), reply.feed, scanner.feed
                )
            if tail := scanner.finish():  # an unfinished "![" that was text after all
                streamed.parts.append(tail)
                reply.feed(tail)
            files, problems = await gather_pictures(scanner.images, self._images)
            if files:
                # Before the text's last edit: the pictures take the chat's next slot, so
                # they show within a second of the answer's end, below its first message.
                shown = reply.result.message_ids
                await _post(pictures, files, shown[-1] if shown else None)
            error, usage, stopped = streamed.error, streamed.usage, streamed.stopped
            if error is not None:
                bind_log_context(request_id=error.request_id)
                log.warning(
                    "chat %s: model %s failed: %s (request id %s)",
                    key,
                    model,
                    type(error).__name__,
                    error.request_id,
                )
            if stopped is not None:
                log.info("chat %s: model %s stopped early (%s)", key, model, stopped.name)
            notes = [n for n in (_note(error, stopped, bool(streamed.parts)), *problems) if n]
            if files and not notes and not "".join(streamed.parts).strip():
                notes.append("🖼️")  # a picture alone still gets its reply
            sent = await reply.finish(note="\n".join(notes) or None)
        text = streamed.text
        if usage is None and text:
            # No usage chunk from upstream: count an estimate, so quotas still hold.
            usage = Usage(
                prompt_tokens=sum(estimate_tokens(m.content) for m in messages),
                completion_tokens=estimate_tokens(text),
            )
        failed = error is not None or stopped is not None
        outcome = (
            "stopped"
            if stopped is EarlyStop.USER
            else "ok"
            if not failed
            else "cut"
            if text
            else "error"
        )
        self._telemetry.reply_done(key.platform.value, outcome)
        if usage is not None:
            self._telemetry.tokens(usage.prompt_tokens, usage.completion_tokens, model=model)
        if text or scanner.images:
            await self._store.add_turn(
                key,
                Turn(
                    role=Role.ASSISTANT,
                    # Placeholders, never base64: history goes upstream with every question.
                    content=scanner.stored_text() if scanner.images else text,
                    tokens=usage.completion_tokens if usage else estimate_tokens(text),
                ),
                user_id=incoming.user_id,
                model=model,
                usage=usage,
            )
        return ChatResult(
            text=text, usage=usage, error=error, message_ids=tuple(sent), stopped=stopped
        )

    async def reset(self, key: ConversationKey) -> None:
        """Start a fresh context; an answer in progress is stored before the reset point."""
        async with self._locks.hold(str(key)):
            await self._store.reset(key)

    async def move_chat(self, platform: Platform, old_chat_id: str, new_chat_id: str) -> None:
        """A chat got a new id (a Telegram group became a supergroup): its context, model,
        persona and generation tasks follow it (see :meth:`ChatStore.move_chat`)."""
        moved = await self._store.move_chat(platform, old_chat_id, new_chat_id)
        if moved:
            log.info("chat %s moved to %s (%d rows)", old_chat_id, new_chat_id, moved)

    async def set_persona(self, key: ConversationKey, persona: str | None) -> None:
        if persona is not None and len(persona) > self._config.max_prompt_chars:
            raise UserFacingError(
                "That persona is too long; the limit is "
                f"{self._config.max_prompt_chars:,} characters."
            )
        await self._store.set_persona(key, persona.strip() if persona else None)

    async def set_voice(self, key: ConversationKey, on: bool) -> None:
        await self._store.set_voice(key, on)

    async def speaks(self, key: ConversationKey) -> bool:
        """Whether answers in ``key`` are also spoken (``/voice on``)."""
        return (await self._store.get_settings(key)).voice

    async def persona(self, key: ConversationKey) -> tuple[str, bool]:
        """The channel's persona and whether it is the configured default."""
        settings = await self._store.get_settings(key)
        if settings.persona:
            return settings.persona, False
        return self._config.system_prompt, True

    async def current_model(self, key: ConversationKey) -> str:
        settings = await self._store.get_settings(key)
        return settings.model or self._config.default_model

    async def available_models(self) -> list[str]:
        """The models a user may pick: the configured list, else CometAPI's."""
        if self._config.models:
            return list(self._config.models)
        return sorted(await self._model.list_models())

    async def model_menu(self, size: int = MENU_SIZE) -> list[str]:
        """A short list to offer as buttons: the configured models, else well-known chat
        models the list offers, else the list's first entries."""
        models = await self.available_models()
        if self._config.models:
            return models[:size]
        known = [m for m in POPULAR_MODELS if m in set(models)]
        return (known or models)[:size]

    async def set_model(self, key: ConversationKey, name: str) -> str:
        name = name.strip()
        models = await self.available_models()
        if name not in models:
            close = [m for m in models if name.lower() in m.lower()][:5]
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UserFacingError(f"Unknown model {name!r}.{hint}")
        await self._store.set_model(key, name)
        return name


async def _post(pictures: Pictures | None, files: list[MediaFile], reply_to: str | None) -> None:
    if pictures is None:
        log.warning("an answer's %d picture(s) had nowhere to go", len(files))
        return
    try:
        await pictures.post_pictures(files, reply_to=reply_to)
    except SurfaceError as exc:
        log.warning("an answer's pictures were not posted: %s", type(exc).__name__)


def _stored_question(incoming: Incoming) -> str:
    text = file_marks(incoming.text, incoming.documents)
    if not incoming.images:
        return text
    count = len(incoming.images)
    marker = "[1 image]" if count == 1 else f"[{count} images]"
    return f"{text}\n{marker}" if text else marker


def _note(error: ModelError | None, stopped: EarlyStop | None, had_text: bool) -> str | None:
    if stopped is not None:
        return stopped.note
    if error is None:
        return None
    if had_text:
        return f"⚠️ The answer stopped early: {error.message}"
    return f"⚠️ {error.message}"
