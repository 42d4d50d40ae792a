"""Chat routes of the fake CometAPI: ``/v1/chat/completions`` (SSE or not) and the model lists."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.fakes.cometapi_common import ChatScript, CometBase, _body, _Failure, _json


class ChatRoutes(CometBase):
    """``GET /v1/models``, ``GET /api/models`` and ``POST /v1/chat/completions``."""

    # -- chat --------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 1626777600, "owned_by": "custom"}
            for m in self.models
        ]
        return _json({"success": True, "data": data})

    async def _catalog(self, request: web.Request) -> web.Response:
        data = [
            {
                "id": m,
                "provider": "Fake",
                "model_type": "text",
                "features": ["text-to-text"],
                "pricing": {"currency": "USD / M Tokens", "input": 0.1, "output": 0.4},
            }
            for m in self.models
        ]
        return _json({"success": True, "page": 0, "page_size": 0, "total": len(data), "data": data})

    def next_chat_script(self, body: dict[str, Any]) -> ChatScript:
        """The script for a chat request whose JSON is ``body``: the next queued one (FIFO),
        else the echo. A subclass may choose per request instead (``bench.streaming`` answers
        each chat with its own script)."""
        return self.chat_scripts.popleft() if self.chat_scripts else ChatScript()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = _body(request)
        script = self.next_chat_script(body)
        model = body.get("model")
        if not model:
            script = ChatScript(status=400, message="model name is required")
        elif model not in self.models:
            message = f"No available channel for model {model} under current group default"
            script = ChatScript(status=503, message=message)
        if script.hang:
            await self._hang(request)
            return web.Response(status=504)
        if script.status != 200:
            failure = _Failure(
                1, script.status, "", script.retry_after, script.message, script.code, False
            )
            return self._error_response(request.path, failure)
        messages = body.get("messages") or []
        tokens = script.tokens if script.tokens is not None else _echo(messages)
        prompt_tokens = sum(len(message_text(m).split()) for m in messages if isinstance(m, dict))
        prompt, completion = script.usage or (prompt_tokens, len(tokens) + len(script.reasoning))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": len(script.reasoning)},
        }
        base = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "created": int(time.time()),
            "model": script.model or model,
        }
        if not body.get("stream"):
            if script.cut_after is not None and request.transport is not None:
                request.transport.close()
                return web.Response(status=500)
            answer = {"role": "assistant", "content": "".join(tokens)}
            if script.reasoning:
                answer["reasoning_content"] = "".join(script.reasoning)
            choice = {"index": 0, "message": answer, "finish_reason": script.finish_reason}
            return _json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._chat_stream(
            request, script, tokens, base, usage if include_usage else None
        )

    async def _chat_stream(
        self,
        request: web.Request,
        script: ChatScript,
        tokens: list[str],
        base: dict[str, Any],
        usage: dict[str, Any] | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        nl = self.sse_newline
        base = {**base, "object": "chat.completion.chunk"}

        async def send(payload: Any) -> None:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError("client went away")
            data = (
                payload
                if isinstance(payload, str)
                else json.dumps(payload, ensure_ascii=script.ascii_json)
            )
            await response.write(f"data: {data}{nl}{nl}".encode())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        try:
            await response.write(f": keep-alive{nl}{nl}".encode())
            await send(chunk({"role": "assistant", "content": ""}))
            for piece in script.reasoning:
                await send(chunk({"reasoning_content": piece}))
            for index in range(len(tokens) + 1):
                if index == script.cut_after and request.transport is not None:
                    request.transport.close()  # chunked body left incomplete
                    return response
                if index == script.hang_after:
                    await self._hang(request)
                    return response
                if index == script.keepalive_after:
                    while not self._closing.is_set():
                        await response.write(f": keep-alive{nl}{nl}".encode())
                        await send(chunk({"content": ""}))
                        await asyncio.sleep(script.keepalive_every)
                    return response
                if index == script.error_mid:
                    message = (
                        f"{script.message or 'upstream error'} (request id: {self._request_id()})"
                    )
                    await send(
                        {
                            "error": {
                                "message": message,
                                "type": "upstream_error",
                                "code": script.code,
                            }
                        }
                    )
                    await response.write_eof()
                    return response
                if index == len(tokens):
                    break
                if script.delay:
                    await asyncio.sleep(script.delay)
                await send(chunk({"content": tokens[index]}))
            await send(chunk({}, script.finish_reason))
            if usage is not None:
                await send({**base, "choices": [], "usage": usage})
            if not script.omit_done:
                await send("[DONE]")
            await response.write_eof()
        except ConnectionError:
            self._saw_disconnect()
        return response


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text (text parts joined, images counted), as the fake reads it."""
    content = message.get("content")
    if isinstance(content, list):
        texts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        ]
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
        return " ".join(texts) + (f" [+{images} image]" if images else "")
    return str(content or "")


def _echo(messages: list[Any]) -> list[str]:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = message_text(users[-1]) if users else ""
    return re.findall(r"\S+\s*", f"Echo: {text}")
