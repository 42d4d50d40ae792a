"""The fake CometAPI's images routes (mixed into :class:`tests.fakes.cometapi.FakeCometAPI`):

* ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart, the
  picture as ``image``), answering ``{created, data: [{b64_json | url}]}`` like the real API:
  ``dall-e-3`` answers a ``url`` unless ``response_format`` is ``b64_json``, every other model
  ``b64_json``; ``images_answer`` forces one of them;
* a prompt with a word of ``images_refused_words`` gets the 400 content-policy refusal;
* ``GET /cdn/{name}`` serves the picture a ``url`` answer names (404 for other names).

Every call is recorded in :attr:`image_calls` (path, the fields, the uploaded file's name,
type and bytes for an edit).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web

from tests.fakes.cometapi_common import _JSON, _json, tiny_png

__all__ = ["ImageCall", "ImagesRoutes"]


@dataclass
class ImageCall:
    path: str
    fields: dict[str, str]
    filename: str = ""
    content_type: str = ""
    data: bytes = b""


class ImagesRoutes:
    """Route handlers for the images API (state lives on the fake)."""

    images_answer: str | None  # "b64_json" or "url": forces the answer's shape
    images_refused_words: set[str]  # a prompt with one of them gets the content-policy 400
    image_calls: list[ImageCall]
    picture: bytes  # what every answer draws
    _cdn: dict[str, bytes]

    def _images_state(self) -> None:
        self.images_answer = None
        self.images_refused_words = {"forbidden-subject"}
        self.image_calls = []
        self.picture = tiny_png((200, 30, 30))
        self._cdn = {}

    async def _images_generate(self, request: web.Request) -> web.Response:
        body = request[_JSON]
        if not isinstance(body, dict) or not body.get("prompt"):
            return _openai_error(400, "prompt is required", "invalid_request_error")
        fields = {key: str(value) for key, value in body.items()}
        self.image_calls.append(ImageCall(request.path, fields))
        return self._images_answer(request, fields)

    async def _images_edit(self, request: web.Request) -> web.Response:
        raw = await request.read()  # the middleware has read it already: parse the bytes
        header = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + raw)
        fields: dict[str, str] = {}
        call = ImageCall(request.path, fields)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if name == "image":
                call.filename = part.get_filename() or ""
                call.content_type = part.get_content_type()
                call.data = payload
            elif isinstance(name, str):
                fields[name] = payload.decode()
        self.image_calls.append(call)
        if not call.data or not fields.get("prompt"):
            return _openai_error(400, "image and prompt are required", "invalid_request_error")
        return self._images_answer(request, fields)

    def _images_answer(self, request: web.Request, fields: dict[str, Any]) -> web.Response:
        prompt = str(fields.get("prompt", "")).lower()
        if any(word in prompt for word in self.images_refused_words):
            return _openai_error(
                400,
                "Your request was rejected as a result of our safety system.",
                "content_policy_violation",
            )
        shape = self.images_answer or (
            "url"
            if fields.get("model") == "dall-e-3" and fields.get("response_format") != "b64_json"
            else "b64_json"
        )
        if shape == "url":
            name = f"img-{len(self._cdn) + 1}.png"
            self._cdn[name] = self.picture
            item = {"url": str(request.url.with_path(f"/cdn/{name}").with_query(None))}
        else:
            item = {"b64_json": base64.b64encode(self.picture).decode()}
        return _json({"created": int(time.time()), "data": [item]})

    async def _cdn_file(self, request: web.Request) -> web.Response:
        data = self._cdn.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="image/png")


def _openai_error(status: int, message: str, code: str) -> web.Response:
    return _json(
        {"error": {"message": message, "type": "invalid_request_error", "param": "", "code": code}},
        status,
    )
