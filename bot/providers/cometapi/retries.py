"""When a failed call is retried, and after how long (cometapi.md §5).

* retried: 429, 500 (unless ``error.code == "invalid_request"``), 503, 504, 524,
  timeouts and connection errors, with exponential backoff plus jitter, or the
  server's Retry-After when it is at most :data:`MAX_RETRY_AFTER`;
* never retried: other 4xx, HTML pages and redirects (a wrong base URL);
* paid submits (Midjourney submit/*, Suno submit/*, Kling create) are retried
  only when the request cannot have reached the server (connect errors) or on
  429. After a timeout, a broken connection, 504 or 524 the task may exist
  upstream, so they raise :class:`SubmitUncertainError` instead.

:meth:`~bot.providers.cometapi.client.CometAPI._send` asks :func:`next_delay` after every
failed attempt; it is the one place that retries.
"""

from __future__ import annotations

import logging
import random
from typing import Literal

from bot.providers.cometapi.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CometAPIError,
    SubmitUncertainError,
)

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "next_delay",
    "retry_delay",
]

log = logging.getLogger(__name__)

MAX_RETRIES = 4
"""Retries after the first attempt: five attempts in all, as CometAPI's guide does."""
INITIAL_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0
MAX_RETRY_AFTER = 60.0
"""A longer Retry-After is not waited out; the RateLimitError goes to the caller."""

_RETRY_STATUSES = frozenset({429, 500, 503, 504, 524})
# The gateway itself never retries these because the upstream may still be working
# (cometapi.md §5.3), so for a paid submit they mean "maybe created".
_UNCERTAIN_STATUSES = frozenset({504, 524})

_Verdict = Literal["retry", "stop", "uncertain"]


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    The server's ``retry_after`` wins; otherwise exponential backoff from
    :data:`INITIAL_RETRY_DELAY`, capped at :data:`MAX_RETRY_DELAY`, plus up to
    25 % jitter so that many clients do not retry in lockstep.
    """
    if retry_after is not None:
        return max(0.0, retry_after)
    base = min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2.0**attempt)
    return min(MAX_RETRY_DELAY, base + random.uniform(0.0, base / 4))


def next_delay(
    error: CometAPIError,
    attempt: int,
    method: str,
    path: str,
    *,
    max_retries: int,
    paid: bool,
    reached: bool,
) -> float | None:
    """Seconds to wait before retrying, or None to raise ``error`` now.

    ``reached``: the request may have arrived (anything but a failure to connect).
    Raises :class:`SubmitUncertainError` (``from error``) for a paid submit whose outcome
    is unclear.
    """
    verdict, reason = _classify(error, paid=paid, reached=reached)
    if verdict == "uncertain":
        log.debug("Not resubmitting paid %s %s: %s", method, path, reason)
        raise SubmitUncertainError(
            f"{method} {path}: {reason}; the task may have been created upstream, "
            "check before submitting again",
            path=path,
        ) from error
    if verdict == "stop":
        log.debug("Not retrying %s %s: %s", method, path, reason)
        return None
    if attempt >= max_retries:
        log.debug("Giving up on %s %s after %d retries: %s", method, path, attempt, reason)
        return None
    retry_after = error.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None and retry_after > MAX_RETRY_AFTER:
        log.debug("Not retrying %s %s: Retry-After %.0fs is too long", method, path, retry_after)
        return None
    delay = retry_delay(attempt, retry_after)
    log.debug(
        "Retrying %s %s in %.2fs (retry %d of %d): %s",
        method,
        path,
        delay,
        attempt + 1,
        max_retries,
        reason,
    )
    return delay


def _classify(error: CometAPIError, *, paid: bool, reached: bool) -> tuple[_Verdict, str]:
    if isinstance(error, APIStatusError):
        status = error.status_code
        if status == 429:
            return "retry", "HTTP 429"
        if paid and status in _UNCERTAIN_STATUSES:
            return "uncertain", f"HTTP {status}"
        if paid:
            return "stop", f"HTTP {status} on a paid submit"
        if status == 500 and error.code == "invalid_request":
            return "stop", "HTTP 500 invalid_request is a malformed request"
        if status in _RETRY_STATUSES:
            return "retry", f"HTTP {status}"
        return "stop", f"HTTP {status} is not retryable"
    if isinstance(error, APIConnectionError):
        kind = "timed out" if isinstance(error, APITimeoutError) else "connection failed"
        if paid and reached:
            return "uncertain", kind
        return "retry", kind
    return "stop", type(error).__name__
