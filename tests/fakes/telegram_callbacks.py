"""Callback, file and chat methods of ``FakeTelegram``: answerCallbackQuery, getFile, getChat,
getChatMember."""

from __future__ import annotations

from typing import Any

from telegram.constants import FileSizeLimit

from tests.fakes.telegram_base import TelegramBase
from tests.fakes.telegram_limits import QUERY_TOO_OLD, bad_request, check_answer_text
from tests.fakes.telegram_state import Call
from tests.fakes.telegram_wire import require_chat


class CallbackMethods(TelegramBase):
    """answerCallbackQuery (with the query age limit), getFile, getChat and getChatMember."""

    async def _answer_callback_query(self, params: dict[str, Any], call: Call) -> Any:
        self._gate(call, counted=False)
        record = self.callbacks.get(str(params.get("callback_query_id")))
        if (
            record is None
            or record.answered
            or self.clock() - record.created > self.callback_timeout
        ):
            raise bad_request(QUERY_TOO_OLD)
        check_answer_text(params.get("text"))
        record.answered = True
        record.answer = {k: v for k, v in params.items() if k != "callback_query_id"}
        return True

    async def _get_file(self, params: dict[str, Any], call: Call) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > int(FileSizeLimit.FILESIZE_DOWNLOAD):
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _get_chat(self, params: dict[str, Any], call: Call) -> Any:
        require_chat(params)
        self._gate(call, counted=False)
        chat = dict(self._chat_for(params["chat_id"]))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return chat

    async def _get_chat_member(self, params: dict[str, Any], call: Call) -> Any:
        """A member's status: "creator"/"administrator" as set with ``set_chat_admin``, else
        "member" (the fields PTB requires of each kind)."""
        require_chat(params)
        self._gate(call, counted=False)
        chat = self._chat_for(params["chat_id"])
        user_id = int(params["user_id"])
        status = self.chat_admins.get(chat["id"], {}).get(user_id, "member")
        member: dict[str, Any] = {"status": status, "user": self.user(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    **dict.fromkeys(_ADMIN_RIGHTS, True),
                }
            )
        return member


_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
