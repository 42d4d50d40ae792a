"""Why a generation failed, in the sentences users see: refused submits and failed tasks.

Failure texts from the providers are localized and never branched on, with one exception:
Midjourney and Kling report content moderation only in their free-text reason, so a few
keywords decide between "moderation blocked it" and "could not finish it" (the reason is
shown either way).
"""

from __future__ import annotations

from typing import Final

from bot.core import errors as core
from bot.core.generation.records import Provider
from bot.core.generation.views import excerpt, provider_name
from bot.providers import cometapi as sdk

__all__ = ["is_moderation", "task_failure", "to_generation_error"]

_MODERATION: Final = (
    "filter",
    "moderat",
    "inappropriate",
    "nsfw",
    "safety",
    "sensitive",
    "violat",
    "敏感",
    "违规",
    "审核",
)


def is_moderation(reason: str) -> bool:
    """Whether a provider's free-text failure reason speaks of content moderation."""
    lowered = reason.lower()
    return any(word in lowered for word in _MODERATION)


def task_failure(provider: Provider, what: str, reason: str) -> str:
    """The sentence for a task that failed upstream (``what``: image, song, video)."""
    name = provider_name(provider)
    if provider is not Provider.MIDJOURNEY and is_moderation(reason):
        return f"{name}'s content moderation refused this {what}. Please try a different prompt."
    detail = f" (it said: {excerpt(reason, 200)})" if reason.strip() else ""
    return f"{name} could not finish this {what}{detail}. Please try again."


def to_generation_error(
    exc: sdk.CometAPIError, provider: Provider, kind: str
) -> core.GenerationError:
    """The user's view of a failed submit (the caller raises it ``from exc``)."""
    name = provider_name(provider)
    rid = exc.request_id
    match exc:
        case sdk.SubmitUncertainError():
            return core.SubmitUncertain(request_id=rid)
        case sdk.BannedPromptError():
            word = f" (“{exc.banned_word}”)" if exc.banned_word else ""
            return core.PromptRefused(
                f"Midjourney refused the prompt: it contains a banned word{word}. "
                "Please rephrase it and try again.",
                request_id=rid,
            )
        case sdk.SubmitValidationError() if kind == "action":
            return core.PromptRefused(
                "Midjourney refused this button; the image may have expired "
                f"(it said: {excerpt(exc.description, 200)}).",
                request_id=rid,
            )
        case sdk.SubmitValidationError():
            return core.PromptRefused(
                f"Midjourney refused the request (it said: {excerpt(exc.description, 200)}).",
                request_id=rid,
            )
        case sdk.QueueFullError() | sdk.NoAccountAvailableError() | sdk.RateLimitError():
            return core.GenerationBusy(
                f"{name} is busy right now. Please try again in a minute.", request_id=rid
            )
        case sdk.AuthenticationError() | sdk.PermissionDeniedError():
            return core.GenerationError(
                "The bot's CometAPI key was refused, so it cannot generate. "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case sdk.WrongBaseURLError():
            return core.GenerationError(
                "The bot cannot reach CometAPI (its base URL looks wrong). "
                "Please tell the bot's operator.",
                request_id=rid,
            )
        case sdk.SunoAPIError() | sdk.KlingAPIError() | sdk.BadRequestError():
            return core.PromptRefused(f"{name} refused this request.", request_id=rid)
        case _:
            return core.GenerationError(
                f"{name} is having trouble right now. Please try again later.", request_id=rid
            )
