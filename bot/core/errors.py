"""Errors the core raises or understands.

::

    BotError
    ├── UserFacingError          carries the sentence a user sees; rendered by one hook per platform
    │   ├── ModelError           the chat model failed (converted from the provider's errors)
    │   │   ├── ModelAuthError       key missing, invalid or not allowed
    │   │   ├── ModelRateLimited     upstream busy (429) after the client's own retries
    │   │   ├── ModelUnavailable     5xx, bad gateway, wrong base URL
    │   │   ├── ModelTimeout         no answer in time
    │   │   ├── ModelBadRequest      the request was refused as malformed (400/413/unknown model)
    │   │   └── StreamCut            the stream ended without its end marker
    │   └── GenerationError      a generation could not be submitted (from the provider's errors)
    │       ├── PromptRefused        the provider refused the prompt (banned word, bad parameter)
    │       ├── GenerationBusy       queue full or rate limited: try again later
    │       └── SubmitUncertain      a paid submit got no clear answer: never resubmitted blindly
    ├── UpstreamError            polling or a download failed (logged, not shown); .retry_after,
    │   │                            .reason (a word for logs and metrics)
    │   ├── MediaTooLarge            a result is bigger than allowed: send a link instead
    │   └── ResultUnavailable        a result's URL cannot give the file (404/410, or refused by
    │                                the download rules): waiting long will not help
    └── SurfaceError             a platform refused or failed an outgoing call
        ├── RetryLater               429: nothing may go to that chat for ``retry_after`` seconds
        ├── MessageGone              the message to edit no longer exists
        └── PlatformUnavailable      a transient failure (network, 5xx): try again later
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the core raises."""


class UserFacingError(BotError):
    """An expected failure whose message is safe and meant for the user.

    ``quiet`` asks the platform to say nothing (e.g. a refusal repeated within a minute).
    """

    quiet: bool = False

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
    """The platform said 429: send nothing to that chat for ``retry_after`` seconds.

    ``everywhere``: the limit is the bot's as a whole (e.g. Discord's global limit), so
    nothing may go to any chat meanwhile.
    """

    def __init__(self, retry_after: float, *, everywhere: bool = False) -> None:
        scope = "everywhere " if everywhere else ""
        super().__init__(f"rate limited {scope}for {retry_after:.1f}s")
        self.retry_after = retry_after
        self.everywhere = everywhere


class MessageGone(SurfaceError):
    """The message to edit was deleted or can no longer be edited."""


class GenerationError(UserFacingError):
    """A generation could not be submitted; the message says why in plain words."""

    default_message = "The generation service could not take this request. Please try again."

    def __init__(self, message: str | None = None, *, request_id: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.request_id = request_id


class PromptRefused(GenerationError):
    """The provider refused this prompt or its parameters; retrying it unchanged cannot help."""

    default_message = "The prompt was refused. Please rephrase it and try again."


class GenerationBusy(GenerationError):
    """The provider is saturated (queue full, rate limited)."""

    default_message = "The generation service is busy right now. Please try again in a minute."


class SubmitUncertain(GenerationError):
    """A paid submit got no clear answer: the task may exist upstream (and be charged)."""

    default_message = (
        "I could not confirm that the request reached the generation service (no clear "
        "answer in time). It may still have been accepted; to avoid paying twice I did not "
        "send it again. Please check back later or try again."
    )


class UpstreamError(BotError):
    """Polling or a download failed; the poller backs off and tries again.

    ``reason`` is one fixed word (``error``, ``timeout``, ``not_found``, ``refused``) for
    logs and metric labels.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, reason: str = "error"
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class MediaTooLarge(UpstreamError):
    """A result is larger than the limit given to the download."""


class ResultUnavailable(UpstreamError):
    """A result's URL cannot give the file: it answered 404/410, or it (or a redirect) is
    refused by the download rules. Retried once soon, then reported to the user."""


class PlatformUnavailable(SurfaceError):
    """A transient platform failure (network error, 5xx, timeout): try again later."""


class DocumentUnreadable(BotError):
    """A file sent with a question cannot be read (a damaged or encrypted PDF); the chat
    turns it into one sentence naming the file."""
