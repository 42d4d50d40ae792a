"""Every error the CometAPI client raises.

No httpx exception escapes the client: transport failures, HTTP statuses and the
task APIs' in-band failure codes are all translated into this tree (always with
``raise ... from exc``)::

    CometAPIError                      base; .message, .request_id
    ├── APIConnectionError             the server could not be reached or the connection broke
    │   └── APITimeoutError            connect / read / pool timeout
    │       └── DownloadTooSlowError   a download missed its deadline or minimum rate
    ├── WrongBaseURLError              an HTML page or a 3xx redirect: base_url is not the API
    ├── APIStatusError                 any other non-2xx answer; .status_code, .code, .body
    │   ├── BadRequestError            400: fix the request, never retried
    │   │   ├── RequestTooLargeError   413: prompt or attachments too big
    │   │   └── TaskNotFoundError      400 for an unknown task id (Midjourney, Suno)
    │   ├── AuthenticationError        401: key missing or invalid
    │   ├── PermissionDeniedError      403: key or group not allowed
    │   ├── NotFoundError              404: wrong path or model
    │   ├── RateLimitError             429: .retry_after (seconds) when the server said
    │   └── InternalServerError        5xx
    ├── APIResponseError               a 2xx answer the client could not understand
    │   └── DownloadTooLargeError      a download is bigger than its size cap
    ├── DownloadRefusedError           a download URL (or a redirect hop) breaks the rules:
    │                                  not http(s), a private/loopback/metadata address, ...
    ├── StreamError                    an ``error`` object arrived inside a chat stream
    │   └── StreamTruncatedError       the stream ended (or broke) before ``data: [DONE]``
    ├── SubmitUncertainError           a paid submit timed out or got 504/524: the task may
    │                                  exist upstream, so it must not be resubmitted blindly
    └── TaskAPIError                   a task API answered 2xx with a failure code; .code
        ├── MidjourneySubmitError      an mj-proxy submit code other than 1/21/22
        │   ├── NoAccountAvailableError   code 3  (retry later)
        │   ├── SubmitValidationError     code 4  (fix the request)
        │   ├── SystemFailureError        code 9  (retry with backoff)
        │   ├── QueueFullError            code 23 (retry later)
        │   └── BannedPromptError         code 24; .banned_word, .prompt_en
        ├── SunoAPIError               Suno envelope code other than "success"
        └── KlingAPIError              Kling envelope code other than 0

Messages never contain the API key: the client redacts it from anything the
server echoes back before building an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BannedPromptError",
    "CometAPIError",
    "DownloadRefusedError",
    "DownloadTooLargeError",
    "DownloadTooSlowError",
    "InternalServerError",
    "KlingAPIError",
    "MidjourneySubmitError",
    "NoAccountAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "RequestTooLargeError",
    "StreamError",
    "StreamTruncatedError",
    "SubmitUncertainError",
    "SubmitValidationError",
    "SunoAPIError",
    "SystemFailureError",
    "TaskAPIError",
    "TaskNotFoundError",
    "WrongBaseURLError",
]

_REQUEST_ID = re.compile(r"\(request id: ?([^)\s]+)\)")


def extract_request_id(message: str) -> str | None:
    """Return the id CometAPI embeds as ``(request id: ...)`` in error messages."""
    found = _REQUEST_ID.search(message)
    return found.group(1) if found else None


def redact(text: str, secret: str) -> str:
    """Replace every occurrence of ``secret`` in ``text``; servers sometimes echo keys."""
    return text.replace(secret, "***") if secret else text


class CometAPIError(Exception):
    """Base of every error the CometAPI client raises."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class APIConnectionError(CometAPIError):
    """The request could not be sent or its answer could not be read."""


class APITimeoutError(APIConnectionError):
    """No answer (or no next stream chunk) within the configured timeout."""


class DownloadTooSlowError(APITimeoutError):
    """A download missed its total deadline or fell below its minimum rate."""


class WrongBaseURLError(CometAPIError):
    """The configured base URL answered like a website (HTML or a redirect)."""

    def __init__(self, message: str, *, base_url: str, status_code: int) -> None:
        super().__init__(message)
        self.base_url = base_url
        self.status_code = status_code


class APIStatusError(CometAPIError):
    """A non-2xx answer.

    ``code`` is the body's error code (a string for OpenAI-style and Suno bodies,
    an int for Midjourney and Kling bodies, often empty); ``body`` is a short,
    redacted excerpt of the raw answer for logs.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | int | None = None,
        error_type: str | None = None,
        body: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.body = body
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the request was refused as malformed; retrying it cannot help."""


class RequestTooLargeError(BadRequestError):
    """413: the prompt or its attachments are too big."""


class TaskNotFoundError(BadRequestError):
    """The task id is unknown to this account (Midjourney and Suno answer 400)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the key or its group may not do this (or the model refused a field)."""


class NotFoundError(APIStatusError):
    """404: wrong path or unknown model."""


class RateLimitError(APIStatusError):
    """429: rate limited or the upstream group is saturated.

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """


class InternalServerError(APIStatusError):
    """5xx: the gateway or the provider behind it failed."""


class APIResponseError(CometAPIError):
    """A 2xx answer whose body is not the shape the API documents."""


class DownloadTooLargeError(APIResponseError):
    """A download is bigger than its cap (by its ``Content-Length`` or while reading)."""

    def __init__(self, message: str, *, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes


class DownloadRefusedError(CometAPIError):
    """A download URL or one of its redirect hops breaks the download rules (a scheme other
    than http/https, credentials in the URL, a loopback, private, link-local, multicast or
    cloud-metadata address, too many redirects); nothing was fetched from it."""


class StreamError(CometAPIError):
    """The server reported an error inside a chat stream."""

    def __init__(
        self,
        message: str,
        *,
        code: str | int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code
        self.error_type = error_type


class StreamTruncatedError(StreamError):
    """The stream ended or broke before ``data: [DONE]``: the answer may be incomplete."""


class SubmitUncertainError(CometAPIError):
    """A paid submit got no clear answer (timeout, dropped connection, 504 or 524).

    The gateway may have created (and charged for) the task anyway, so the
    caller must not resubmit blindly; correlate by ``state`` or
    ``external_task_id`` first. The original error is ``__cause__``.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class TaskAPIError(CometAPIError):
    """A task API answered 2xx but refused the request with a failure code."""

    retryable: ClassVar[bool] = False
    """Whether the same request may succeed later without changes."""

    def __init__(
        self, message: str, *, code: str | int | None, request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code


class MidjourneySubmitError(TaskAPIError):
    """A Midjourney submit returned a code other than 1 (ok), 21 (modal) or 22 (queued).

    ``description`` is localized server text (often Chinese): show it, never
    branch on it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None,
        description: str = "",
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.description = description
        self.properties: dict[str, Any] = dict(properties or {})


class NoAccountAvailableError(MidjourneySubmitError):
    """Code 3: no Midjourney account instance is available right now."""

    retryable = True


class SubmitValidationError(MidjourneySubmitError):
    """Code 4: a parameter was refused; ``description`` says which."""


class SystemFailureError(MidjourneySubmitError):
    """Code 9: the proxy failed internally."""

    retryable = True


class QueueFullError(MidjourneySubmitError):
    """Code 23: the queue is full; try again in 30 s or more."""

    retryable = True


class BannedPromptError(MidjourneySubmitError):
    """Code 24: the prompt contains a banned word; do not retry it."""

    @property
    def banned_word(self) -> str:
        """The offending word, when the server named it."""
        return str(self.properties.get("bannedWord") or "")

    @property
    def prompt_en(self) -> str:
        """The prompt as translated by the proxy, when present."""
        return str(self.properties.get("promptEn") or "")


class SunoAPIError(TaskAPIError):
    """The Suno envelope's ``code`` was not ``"success"``."""


class KlingAPIError(TaskAPIError):
    """The Kling envelope's ``code`` was not 0."""


_MJ_SUBMIT_CODES: dict[int, type[MidjourneySubmitError]] = {
    3: NoAccountAvailableError,
    4: SubmitValidationError,
    9: SystemFailureError,
    23: QueueFullError,
    24: BannedPromptError,
}


def midjourney_submit_error(
    code: int | None, description: str, properties: Mapping[str, Any] | None
) -> MidjourneySubmitError:
    """Build the error class that matches an mj-proxy submit code."""
    cls = _MJ_SUBMIT_CODES.get(code or 0, MidjourneySubmitError)
    message = f"Midjourney submit refused (code {code}): {description or 'no description'}"
    return cls(message, code=code, description=description, properties=properties)


def status_error(
    status_code: int,
    message: str,
    *,
    code: str | int | None = None,
    error_type: str | None = None,
    body: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the :class:`APIStatusError` subclass that matches ``status_code``."""
    cls: type[APIStatusError]
    if status_code == 400 and _is_task_not_found(code, message):
        cls = TaskNotFoundError
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = _BY_STATUS.get(status_code, APIStatusError)
    code_part = f" [{code}]" if code not in (None, "") else ""
    text = f"HTTP {status_code}{code_part}: {message or 'no error message'}"
    return cls(
        text,
        status_code=status_code,
        code=code,
        error_type=error_type,
        body=body,
        request_id=request_id,
        retry_after=retry_after,
    )


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


def _is_task_not_found(code: str | int | None, message: str) -> bool:
    # mj-proxy answers {"description": "task_no_found ", "code": 4}; Suno answers
    # {"code": "task_not_exist"}. Both are machine tokens, not localized text.
    return code == "task_not_exist" or message.strip().startswith("task_no_found")
