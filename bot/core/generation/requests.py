"""What the generation use cases share with the platforms: who asked (:class:`Origin`), the
settings (:class:`GenerationConfig`), the sentences users see, and Midjourney modal input."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bot.core.errors import UserFacingError
from bot.core.generation.prompts import PromptLimits, check_imagine
from bot.core.generation.records import Provider, Task
from bot.core.generation.views import headline
from bot.core.models import ConversationKey

__all__ = [
    "BROKEN",
    "DEAD_PARENT",
    "GONE",
    "MODAL_EXPIRED",
    "GenerationConfig",
    "OpenAdmission",
    "Origin",
    "modal_prompt",
    "modal_question",
]

GONE: Final = "This button is no longer available."
DEAD_PARENT: Final = (
    "That task failed or expired, so its buttons no longer work. Start a new one with /imagine."
)
MODAL_EXPIRED: Final = (
    "That request expired (Midjourney waits about half an hour for an answer). "
    "Press the button again."
)
BROKEN: Final = "Something went wrong while sending this request. Please try again."
_ZOOM = re.compile(r"(?:--zoom\s+)?([12](?:\.\d+)?)x?", re.IGNORECASE)
_OLD_ZOOM = re.compile(r"\s*--zoom\s+\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked, in which conversation, and which message the answers reply to."""

    key: ConversationKey
    user_id: str
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    limits: PromptLimits = dataclasses.field(default_factory=PromptLimits)
    deadlines: Mapping[Provider, float] = dataclasses.field(
        default_factory=lambda: {
            Provider.MIDJOURNEY: 1800.0,
            Provider.SUNO: 900.0,
            Provider.KLING: 1800.0,
        }
    )
    first_interval: float = 3.0
    suno_model: str = "chirp-v4"
    kling_model: str = "kling-v2-1"
    kling_duration: int = 5
    kling_aspect_ratio: str = "16:9"
    modal_timeout: float = 1500.0
    """How long a Midjourney modal waits for the user's answer (upstream drops it ~30 min)."""


class OpenAdmission:
    """The admission used when no limits are configured."""

    def recorded(self) -> None:
        return None

    async def refund(self) -> bool:
        return False


def modal_prompt(task: Task, text: str, limits: PromptLimits) -> str:
    """The prompt for ``/mj/submit/modal`` from the user's answer (Custom Zoom: a factor
    from 1 to 2 is added to the parent's prompt as ``--zoom``)."""
    text = " ".join(text.split())
    if task.request.get("modal") == "custom_zoom":
        match = _ZOOM.fullmatch(text)
        if match is not None:
            base = _OLD_ZOOM.sub("", str(task.request.get("prompt") or "")).strip()
            text = f"{base} --zoom {match[1]}".strip()
        elif "--zoom" not in text.lower():
            raise UserFacingError(
                "Reply with a zoom factor from 1 to 2 (e.g. 1.5), or a prompt ending in --zoom 1.5."
            )
    return check_imagine(text, limits)


def modal_question(task: Task) -> str:
    """The question a waiting task asks (answered by replying to it)."""
    if task.request.get("modal") == "custom_zoom":
        return (
            f"{headline(task)}\n🔍 Reply to this message with a zoom factor from 1 to 2 "
            "(e.g. 1.5), or with a whole prompt ending in --zoom 1.5."
        )
    return f"{headline(task)}\n✏️ Reply to this message with the prompt to use."
