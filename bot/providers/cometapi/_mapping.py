"""HTTP answers and transport failures -> :mod:`errors` (private to the client).

CometAPI speaks four error dialects on one host (OpenAI ``{"error": {...}}``,
mj-proxy ``{"description", "type", "code"}``, Suno ``{"code": str, "message"}``,
Kling ``{"code": int, "message"}``) and answers a wrong base URL with a website.
Everything echoed by the server is redacted before it reaches an error.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.providers.cometapi.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CometAPIError,
    WrongBaseURLError,
    extract_request_id,
    redact,
    status_error,
)

EXCERPT = 500
"""How much of an error body an :class:`APIStatusError` keeps for logs."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def check_response(
    response: httpx.Response,
    *,
    method: str,
    path: str,
    base_url: str,
    secret: str,
) -> CometAPIError | None:
    """None for a usable 2xx answer; otherwise the error it stands for (body consumed)."""
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if 200 <= status < 300:
        # A streamed answer is judged by its header alone: its body is the stream.
        looks_html = "text/html" in content_type or (
            response.is_stream_consumed and response.content.lstrip()[:1] == b"<"
        )
        if not looks_html:
            return None
    await response.aread()
    await response.aclose()
    text = redact(response.text, secret)
    # A 5xx HTML page is a CDN error page (an outage), not a website at the wrong URL.
    if 300 <= status < 400 or (
        status < 500 and ("text/html" in content_type or text.lstrip()[:1] == "<")
    ):
        return wrong_base_url(response, method=method, path=path, base_url=base_url)
    return _status_error(response, text, secret)


def wrong_base_url(
    response: httpx.Response, *, method: str, path: str, base_url: str
) -> WrongBaseURLError:
    """The error for an HTML page or redirect where the API should be."""
    status = response.status_code
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("location", ""))
        what = f"a redirect (HTTP {status} to {target.scheme}://{target.netloc}{target.path})"
    else:
        what = f"an HTML page (HTTP {status})"
    message = (
        f"{base_url} answered {method} {path} with {what}, not the API. "
        "base_url is probably wrong: set it to the API host, e.g. https://api.cometapi.com "
        "(without /v1; the client adds the paths itself)."
    )
    return WrongBaseURLError(message, base_url=base_url, status_code=status)


def transport_error(
    exc: httpx.TransportError, method: str, path: str, secret: str
) -> APIConnectionError:
    """An httpx transport failure as :class:`APIConnectionError` / :class:`APITimeoutError`."""
    detail = redact(f"{type(exc).__name__}: {exc}".rstrip(": "), secret)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {path} timed out ({detail})")
    return APIConnectionError(f"{method} {path} failed: {detail}")


def _status_error(response: httpx.Response, text: str, secret: str) -> APIStatusError:
    try:
        body: Any = response.json() if text else None
    except ValueError:
        body = None
    message, code, error_type = _error_fields(body, text, response.reason_phrase)
    message = redact(message, secret)
    request_id = (
        extract_request_id(message)
        or response.headers.get("x-oneapi-request-id")
        or response.headers.get("x-request-id")
        or (str(body["request_id"]) if isinstance(body, dict) and body.get("request_id") else None)
    )
    return status_error(
        response.status_code,
        message,
        code=code,
        error_type=error_type,
        body=text[:EXCERPT],
        request_id=request_id,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def _error_fields(body: Any, text: str, reason: str) -> tuple[str, str | int | None, str | None]:
    """(message, code, type) from any of the four error dialects."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # OpenAI / auth middleware
            return str(error.get("message") or ""), error.get("code"), error.get("type")
        if isinstance(error, str) and error:
            return error, body.get("code"), None
        if "description" in body:  # mj-proxy {"description", "type": "upstream_error", "code"}
            return str(body.get("description") or "").strip(), body.get("code"), body.get("type")
        if "message" in body or "code" in body:  # Suno (code str) / Kling (code int)
            return str(body.get("message") or ""), body.get("code"), None
    return text.strip()[:200] or reason, None, None
