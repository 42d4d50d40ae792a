"""HTTP plumbing of ``FakeTelegram``: the ``/bot<token>/<method>`` dispatcher (call recording,
error answers, in-flight tracking), parameter decoding and the file download route."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_TYPE

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_limits import ApiError, bad_request
from tests.fakes.telegram_state import Call, FilePart
from tests.fakes.telegram_wire import normalize_params


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


class HttpMixin(TelegramBase):
    """Routes requests to the method handlers in ``_handlers`` and records every ``Call``."""

    # -- HTTP plumbing ---------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        if token != self.token:
            self._calls.append(
                Call(len(self._calls), self.clock(), raw_method, None, {}, 401, "Unauthorized")
            )
            self._bump()
            return _json_response(ApiError(401, "Unauthorized").payload(), 401)
        name, handler = self._handlers.get(raw_method.lower(), (raw_method, None))
        call = Call(len(self._calls), self.clock(), name, None, {}, status=0)
        self._calls.append(call)
        self._bump()
        polling = name == "getUpdates"
        if not polling:
            self._inflight += 1
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            call.params = await self._read_params(request)
            chat_id = call.params.get("chat_id")
            call.chat_id = chat_id if isinstance(chat_id, int | str) else None
            result = await handler(call.params, call)
            delay = self.slow_answers.pop(name.lower(), None)
            if delay is not None:  # done (the message is there), but the answer is late
                await asyncio.sleep(delay)
        except ApiError as exc:
            self._record_error(call, exc)
            return _json_response(exc.payload(), exc.status)
        else:
            call.status = 200
            call.result = result
            for observe in self.call_observers:
                observe(call)
            return _json_response({"ok": True, "result": result})
        finally:
            if not polling:
                self._inflight -= 1
                self._touch()
            else:
                self._bump()

    def _record_error(self, call: Call, exc: ApiError) -> None:
        call.status = exc.status
        call.description = exc.description
        if exc.status == 429:
            retry = (exc.parameters or {}).get("retry_after")
            call.retry_after = int(retry) if retry is not None else None
            self.total_429s += 1
            if call.chat_id is not None:
                self.chat_429s[call.chat_id] += 1

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _json_response(ApiError(401, "Unauthorized").payload(), 401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return _json_response(ApiError(404, "Not Found").payload(), 404)
        return web.Response(body=stored.data, content_type=stored.content_type)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read(decode=False)
                if part.filename:
                    params[name] = FilePart(
                        field=name,
                        filename=part.filename,
                        data=bytes(data),
                        content_type=part.headers.get(CONTENT_TYPE, "application/octet-stream"),
                    )
                else:
                    params[name] = bytes(data).decode("utf-8")
        elif ctype == "application/json":
            body = await request.text()
            if body.strip():
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise bad_request("can't parse JSON body") from exc
                if not isinstance(decoded, dict):
                    raise bad_request("JSON body must be an object")
                params.update(decoded)
        elif ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        return normalize_params(params)
