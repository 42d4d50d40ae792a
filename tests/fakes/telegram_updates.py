"""Bot-level methods of ``FakeTelegram``: getMe, getUpdates long polling (with the 409 conflicts
for a superseded poll and under a webhook) and the bot command methods. The webhook methods are
in ``telegram_webhook``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from telegram.constants import PollingLimit

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_limits import ApiError, check_commands
from tests.fakes.telegram_state import Call
from tests.fakes.telegram_webhook import TERMINATED_BY_WEBHOOK, WEBHOOK_ACTIVE
from tests.fakes.telegram_wire import scope_key, update_kind


class UpdateMethods(TelegramBase):
    """getMe, getUpdates and set/get/deleteMyCommands."""

    async def _get_me(self, params: dict[str, Any], call: Call) -> Any:
        return dict(self.bot_user)

    async def _get_updates(self, params: dict[str, Any], call: Call) -> Any:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE)
        offset = params.get("offset") or 0
        limit = params.get("limit") or int(PollingLimit.MAX_LIMIT)
        limit = max(int(PollingLimit.MIN_LIMIT), min(int(limit), int(PollingLimit.MAX_LIMIT)))
        timeout = max(0, int(params.get("timeout") or 0))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = list(allowed) or None
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            if self.webhook is not None:
                raise ApiError(409, TERMINATED_BY_WEBHOOK)
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one "
                    "bot instance is running",
                )
            if self.allowed_updates:
                self._updates = [u for u in self._updates if update_kind(u) in self.allowed_updates]
            batch = self._updates[:limit]
            if batch or self._closing or loop.time() >= deadline:
                if batch:
                    self._delivered_upto = max(self._delivered_upto, batch[-1]["update_id"])
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), deadline - loop.time())

    async def _set_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        commands = check_commands(params.get("commands"))
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands[key] = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return self.commands.get(key, [])

    async def _delete_my_commands(self, params: dict[str, Any], call: Call) -> Any:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands.pop(key, None)
        return True
