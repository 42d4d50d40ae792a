"""Stopping an answer on Telegram, end to end: the ⏹ button and /stop through the real
python-telegram-bot against the fake Bot API, the real CometAPI client against the fake
CometAPI, a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from bot.core.models import ConversationKey, Platform, Turn
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_state import Call, StoredMessage
from tests.world import TelegramService, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

GROUP = -100777
ASKER = 5
STRANGER = 6
USER = 42
WORDS = [f"word{i} " for i in range(80)]  # 0.15 s apart: 12 s unless stopped
NOTE = "⏹ Stopped."


def stop_button(message: StoredMessage) -> str | None:
    """The callback data of the message's ⏹ button, if it carries one."""
    rows = (message.reply_markup or {}).get("inline_keyboard") or []
    data = [b.get("callback_data", "") for row in rows for b in row]
    return next((d for d in data if d.startswith("stop:")), None)


async def streaming_reply(tg: FakeTelegram, chat_id: int) -> StoredMessage:
    """The bot's reply once it streams with its ⏹ button."""
    return await tg.wait_for(
        lambda: next((m for m in tg.messages(chat_id) if stop_button(m)), None), timeout=10
    )


def writes(tg: FakeTelegram, chat_id: int) -> list[Call]:
    """The sends and edits the chat's budget counts."""
    return [
        c for c in tg.timeline(chat_id) if c.method in ("sendMessage", "editMessageText") and c.ok
    ]


async def stored(svc: TelegramService, key: ConversationKey, count: int) -> list[Turn]:
    for _ in range(200):  # the answer is stored right after its final edit
        turns = await svc.core.store.recent_turns(key, limit=10)
        if len(turns) >= count:
            return turns
        await asyncio.sleep(0.02)
    return turns


async def test_the_stop_button_stops_a_group_answer_and_only_the_asker_may_press_it(
    tmp_path: Path,
) -> None:
    key = ConversationKey(Platform.TELEGRAM, str(GROUP))
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=WORDS, delay=0.15)
        async with telegram_service(tmp_path, comet, tg) as svc:
            tg.inject_group_message(GROUP, "talk a lot", user_id=ASKER, mention_bot=True)
            reply = await streaming_reply(tg, GROUP)
            data = stop_button(reply)
            assert data is not None and len(data.encode()) <= 64
            # someone else's press is refused privately, and the answer goes on
            refused = tg.inject_callback_query(GROUP, reply.message_id, data, user_id=STRANGER)
            await tg.wait_for(lambda: tg.callback(refused).answered, timeout=10)
            answer = tg.callback(refused).answer or {}
            assert answer.get("show_alert") is True
            assert "Only the person who asked" in answer.get("text", "")
            # the button stays on while the reply grows
            await tg.wait_for(
                lambda: (m := tg.message(GROUP, reply.message_id)) and m.edit_count >= 1, timeout=10
            )
            assert stop_button(tg.message(GROUP, reply.message_id)) == data  # type: ignore[arg-type]
            # the asker's press stops it: the upstream stream is closed early
            pressed = tg.inject_callback_query(GROUP, reply.message_id, data, user_id=ASKER)
            await tg.wait_for(lambda: tg.callback(pressed).answered, timeout=10)
            assert (tg.callback(pressed).answer or {}).get("text") == "Stopped."
            await comet.wait_for_disconnects(1, timeout=10)
            final = await tg.wait_for(
                lambda: (m := tg.message(GROUP, reply.message_id)) and NOTE in (m.text or "") and m,
                timeout=10,
            )
            turns = await stored(svc, key, 2)
            # the channel is free: the next question is answered
            tg.inject_group_message(GROUP, "and now?", user_id=ASKER, mention_bot=True)
            await tg.wait_for(
                lambda: any("and now?" in (m.text or "") for m in tg.messages(GROUP)),
                timeout=10,
            )
            await tg.wait_idle(quiet=0.3)
        shown, _, note = (final.text or "").partition("\n\n")
        assert note == NOTE
        assert 0 < len(shown.split()) < len(WORDS)  # cut short, the text so far kept
        assert stop_button(final) is None  # the final edit took the button away
        assert [t.content.strip() for t in turns] == ["talk a lot", shown.strip()]
        # the button rode on the reply's own writes: each one changed the text, the edits
        # carried it (not the first send: a short answer never needs it) but the final one,
        # and the presses' answers cost the chat nothing
        reply_writes = [
            c
            for c in writes(tg, GROUP)
            if (c.method == "sendMessage" and c.result.get("message_id") == reply.message_id)
            or c.params.get("message_id") == reply.message_id
        ]
        texts = [c.params["text"] for c in reply_writes]
        assert all(a != b for a, b in itertools.pairwise(texts))
        carried = ["reply_markup" in c.params for c in reply_writes]
        assert len(carried) >= 3 and carried == [False] + [True] * (len(carried) - 2) + [False]
        assert tg.total_429s == 0 and tg.violations == 0


async def test_stop_command_stops_the_answer_and_says_one_line_when_nothing_runs(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=WORDS, delay=0.15)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("talk a lot", user_id=USER)
            reply = await streaming_reply(tg, USER)
            data = stop_button(reply)
            assert data is not None
            tg.inject_private_message("/stop", user_id=USER)
            await comet.wait_for_disconnects(1, timeout=10)
            await tg.wait_for(
                lambda: NOTE in (tg.message(USER, reply.message_id).text or ""),  # type: ignore[union-attr]
                timeout=10,
            )
            await tg.wait_idle(quiet=0.3)
            assert len(tg.messages(USER)) == 1  # a /stop that stops says nothing more
            tg.inject_private_message("/stop", user_id=USER)
            nothing = await tg.wait_for_message(USER, "Nothing to stop", timeout=10)
            assert "\n" not in (nothing.text or "")
            # the button of an answer that has ended (or from before a restart)
            late = tg.inject_callback_query(USER, reply.message_id, data, user_id=USER)
            await tg.wait_for(lambda: tg.callback(late).answered, timeout=10)
            assert (tg.callback(late).answer or {}).get("text") == "This answer has already ended."
        assert stop_button(tg.message(USER, reply.message_id)) is None  # type: ignore[arg-type]
        assert "stop" in {c["command"] for c in tg.my_commands() or []}  # in the command menu


async def test_an_answer_that_runs_to_its_end_loses_its_button_with_the_final_edit(
    tmp_path: Path,
) -> None:
    words = WORDS[:20]
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=words, delay=0.1)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("talk a bit", user_id=USER)
            reply = await streaming_reply(tg, USER)
            expected = "".join(words).strip()
            await tg.wait_for(
                lambda: (tg.message(USER, reply.message_id).text or "").strip() == expected,  # type: ignore[union-attr]
                timeout=15,
            )
            await tg.wait_idle(quiet=0.5)
        assert stop_button(tg.message(USER, reply.message_id)) is None  # type: ignore[arg-type]
        assert comet.disconnects == 0
        assert tg.total_429s == 0 and tg.violations == 0
