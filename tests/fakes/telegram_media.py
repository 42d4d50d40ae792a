"""Media methods of ``FakeTelegram``: sendPhoto/Document/Audio/Video/Animation/Voice and
sendMediaGroup, resolving uploads, ``attach://`` references, URLs and file ids."""

from __future__ import annotations

from typing import Any

from telegram.constants import FileSizeLimit, MediaGroupLimit

from tests.fakes.telegram_limits import ApiError, bad_request, check_reply_markup
from tests.fakes.telegram_messages import MessageMethods
from tests.fakes.telegram_state import Call, FilePart
from tests.fakes.telegram_wire import media_payload, require_chat

_MEDIA_KINDS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendVoice": "voice",
}
_UPLOAD_LIMIT = {"photo": int(FileSizeLimit.PHOTOSIZE_UPLOAD)}


class MediaMethods(MessageMethods):
    """Handlers for the media-sending methods (``_MEDIA_KINDS``) and sendMediaGroup."""

    async def _send_media(self, params: dict[str, Any], call: Call) -> Any:
        kind = _MEDIA_KINDS[call.method]
        chat_id = require_chat(params)
        self._gate(call, counted=True)
        caption, entities = self._caption_content(
            params.get("caption"), params.get("caption_entities")
        )
        markup = check_reply_markup(params.get("reply_markup"))
        media, upload, source = self._media_object(kind, params.get(kind), params)
        msg = self._bot_message(chat_id, params)
        msg.media_type, msg.media, msg.upload, msg.media_source = kind, media, upload, source
        msg.caption, msg.caption_entities, msg.reply_markup = caption, entities, markup
        self._store(msg)
        return self._api_message(msg)

    async def _send_media_group(self, params: dict[str, Any], call: Call) -> Any:
        chat_id = require_chat(params)
        items = params.get("media")
        if not isinstance(items, list):
            raise bad_request("can't parse media JSON object")
        self._gate(call, counted=True, cost=max(1, len(items)))
        if (
            not int(MediaGroupLimit.MIN_MEDIA_LENGTH)
            <= len(items)
            <= int(MediaGroupLimit.MAX_MEDIA_LENGTH)
        ):
            raise bad_request("wrong number of messages in the media group")
        group_id = f"MG{next(self._media_group_seq)}"
        prepared = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "audio",
                "document",
            ):
                raise bad_request("wrong media type in the media group")
            caption, entities = self._caption_content(
                item.get("caption"), item.get("caption_entities")
            )
            prepared.append(
                (
                    item,
                    caption,
                    entities,
                    *self._media_object(item["type"], item.get("media"), params),
                )
            )
        out = []
        for item, caption, entities, media, upload, source in prepared:
            msg = self._bot_message(chat_id, params)
            msg.media_type, msg.media, msg.upload, msg.media_source = (
                item["type"],
                media,
                upload,
                source,
            )
            msg.caption, msg.caption_entities = caption, entities
            msg.media_group_id = group_id
            self._store(msg)
            out.append(self._api_message(msg))
        return out

    def _media_object(
        self, kind: str, value: Any, params: dict[str, Any]
    ) -> tuple[Any, FilePart | None, str | None]:
        """Resolve an uploaded file, ``attach://`` reference, URL or file_id to a media object."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
            if not isinstance(value, FilePart):
                raise bad_request("wrong file identifier/HTTP URL specified")
        upload: FilePart | None = None
        source: str | None = None
        if isinstance(value, FilePart):
            limit = _UPLOAD_LIMIT.get(kind, int(FileSizeLimit.FILESIZE_UPLOAD))
            if len(value.data) > limit:
                raise ApiError(413, "Request Entity Too Large")
            if not value.data:
                raise bad_request("file must be non-empty")
            upload = value
            stored = self.register_file(
                value.data,
                filename=value.filename,
                content_type=value.content_type,
                folder=f"{kind}s",
            )
        elif isinstance(value, str) and value:
            source = value
            if value.startswith(("http://", "https://")):
                stored = self.register_file(
                    b"", filename=value.rsplit("/", 1)[-1], folder=f"{kind}s"
                )
            elif value in self.files:
                stored = self.files[value]
            else:
                raise bad_request("wrong file identifier/HTTP URL specified")
        else:
            raise bad_request(f"there is no {kind} in the request")
        return media_payload(kind, stored, params), upload, source
