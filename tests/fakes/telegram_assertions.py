"""Assertion helpers for ``FakeTelegram``: recorded calls and messages, and waits on conditions
that are re-checked after every call and injection (no fixed sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_base import T, TelegramBase
from tests.fakes.telegram_state import Call, CallbackRecord, StoredMessage
from tests.fakes.telegram_wire import scope_key


class AssertionsMixin(TelegramBase):
    """Queries over what the bot did, and ``wait_for*`` helpers."""

    # -- assertions --------------------------------------------------------------------------------

    def calls(
        self,
        method: str | None = None,
        chat_id: int | str | None = None,
        *,
        ok: bool | None = None,
    ) -> list[Call]:
        """Recorded calls in order, filtered by method (case-insensitive), chat and outcome."""
        out = []
        for call in self._calls:
            if method is not None and call.method.lower() != method.lower():
                continue
            if chat_id is not None and call.chat_id != chat_id:
                continue
            if ok is not None and call.ok != ok:
                continue
            out.append(call)
        return out

    def timeline(self, chat_id: int | str) -> list[Call]:
        """Every call made to ``chat_id`` (time from the fake's clock, method, params, status)."""
        return self.calls(chat_id=chat_id)

    def messages(
        self, chat_id: int | str, *, include_user: bool = False, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Messages in ``chat_id`` in id order: by default the bot's own, not deleted."""
        return [
            m
            for m in self._messages.get(chat_id, {}).values()
            if (include_user or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def texts(self, chat_id: int | str) -> list[str | None]:
        """Current text (or caption) of each bot message in ``chat_id``."""
        return [m.content for m in self.messages(chat_id)]

    def last_message(self, chat_id: int | str) -> StoredMessage | None:
        msgs = self.messages(chat_id)
        return msgs[-1] if msgs else None

    def callback(self, query_id: str) -> CallbackRecord:
        return self.callbacks[query_id]

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]] | None:
        """Commands set with setMyCommands for that scope/language (None when never set)."""
        return self.commands.get((scope_key(scope), language_code))

    def violation_calls(self) -> list[Call]:
        return [c for c in self._calls if c.violation]

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        message: str | None = None,
    ) -> T:
        """Wait until ``predicate()`` is truthy (re-checked after every call and injection).

        Returns the predicate's value; raises ``AssertionError`` after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            value = predicate()
            if value:
                return value
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(self._describe_timeout(message or "condition", timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    async def wait_for_call(
        self,
        method: str,
        chat_id: int | str | None = None,
        *,
        count: int = 1,
        ok: bool | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Call:
        """Wait until ``count`` matching calls were answered; returns the ``count``-th."""

        def done() -> Call | None:
            calls = [c for c in self.calls(method, chat_id, ok=ok) if c.status != 0]
            return calls[count - 1] if len(calls) >= count else None

        return await self.wait_for(done, timeout, message=f"{count} x {method} to {chat_id}")

    async def wait_for_message(
        self,
        chat_id: int | str,
        predicate: Callable[[StoredMessage], bool] | str | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> StoredMessage:
        """Wait for a bot message in ``chat_id`` matching ``predicate`` (or containing a string)."""
        check: Callable[[StoredMessage], bool]
        if isinstance(predicate, str):
            needle = predicate

            def check(m: StoredMessage) -> bool:
                return needle in (m.content or "")
        elif predicate is None:

            def check(m: StoredMessage) -> bool:
                return True
        else:
            check = predicate

        def found() -> StoredMessage | None:
            return next((m for m in self.messages(chat_id) if check(m)), None)

        return await self.wait_for(found, timeout, message=f"bot message in {chat_id}")

    async def wait_idle(
        self,
        quiet: float = 0.1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until every injected update was fetched, no request (other than a long poll) is
        in flight and nothing happened for ``quiet`` seconds. A heuristic; prefer ``wait_for``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._changed
            now = loop.time()
            undelivered = any(u["update_id"] > self._delivered_upto for u in self._updates)
            busy = self._inflight > 0 or undelivered
            quiet_left = self._activity_at + quiet - now
            if not busy and quiet_left <= 0:
                return
            left = deadline - now
            if left <= 0:
                raise AssertionError(self._describe_timeout("idle", timeout))
            wait = left if busy else min(left, quiet_left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(wait, 0.001))

    def _describe_timeout(self, what: str, timeout: float) -> str:
        recent = ", ".join(f"{c.method}({c.chat_id})->{c.status}" for c in self._calls[-10:])
        return f"timed out after {timeout}s waiting for {what}; last calls: [{recent}]"
