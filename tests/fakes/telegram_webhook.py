"""Webhooks in ``FakeTelegram``: setWebhook, deleteWebhook, getWebhookInfo as Telegram answers
them, and :meth:`WebhookMixin.deliver_webhook`, the test's stand-in for Telegram posting an
update to the registered URL.

As Telegram: while a webhook is set, getUpdates is refused with 409 (and a long poll parked when
it is set ends with 409); an update stays pending until the webhook answered it with a 2xx; the
secret token goes in the ``X-Telegram-Bot-Api-Secret-Token`` header. One deviation: Telegram
accepts only https URLs on ports 443, 80, 88 and 8443, and can never reach a loopback address;
the fake also accepts ``http://`` to a loopback host on any port, which is all a test can serve.
"""

from __future__ import annotations

import ipaddress
import re
import time
from types import EllipsisType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_limits import bad_request
from tests.fakes.telegram_state import Call
from tests.fakes.telegram_wire import update_kind

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
TERMINATED_BY_WEBHOOK = "Conflict: terminated by setWebhook request"
_SECRET = re.compile(r"[A-Za-z0-9_-]*")
_PORTS = (443, 80, 88, 8443)
DELIVERY_TIMEOUT = 10.0  # seconds for the webhook to answer one post


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        raise bad_request("bad webhook: Failed to resolve host: Name or service not known") from exc
    if not host:
        raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
    if parts.scheme == "http" and _loopback(host):  # the documented deviation
        return
    if parts.scheme != "https":
        raise bad_request("bad webhook: HTTPS url must be provided for webhook")
    if (port or 443) not in _PORTS:
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


class WebhookMixin(TelegramBase):
    """setWebhook, deleteWebhook, getWebhookInfo and the delivery hook."""

    # -- Bot API methods ------------------------------------------------------------------------

    async def _set_webhook(self, params: dict[str, Any], call: Call) -> Any:
        url = str(params.get("url") or "")
        if not url:  # Telegram: an empty url removes the webhook
            return await self._delete_webhook(params, call)
        _check_url(url)
        secret = str(params.get("secret_token") or "")
        if not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):  # one list per bot, for polling and webhook alike
            self.allowed_updates = list(allowed) or None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": int(params.get("max_connections") or 40),
        }
        self.webhook_error = None
        self._bump()  # a parked getUpdates ends with 409
        return True

    async def _delete_webhook(self, params: dict[str, Any], call: Call) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = None
        self.webhook_error = None
        return True

    async def _get_webhook_info(self, params: dict[str, Any], call: Call) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook["max_connections"]
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
        if self.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_error
        return info

    # -- the test's side ------------------------------------------------------------------------

    async def deliver_webhook(
        self,
        update: dict[str, Any] | None = None,
        *,
        secret: str | EllipsisType | None = ...,
    ) -> int:
        """POST an update to the registered webhook as Telegram does; return the HTTP status.

        Without ``update``, the oldest pending update (from ``inject_*``) goes, and it is
        dropped from the queue only when the answer is a 2xx (Telegram retries the rest).
        ``secret``: the header sent; the registered secret token by default, ``None`` for no
        header. A webhook nobody listens on raises :class:`aiohttp.ClientConnectionError` (and
        the update stays pending, as Telegram keeps it).
        """
        if self.webhook is None:
            raise RuntimeError("no webhook is set")
        pending = update is None
        if update is None:
            if self.allowed_updates:
                self._updates = [u for u in self._updates if update_kind(u) in self.allowed_updates]
            if not self._updates:
                raise RuntimeError("no pending update to deliver")
            update = self._updates[0]
        token = self.webhook["secret_token"] if isinstance(secret, EllipsisType) else secret
        headers = {SECRET_HEADER: token} if token else {}
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
                ) as session,
                session.post(self.webhook["url"], json=update, headers=headers) as response,
            ):
                await response.read()
                status = response.status
        except aiohttp.ClientConnectionError as exc:
            self.webhook_error = (int(time.time()), f"Connection refused: {exc}")
            raise
        if 200 <= status < 300:
            if pending and self._updates and self._updates[0] is update:
                self._updates.pop(0)
                self._delivered_upto = max(self._delivered_upto, int(update["update_id"]))
        else:
            self.webhook_error = (int(time.time()), f"Wrong response from the webhook: {status}")
        self._touch()
        return status
