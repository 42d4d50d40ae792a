"""Receiving updates from Telegram: long polling, or a webhook Telegram posts to.

Apart from start-up (getMe, the command menu, the handlers) because receiving is a role: with
several processes only one receives, and a standby starts receiving when the active one dies,
while every process can send all along.

Both modes keep the updates Telegram still holds (``drop_pending_updates`` is never true), so
whoever starts receiving answers what arrived while nobody did. Stopping a webhook closes this
process's server but leaves the webhook registered: a standby that takes over sets the same URL
again, and Telegram holds the updates (retrying) until someone answers there.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Updater

from bot.config import TelegramSettings, split_listen

log = logging.getLogger(__name__)

# The updates the bot handles; Telegram keeps this list per bot, for polling and webhook alike.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


class Receiver:
    """Starts and stops one :class:`~telegram.ext.Updater` in the configured mode."""

    def __init__(self, updater: Updater, settings: TelegramSettings) -> None:
        self._updater = updater
        self._settings = settings

    @property
    def running(self) -> bool:
        return self._updater.running

    @property
    def mode(self) -> str:
        return "webhook" if self._settings.webhook else "polling"

    async def start(self) -> None:
        """Start receiving; nothing when already receiving."""
        if self._updater.running:
            return
        settings = self._settings
        if not settings.webhook:
            # PTB calls deleteWebhook first (without dropping anything): Telegram refuses
            # getUpdates with 409 while a webhook is set, e.g. one left by webhook mode.
            await self._updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, error_callback=self._polling_error
            )
            log.info("telegram: receiving updates by long polling")
            return
        host, port = split_listen(settings.webhook_listen)
        # setWebhook (url, secret, allowed updates), then the server on host:port; PTB's
        # handler answers 403 to a request without the right X-Telegram-Bot-Api-Secret-Token.
        await self._updater.start_webhook(
            listen=host,
            port=port,
            url_path=settings.webhook_path,
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
            drop_pending_updates=False,
        )
        log.info("telegram: receiving updates by webhook, listening on %s", settings.webhook_listen)

    async def stop(self) -> None:
        """Stop receiving (the webhook stays registered; see the module's docstring)."""
        if self._updater.running:
            await self._updater.stop()
            log.info("telegram: stopped receiving updates (%s)", self.mode)

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("telegram: polling error: %s", exc.message)
