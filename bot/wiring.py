"""Builders from ``Settings`` sections to the core's feature configurations, for ``bot.app``.

They keep the composition root short: each turns one section (``[chat]``, ``[images]``,
``[generation]``) into the frozen config objects the core's services take.
"""

from __future__ import annotations

from bot.config import Settings
from bot.core.chat.documents import MB, DocumentLimits
from bot.core.chat.service import ChatConfig
from bot.core.chat.watch import AnswerLimits
from bot.core.generation.images import ImagesConfig
from bot.core.generation.poller import PollerConfig
from bot.core.generation.prompts import PromptLimits
from bot.core.generation.records import Provider
from bot.core.generation.service import GenerationConfig

__all__ = ["chat_config", "generation_configs", "images_config"]


def chat_config(settings: Settings) -> ChatConfig:
    chat = settings.chat
    return ChatConfig(
        default_model=chat.default_model,
        system_prompt=chat.system_prompt,
        context_tokens=chat.context_tokens,
        model_context_tokens=tuple(chat.model_context_tokens.items()),
        max_prompt_chars=chat.max_prompt_chars,
        models=tuple(chat.models),
        answer_limits=AnswerLimits(
            idle_timeout=chat.answer_idle_timeout,
            deadline=chat.answer_deadline,
            max_chars=chat.max_answer_chars,
        ),
        documents=DocumentLimits(
            max_bytes=int(chat.max_document_mb * MB),
            max_pdf_pages=chat.max_pdf_pages,
            max_chars=chat.max_document_chars,
        ),
    )


def images_config(settings: Settings) -> ImagesConfig:
    """``[images]``: ``/image``'s default model, size, quality and the models one may pick."""
    images = settings.images
    return ImagesConfig(
        model=images.model,
        size=images.size,
        quality=images.quality,
        models=tuple(images.models),
        max_prompt_chars=images.max_prompt_chars,
    )


def generation_configs(settings: Settings) -> tuple[GenerationConfig, PollerConfig]:
    gen = settings.generation
    deadlines = {
        Provider.MIDJOURNEY: gen.mj_deadline,
        Provider.SUNO: gen.suno_deadline,
        Provider.KLING: gen.kling_deadline,
    }
    limits = PromptLimits(
        mj=gen.mj_max_prompt_chars,
        suno_description=gen.suno_max_prompt_chars,
        suno_lyrics=gen.suno_max_lyrics_chars,
        suno_style=gen.suno_max_style_chars,
        kling=gen.kling_max_prompt_chars,
        mj_speed_flags=gen.mj_allow_speed_flags,
    )
    generation = GenerationConfig(
        limits=limits,
        deadlines=deadlines,
        first_interval=gen.poll_first_interval,
        suno_model=gen.suno_model,
        kling_model=gen.kling_model,
        kling_duration=gen.kling_duration,
        kling_aspect_ratio=gen.kling_aspect_ratio,
        buttons_owner_only=gen.buttons_owner_only,
    )
    poller = PollerConfig(
        first_interval=gen.poll_first_interval,
        max_interval=gen.poll_max_interval,
        growth=gen.poll_growth,
        jitter=gen.poll_jitter,
        batch_window=gen.poll_batch_window,
        max_requests=gen.poll_max_requests,
        lease=gen.poll_lease,
        takeover_grace=gen.poll_takeover_grace,
        deadlines=deadlines,
        progress_edit_interval=gen.progress_edit_interval,
    )
    return generation, poller
