"""Chat on Telegram, end to end: the real python-telegram-bot against the fake Bot API, the
real CometAPI client against the fake CometAPI, a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import pytest

from bot.core.chat.markdown import utf16_len
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.world import chat_requests, history_of, rendered, telegram_service

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
GROUP = -100777


def counted(tg: FakeTelegram, chat_id: int) -> list[float]:
    """Times of the sends/edits to a chat that the platform counts against its budget."""
    return [
        c.time
        for c in tg.timeline(chat_id)
        if c.method in ("sendMessage", "editMessageText") and c.ok
    ]


async def final_text(tg: FakeTelegram, chat_id: int, expected_markdown: str) -> None:
    expected = rendered(expected_markdown)
    await tg.wait_for(
        lambda: any(m.text == expected for m in tg.messages(chat_id)),
        timeout=15,
    )


async def test_private_chat_streams_exact_text_at_the_platform_pace(tmp_path: Path) -> None:
    tokens = [f"word{i} " for i in range(40)] + ["**done**."]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=tokens, delay=0.06)  # ~2.4 s of streaming
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("Count for me", user_id=USER)
            await final_text(tg, USER, answer)
            await tg.wait_idle(quiet=0.3)
        messages = tg.messages(USER)
        assert len(messages) == 1
        message = messages[0]
        assert message.text == rendered(answer)
        assert any(e["type"] == "bold" for e in message.entities)
        assert message.edit_count >= 1  # it grew while streaming
        times = counted(tg, USER)
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times
        assert tg.total_429s == 0 and tg.violations == 0
        # the first words came at once: no typing call was spent
        assert tg.calls("sendChatAction", USER) == []
        # both turns were sent upstream as expected
        request = chat_requests(comet)[0]
        assert request["stream"] is True
        assert history_of(request)[-1] == ("user", "Count for me")


async def test_typing_shows_while_the_first_words_are_slow(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Hmm, ", "yes."], delay=1.2)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("a hard one", user_id=USER)
            await final_text(tg, USER, "Hmm, yes.")
        methods = [c.method for c in tg.timeline(USER) if c.method != "getUpdates"]
        assert methods[0] == "sendChatAction"  # typing went out before the first text
        assert methods.index("sendMessage") > 0


async def test_long_answer_with_code_fence_is_split_within_limits(tmp_path: Path) -> None:
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(20))
    code = "```python\n" + "\n".join(f"print('line {i}')" for i in range(120)) + "\n```"
    answer = prose[:3500] + "\n\n" + code + "\n\n" + prose
    assert len(answer) > 10_000
    chunks = [answer[i : i + 200] for i in range(0, len(answer), 200)]
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=chunks, delay=0.01)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("write a lot", user_id=USER)
            await tg.wait_for(lambda: _all_there(tg, answer), timeout=30)
            await tg.wait_idle(quiet=0.5)
        messages = tg.messages(USER)
        assert len(messages) >= 3
        for message in messages:
            assert 1 <= utf16_len(message.text) <= 4096
        # the code block spans two messages: each part is a complete pre entity
        code_lines = [f"print('line {i}')" for i in range(120)]
        in_pre = []
        for message in messages:
            for entity in message.entities:
                if entity["type"] == "pre":
                    start, end = entity["offset"], entity["offset"] + entity["length"]
                    in_pre += _utf16_slice(message.text, start, end).splitlines()
        assert [line for line in in_pre if line] == code_lines
        # no fence markers leaked as text (a fence left open would show "```")
        assert not any("```" in m.text for m in messages)
        assert tg.total_429s == 0 and tg.violations == 0


def _all_there(tg: FakeTelegram, answer: str) -> bool:
    shown = "".join("".join(m.text.split()) for m in tg.messages(USER))
    return shown == "".join(rendered(answer).split())


def _utf16_slice(text: str, start: int, end: int) -> str:
    data = text.encode("utf-16-le")
    return data[start * 2 : end * 2].decode("utf-16-le")


async def test_429_on_an_edit_pauses_the_chat_and_the_final_text_arrives(tmp_path: Path) -> None:
    tokens = [f"t{i} " for i in range(30)]
    answer = "".join(tokens)
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=tokens, delay=0.05)
        tg.fail_next(USER, "editMessageText", retry_after=2)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("go", user_id=USER)
            await final_text(tg, USER, answer)
        limited = [c for c in tg.timeline(USER) if c.status == 429]
        assert len(limited) == 1
        after = [c for c in tg.timeline(USER) if c.seq > limited[0].seq]
        assert after, "the reply resumed"
        assert after[0].time - limited[0].time >= 2.0  # nothing at all during the penalty
        assert tg.violations == 0
        assert tg.messages(USER)[-1].text == rendered(answer)


async def test_429_on_a_command_answer_pauses_the_chat_then_sends_it(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        tg.fail_next(USER, "sendMessage", retry_after=2)
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("/reset", user_id=USER)
            await tg.wait_for_message(USER, "fresh conversation", timeout=10)
        sends = [c for c in tg.timeline(USER) if c.method == "sendMessage"]
        assert [c.status for c in sends] == [429, 200]
        assert sends[1].time - sends[0].time >= 2.0  # the retry waited out the penalty
        assert tg.violations == 0


async def test_context_carries_over_and_survives_a_restart(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["Nice to meet you, Ada."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("My name is Ada", user_id=USER)
            await final_text(tg, USER, "Nice to meet you, Ada.")
        # a new bot process on the same database
        comet.script_chat(tokens=["You are Ada."])
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("What is my name?", user_id=USER)
            await final_text(tg, USER, "You are Ada.")
        second = history_of(chat_requests(comet)[1])
        assert second[0][0] == "system"
        assert second[1:] == [
            ("user", "My name is Ada"),
            ("assistant", "Nice to meet you, Ada."),
            ("user", "What is my name?"),
        ]


async def test_reset_empties_the_next_requests_history(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=["first answer"])
        comet.script_chat(tokens=["second answer"])
        async with telegram_service(tmp_path, comet, tg) as svc:
            tg.inject_private_message("first question", user_id=USER)
            await final_text(tg, USER, "first answer")
            tg.inject_private_message("/reset", user_id=USER)
            await tg.wait_for_message(USER, "fresh conversation", timeout=10)
            tg.inject_private_message("second question", user_id=USER)
            await final_text(tg, USER, "second answer")
            for _ in range(100):  # the answer is stored right after its final edit
                stored = await svc.core.store.recent_turns(_key(USER), limit=10)
                if len(stored) == 2:
                    break
                await asyncio.sleep(0.02)
            used = await svc.core.store.usage_today(f"tg:{USER}")
        second = history_of(chat_requests(comet)[1])
        assert [role for role, _ in second] == ["system", "user"]
        assert second[-1] == ("user", "second question")
        assert [t.content for t in stored] == ["second question", "second answer"]
        assert used["chat"] == 2  # both answers are stored; the first is out of context


def _key(chat_id: int, thread: str | None = None):  # type: ignore[no-untyped-def]
    from bot.core.models import ConversationKey, Platform

    return ConversationKey(Platform.TELEGRAM, str(chat_id), thread)


async def test_group_answers_only_when_addressed(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_group_message(GROUP, "just chatting among ourselves", user_id=1)
            tg.inject_group_message(GROUP, "hey what do you think", user_id=2, mention_bot=True)
            await tg.wait_for(lambda: len(tg.messages(GROUP)) == 1, timeout=10)
            bot_message = tg.messages(GROUP)[0]
            await tg.wait_for(lambda: "think" in tg.messages(GROUP)[0].text, timeout=10)
            tg.inject_group_message(
                GROUP, "and a follow-up", user_id=3, reply_to=bot_message.message_id
            )
            await tg.wait_for(lambda: len(tg.messages(GROUP)) == 2, timeout=10)
            tg.inject_group_message(GROUP, "/ask@comet_test_bot spell it out", user_id=1)
            await tg.wait_for(lambda: len(tg.messages(GROUP)) == 3, timeout=10)
            tg.inject_group_message(GROUP, "more idle talk", user_id=2)
            await tg.wait_idle(quiet=0.5)
        questions = [history_of(r)[-1][1] for r in chat_requests(comet)]
        assert len(questions) == 3
        assert [q.split("] ", 1)[1] for q in questions] == [
            "hey what do you think",
            "and a follow-up",
            "spell it out",
        ]
        assert all(q.startswith("[") for q in questions)  # group turns name the speaker
        assert all("@comet_test_bot" not in q for q in questions)
        assert tg.violations == 0


async def test_forum_topics_are_separate_conversations(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_group_message(GROUP, "topic one question", mention_bot=True, thread_id=11)
            await tg.wait_for(lambda: len(tg.messages(GROUP)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
            tg.inject_group_message(GROUP, "topic two question", mention_bot=True, thread_id=22)
            await tg.wait_for(lambda: len(tg.messages(GROUP)) == 2, timeout=10)
            await tg.wait_idle(quiet=0.3)
        first, second = tg.messages(GROUP)
        assert (first.thread_id, second.thread_id) == (11, 22)
        second_request = history_of(chat_requests(comet)[1])
        assert [role for role, _ in second_request] == ["system", "user"]


async def test_upstream_401_gives_a_plain_sentence_without_key(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.fail_next(1, 401, path_prefix="/v1/chat", message=f"Invalid token {comet.api_key}")
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("hello?", user_id=USER)
            await tg.wait_for(lambda: tg.messages(USER), timeout=10)
            await tg.wait_idle(quiet=0.3)
        (message,) = tg.messages(USER)
        assert "CometAPI key was refused" in message.text
        assert comet.api_key not in message.text
        assert "Traceback" not in message.text and "Error" not in message.text
        assert len(comet.requests_to("/v1/chat")) == 1  # 401 is never retried


async def test_stream_cut_midway_leaves_partial_text_and_a_note(tmp_path: Path) -> None:
    tokens = ["The answer ", "is long ", "and then"]
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        comet.script_chat(tokens=tokens + [" more"] * 5, cut_after=3)
        async with telegram_service(tmp_path, comet, tg) as svc:
            tg.inject_private_message("explain", user_id=USER)
            await tg.wait_for(
                lambda: any("stopped early" in m.text for m in tg.messages(USER)), timeout=10
            )
            for _ in range(100):  # the turn is stored right after the final edit
                turns = await svc.core.store.recent_turns(_key(USER), limit=10)
                if len(turns) == 2:
                    break
                await asyncio.sleep(0.02)
        text = tg.messages(USER)[-1].text
        assert text.startswith("The answer is long and then")
        assert "cut off" in text
        assert [t.content for t in turns] == ["explain", "The answer is long and then"]


async def test_empty_message_and_oversized_prompt_are_refused(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg, max_prompt_chars=50):
            tg.inject_private_message("x" * 51, user_id=USER)
            await tg.wait_for_message(USER, "too long", timeout=10)
        assert comet.requests_to("/v1/chat") == []


async def test_model_command_shows_a_keyboard_and_sets_the_model(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("/model", user_id=USER)
            menu = await tg.wait_for_message(USER, "This conversation uses gpt-4o-mini", timeout=10)
            buttons = [b for row in menu.reply_markup["inline_keyboard"] for b in row]
            assert {"model:gpt-4o", "model:gpt-4o-mini"} <= {b["callback_data"] for b in buttons}
            query = tg.inject_callback_query(USER, menu.message_id, "model:gpt-4o")
            await tg.wait_for(lambda: tg.callback(query).answered, timeout=10)
            await tg.wait_for_message(USER, "Model set to gpt-4o for this conversation", timeout=10)
            tg.inject_private_message("/model no-such-model", user_id=USER)
            await tg.wait_for_message(USER, "Unknown model", timeout=10)
            tg.inject_private_message("which model?", user_id=USER)
            await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert chat_requests(comet)[0]["model"] == "gpt-4o"


async def test_system_command_shows_and_sets_the_persona(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg, system_prompt="Default persona."):
            tg.inject_private_message("/system", user_id=USER)
            await tg.wait_for_message(USER, "Default persona.", timeout=10)
            tg.inject_private_message("/system You are a pirate.", user_id=USER)
            await tg.wait_for_message(USER, "Persona set", timeout=10)
            tg.inject_private_message("ahoy", user_id=USER)
            await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
        assert history_of(chat_requests(comet)[0])[0] == ("system", "You are a pirate.")


async def test_photo_goes_to_the_model_as_an_image_part(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_photo(USER, b"\xff\xd8\xff\xe0photo-bytes\xff\xd9", caption="what is this?")
            await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
            await tg.wait_idle(quiet=0.3)
        content = chat_requests(comet)[0]["messages"][-1]["content"]
        assert content[0] == {"type": "text", "text": "what is this?"}
        assert re.match(r"data:image/jpeg;base64,", content[1]["image_url"]["url"])


async def test_commands_are_registered(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            pass
        names = {c["command"] for c in tg.my_commands()}
        assert {"ask", "model", "system", "reset", "help"} <= names


async def test_unknown_command_gets_one_line_only_where_it_is_for_this_bot(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg):
            tg.inject_private_message("/foo", user_id=USER)
            reply = await tg.wait_for_message(USER, "I don't know /foo", timeout=10)
            tg.inject_group_message(GROUP, "/foo@otherbot", user_id=1)
            tg.inject_group_message(GROUP, "/bar", user_id=1)
            tg.inject_group_message(GROUP, "/baz@comet_test_bot", user_id=1)
            await tg.wait_for_message(GROUP, "I don't know /baz", timeout=10)
            tg.inject_private_message("/help", user_id=USER)
            await tg.wait_for_message(USER, "/reset", timeout=10)
            await tg.wait_idle(quiet=0.5)
        assert "/help" in reply.text
        private = [m.text for m in tg.messages(USER)]
        assert len(private) == 2 and "don't know" not in private[1]  # /help is known
        group = [m.text for m in tg.messages(GROUP)]
        assert group == ["I don't know /baz. Send /help to see what I can do."]
        assert comet.requests_to("/v1/chat") == []


async def test_in_groups_only_admins_change_model_and_persona(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        tg.set_chat_admin(GROUP, 5)
        tg.set_chat_admin(GROUP, 6, status="creator")
        access = {"access": {"admins": ["tg:9"]}}
        async with telegram_service(tmp_path, comet, tg, sections=access) as svc:
            key = _key(GROUP)
            tg.inject_group_message(GROUP, "/model gpt-4o", user_id=1)
            await tg.wait_for_message(GROUP, "only the admins here can change the model")
            tg.inject_group_message(GROUP, "/system You are a pirate.", user_id=1)
            await tg.wait_for_message(GROUP, "only the admins here can change the persona")
            tg.inject_group_message(GROUP, "/model", user_id=1)  # looking stays open
            menu = await tg.wait_for_message(GROUP, "This conversation uses gpt-4o-mini")
            query = tg.inject_callback_query(GROUP, menu.message_id, "model:gpt-4o", user_id=1)
            await tg.wait_for(lambda: tg.callback(query).answered, timeout=10)
            assert "only the admins here" in tg.callback(query).answer["text"]
            assert await svc.core.chat.current_model(key) == "gpt-4o-mini"
            tg.inject_group_message(GROUP, "/model gpt-4o", user_id=5)  # an administrator
            await tg.wait_for_message(GROUP, "Model set to gpt-4o")
            tg.inject_group_message(GROUP, "/system You are a pirate.", user_id=6)  # the creator
            await tg.wait_for_message(GROUP, "Persona set")
            query = tg.inject_callback_query(GROUP, menu.message_id, "model:gpt-4o-mini", user_id=9)
            await tg.wait_for(lambda: tg.callback(query).answered, timeout=10)  # a bot admin
            await tg.wait_idle(quiet=0.3)
            assert await svc.core.chat.current_model(key) == "gpt-4o-mini"
            assert await svc.core.chat.persona(key) == ("You are a pirate.", False)
            tg.inject_private_message("/model gpt-4o", user_id=1)  # their own chat: theirs
            await tg.wait_for_message(1, "Model set to gpt-4o")


async def test_group_settings_everyone_lets_any_member_change_them(tmp_path: Path) -> None:
    async with FakeCometAPI() as comet, FakeTelegram() as tg:
        async with telegram_service(tmp_path, comet, tg, group_settings="everyone"):
            tg.inject_group_message(GROUP, "/model gpt-4o", user_id=1)
            await tg.wait_for_message(GROUP, "Model set to gpt-4o")
        assert tg.calls("getChatMember") == []
