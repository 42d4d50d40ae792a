"""Errors the core raises or understands.

::

    BotError
    ├── UserFacingError          carries the sentence a user sees; rendered by one hook per platform
    │   └── ModelError           the chat model failed (converted from the provider's errors)
    │       ├── ModelAuthError       key missing, invalid or not allowed
    │       ├── ModelRateLimited     upstream busy (429) after the client's own retries
    │       ├── ModelUnavailable     5xx, bad gateway, wrong base URL
    │       ├── ModelTimeout         no answer in time
    │       ├── ModelBadRequest      the request was refused as malformed (400/413/unknown model)
    │       └── StreamCut            the stream ended without its end marker
    └── SurfaceError             a platform refused or failed an outgoing call
        ├── RetryLater               429: nothing may go to that chat for ``retry_after`` seconds
        └── MessageGone              the message to edit no longer exists
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the core raises."""


class UserFacingError(BotError):
    """An expected failure whose message is safe and meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelError(UserFacingError):
    default_message = "The model could not answer right now. Please try again."

    def __init__(self, message: str | None = None, *, request_id: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.request_id = request_id


class ModelAuthError(ModelError):
    default_message = (
        "The bot's CometAPI key was refused, so it cannot answer. Please tell the bot's operator."
    )


class ModelRateLimited(ModelError):
    default_message = "The model is busy right now. Please try again in a minute."


class ModelUnavailable(ModelError):
    default_message = "The model service is having trouble. Please try again later."


class ModelTimeout(ModelError):
    default_message = "The model took too long to answer. Please try again."


class ModelBadRequest(ModelError):
    default_message = "The model refused this request."


class StreamCut(ModelError):
    default_message = "The answer was cut off upstream."


class SurfaceError(BotError):
    """A platform call failed in a way the core should know about."""


class RetryLater(SurfaceError):
    """The platform said 429: send nothing to that chat for ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.1f}s")
        self.retry_after = retry_after


class MessageGone(SurfaceError):
    """The message to edit was deleted or can no longer be edited."""
