"""The fake Telegram server, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.clock import FakeClock
from tests.fakes.telegram import FakeTelegram, RateLimits
from tests.fakes.telegram_wire import DEFAULT_SPEC

# PTB 22 warns when int-valued durations are read; the fake is not the place to opt in.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

TOKEN = "123456:TEST"
USER = 42
GROUP = -1001234567890


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int (deprecated) or a timedelta (PTB_TIMEDELTA=1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
async def tg(clock: FakeClock) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN, clock=clock) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.api_base_url, base_file_url=tg.file_base_url) as b:
        yield b


def keyboard(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data=data)]])


# -- basics ---------------------------------------------------------------------------------------


async def test_get_me_and_urls(tg: FakeTelegram, bot: Bot) -> None:
    assert tg.api_base_url == f"http://127.0.0.1:{tg.port}/bot"
    assert tg.file_base_url == f"http://127.0.0.1:{tg.port}/file/bot"
    assert bot.username == "comet_test_bot"
    assert bot.id == 123456
    assert bot.bot.can_join_groups is True
    assert [c.method for c in tg.calls()] == ["getMe"]


async def test_wrong_token_and_unknown_method(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        await Bot("999:WRONG", base_url=tg.api_base_url).get_me()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.api_base_url}999:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{tg.api_base_url}{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found"


async def test_json_get_and_urlencoded_bodies(tg: FakeTelegram) -> None:
    tg.rate_limits_enabled = False
    base = f"{tg.api_base_url}{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/sendMessage", json={"chat_id": USER, "text": "json", "reply_markup": markup}
        ) as resp:
            body = await resp.json()
            assert resp.status == 200
            assert resp.content_type == "application/json"
        assert body["ok"] is True
        assert body["result"]["reply_markup"] == markup
        assert body["result"]["from"]["username"] == "comet_test_bot"
        async with http.get(f"{base}/sendMessage", params={"chat_id": "42", "text": "q"}) as resp:
            assert (await resp.json())["result"]["text"] == "q"
        async with http.post(
            f"{base}/sendmessage", data={"chat_id": "42", "text": "form"}
        ) as resp:  # method names are case-insensitive, as on Telegram
            assert (await resp.json())["result"]["message_id"] == 3
    assert tg.texts(USER) == ["json", "q", "form"]
    assert tg.calls("sendMessage")[0].params["reply_markup"] == markup


# -- limits ---------------------------------------------------------------------------------------


async def test_text_length_limits(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    limit = MessageLimit.MAX_TEXT_LENGTH
    ok = await bot.send_message(USER, "a" * limit)
    assert len(ok.text) == limit
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "a" * (limit + 1))
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.edit_message_text("b" * (limit + 1), chat_id=USER, message_id=ok.message_id)
    assert tg.calls("sendMessage")[1].status == 400
    assert tg.texts(USER) == ["a" * limit]


async def test_text_length_counts_utf16_units(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    half = MessageLimit.MAX_TEXT_LENGTH // 2
    await bot.send_message(USER, "😀" * half)  # 2048 code points = 4096 UTF-16 units
    text = "😀" * half + "a"
    assert len(text) < MessageLimit.MAX_TEXT_LENGTH
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, text)


async def test_entities_checked_in_utf16_and_recorded(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    text = "😀 bold"  # 7 UTF-16 units
    good = [MessageEntity("bold", offset=3, length=4)]
    msg = await bot.send_message(USER, text, entities=good)
    assert msg.parse_entities() == {good[0]: "bold"}
    assert tg.last_message(USER).entities == [{"type": "bold", "offset": 3, "length": 4}]
    for bad in (
        MessageEntity("bold", offset=4, length=4),  # past the end
        MessageEntity("bold", offset=1, length=2),  # splits the emoji's surrogate pair
        MessageEntity("text_link", offset=3, length=4),  # text_link without url
    ):
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(USER, text, entities=[bad])
    await bot.send_message(USER, "*hi*", parse_mode="MarkdownV2")
    assert tg.last_message(USER).parse_mode == "MarkdownV2"


async def test_callback_data_limit_in_utf8_bytes(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    await bot.send_message(USER, "ok", reply_markup=keyboard("x" * 64))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER, "too long", reply_markup=keyboard("x" * 65))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER, "cyrillic", reply_markup=keyboard("я" * 33))  # 66 bytes
    assert tg.texts(USER) == ["ok"]


async def test_caption_limit(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(USER, photo=b"img", caption="c" * (MessageLimit.CAPTION_LENGTH + 1))
    await bot.send_photo(USER, photo=b"img", caption="c" * MessageLimit.CAPTION_LENGTH)


# -- editing --------------------------------------------------------------------------------------


async def test_edit_not_modified_and_missing(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    sent = await bot.send_message(USER, "hello", reply_markup=keyboard("again"))
    mid = sent.message_id
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "hello", chat_id=USER, message_id=mid, reply_markup=keyboard("again")
        )
    # Without reply_markup an edit removes the keyboard, so it is a modification.
    await bot.edit_message_text("hello", chat_id=USER, message_id=mid)
    edited = await bot.edit_message_text("hello world", chat_id=USER, message_id=mid)
    assert edited.text == "hello world"
    assert edited.edit_date is not None
    state = tg.message(USER, mid)
    assert state is not None
    assert (state.edit_count, state.history, state.reply_markup) == (2, ["hello", "hello"], None)

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=mid)
    await bot.edit_message_reply_markup(chat_id=USER, message_id=mid, reply_markup=keyboard("x"))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("nope", chat_id=USER, message_id=999)
    await bot.delete_message(USER, mid)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("gone", chat_id=USER, message_id=mid)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, mid)
    assert tg.messages(USER) == []
    assert len(tg.messages(USER, include_deleted=True)) == 1


async def test_edit_caption(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    photo = await bot.send_photo(USER, photo=b"img", caption="one")
    text = await bot.send_message(USER, "text")
    edited = await bot.edit_message_caption(chat_id=USER, message_id=photo.message_id, caption="2")
    assert edited.caption == "2"
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_caption(chat_id=USER, message_id=photo.message_id, caption="2")
    with pytest.raises(BadRequest, match=r"(?i)no caption"):
        await bot.edit_message_caption(chat_id=USER, message_id=text.message_id, caption="x")
    with pytest.raises(BadRequest, match=r"(?i)no text"):
        await bot.edit_message_text("x", chat_id=USER, message_id=photo.message_id)


async def test_user_messages_cannot_be_edited(tg: FakeTelegram, bot: Bot) -> None:
    user_msg = tg.inject_private_message("mine")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("hijack", chat_id=USER, message_id=user_msg.message_id)


# -- flood control --------------------------------------------------------------------------------


async def test_private_chat_budget_and_penalty(
    tg: FakeTelegram, bot: Bot, clock: FakeClock
) -> None:
    for i in range(3):  # the burst
        await bot.send_message(USER, f"m{i}")
    with pytest.raises(RetryAfter) as first:
        await bot.edit_message_text("edit", chat_id=USER, message_id=1)
    assert retry_seconds(first.value) == 1
    assert tg.violations == 0

    await clock.advance(0.5)  # still inside the penalty: even a typing indicator is refused
    with pytest.raises(RetryAfter):
        await bot.send_chat_action(USER, "typing")
    assert tg.violations == 1
    assert tg.chat_violations[USER] == 1
    assert tg.total_429s == 2
    assert tg.chat_429s[USER] == 2
    assert [c.violation for c in tg.violation_calls()] == [True]

    await clock.advance(0.5)  # penalty over; one token refilled
    await bot.send_message(USER, "after")
    with pytest.raises(RetryAfter):
        await bot.send_message(USER, "too soon")
    await clock.advance(1)
    await bot.send_chat_action(USER, "typing")  # not counted against the budget
    await bot.send_message(USER, "steady")
    statuses = [(c.method, c.status) for c in tg.timeline(USER)]
    assert statuses == [
        ("sendMessage", 200),
        ("sendMessage", 200),
        ("sendMessage", 200),
        ("editMessageText", 429),
        ("sendChatAction", 429),
        ("sendMessage", 200),
        ("sendMessage", 429),
        ("sendChatAction", 200),
        ("sendMessage", 200),
    ]
    assert tg.timeline(USER)[3].retry_after == 1
    assert tg.texts(USER) == ["m0", "m1", "m2", "after", "steady"]


async def test_group_budget_twenty_per_minute(tg: FakeTelegram, bot: Bot, clock: FakeClock) -> None:
    first = await bot.send_message(GROUP, "start")
    for i in range(19):
        await clock.advance(0.5)
        await bot.edit_message_text(f"edit {i}", chat_id=GROUP, message_id=first.message_id)
    with pytest.raises(RetryAfter) as exc:
        await bot.send_message(GROUP, "21st")
    # The oldest call was 9.5 s ago, so the window frees a slot in 50.5 s.
    assert retry_seconds(exc.value) == 51
    await bot.send_message(GROUP - 1, "another group is unaffected")
    await clock.advance(50)
    with pytest.raises(RetryAfter):
        await bot.send_message(GROUP, "still penalised")
    assert tg.chat_violations[GROUP] == 1
    await clock.advance(1)
    await bot.send_message(GROUP, "allowed again")
    assert tg.chat_429s[GROUP] == 2


async def test_overall_budget_thirty_per_second(
    tg: FakeTelegram, bot: Bot, clock: FakeClock
) -> None:
    for chat in range(1000, 1030):
        await bot.send_message(chat, "broadcast")
    with pytest.raises(RetryAfter) as exc:
        await bot.send_message(2000, "31st")
    assert retry_seconds(exc.value) == 1
    assert tg.chat_429s == {2000: 1}
    await clock.advance(1)
    await bot.send_message(2000, "next second")


async def test_custom_budgets_and_disabled(clock: FakeClock) -> None:
    limits = RateLimits(private_burst=1, private_rate=0.5)
    async with (
        FakeTelegram(token=TOKEN, clock=clock, rate_limits=limits) as tg,
        Bot(TOKEN, base_url=tg.api_base_url) as bot,
    ):
        await bot.send_message(USER, "one")
        with pytest.raises(RetryAfter) as exc:
            await bot.send_message(USER, "two")
        assert retry_seconds(exc.value) == 2
    async with (
        FakeTelegram(token=TOKEN, clock=clock, rate_limits=False) as tg,
        Bot(TOKEN, base_url=tg.api_base_url) as bot,
    ):
        for i in range(40):
            await bot.send_message(USER, str(i))
        assert tg.total_429s == 0


async def test_scripted_fail_next(tg: FakeTelegram, bot: Bot, clock: FakeClock) -> None:
    sent = await bot.send_message(USER, "x")
    tg.fail_next(USER, "editMessageText", retry_after=7)
    with pytest.raises(RetryAfter) as exc:
        await bot.edit_message_text("y", chat_id=USER, message_id=sent.message_id)
    assert retry_seconds(exc.value) == 7
    with pytest.raises(RetryAfter) as during:
        await bot.send_chat_action(USER, "typing")
    assert retry_seconds(during.value) == 7
    assert tg.violations == 1
    await clock.advance(7)
    await bot.edit_message_text("y", chat_id=USER, message_id=sent.message_id)

    tg.fail_next(43, retry_after=3, times=2, penalty=False)
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message(43, "a")
    await bot.send_message(43, "b")
    assert tg.total_429s == 4
    assert tg.violations == 1

    tg.fail_next_error(USER, "sendMessage", status=403, description="Forbidden: bot was kicked")
    with pytest.raises(Forbidden, match=r"(?i)kicked"):
        await bot.send_message(USER, "z")
    tg.block(44)
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(44, "z")


# -- files and media ------------------------------------------------------------------------------


async def test_get_file_downloads_a_user_photo(tg: FakeTelegram, bot: Bot) -> None:
    data = b"\xff\xd8\xffJPEG-bytes"
    msg = tg.inject_photo(USER, data, caption="look")
    updates = await bot.get_updates()
    photo = updates[0].message.photo
    assert updates[0].message.caption == "look"
    assert photo[-1].file_id == msg.media[-1]["file_id"]
    tg_file = await bot.get_file(photo[-1].file_id)
    assert tg_file.file_path.startswith(tg.file_base_url)
    assert bytes(await tg_file.download_as_bytearray()) == data
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_media_uploads_are_recorded(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    await bot.send_photo(USER, photo=b"PNGDATA", caption="pic", filename="pic.png")
    photo = tg.last_message(USER)
    assert photo is not None
    assert photo.media_type == "photo"
    assert photo.upload is not None
    assert (photo.upload.filename, photo.upload.data) == ("pic.png", b"PNGDATA")
    assert photo.upload.content_type == "image/png"
    assert tg.calls("sendPhoto")[0].files["photo"].data == b"PNGDATA"

    doc = await bot.send_document(USER, InputFile(io.BytesIO(b"hello"), filename="a.txt"))
    assert doc.document.file_name == "a.txt"
    stored = tg.last_message(USER)
    assert stored is not None
    assert stored.upload is not None
    assert stored.upload.content_type == "text/plain"
    again = await bot.send_document(USER, doc.document.file_id)  # reuse by file_id
    assert again.document.file_id == doc.document.file_id

    audio = await bot.send_audio(USER, b"ID3mp3", filename="song.mp3", title="Song", duration=3)
    assert audio.audio.title == "Song"
    assert tg.last_message(USER).media["duration"] == 3
    video = await bot.send_video(USER, "https://example.invalid/v.mp4")
    assert video.video.file_name == "v.mp4"
    assert tg.last_message(USER).media_source == "https://example.invalid/v.mp4"
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(USER, "unknown-file-id")

    group = await bot.send_media_group(
        USER,
        [InputMediaPhoto(b"one", caption="1"), InputMediaPhoto(b"two", filename="2.jpg")],
    )
    assert len(group) == 2
    assert group[0].media_group_id == group[1].media_group_id
    assert [m.upload.data for m in tg.messages(USER)[-2:] if m.upload] == [b"one", b"two"]


# -- replies, topics, chats -----------------------------------------------------------------------


async def test_forum_topic_thread_id_and_replies(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    question = tg.inject_group_message(GROUP, "hi bot", mention_bot=True, thread_id=7)
    update = (await bot.get_updates())[0]
    incoming = update.message
    assert incoming.is_topic_message
    assert incoming.message_thread_id == 7
    assert incoming.reply_to_message.forum_topic_created is not None  # the topic's root
    assert incoming.parse_entities(["mention"]) == {incoming.entities[0]: "@comet_test_bot"}

    reply = await bot.send_message(
        GROUP,
        "answer",
        message_thread_id=7,
        reply_parameters=ReplyParameters(question.message_id),
    )
    assert reply.message_thread_id == 7
    assert reply.is_topic_message
    assert reply.reply_to_message.message_id == question.message_id
    stored = tg.last_message(GROUP)
    assert stored is not None
    assert (stored.thread_id, stored.reply_to) == (7, question.message_id)

    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(GROUP - 5, "x", message_thread_id=3)
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(GROUP, "x", reply_parameters=ReplyParameters(999))
    lenient = await bot.send_message(
        GROUP, "x", reply_parameters=ReplyParameters(999, allow_sending_without_reply=True)
    )
    assert lenient.reply_to_message is None


async def test_group_injection_mentions_commands_and_replies(tg: FakeTelegram, bot: Bot) -> None:
    bot_msg = await bot.send_message(GROUP, "I am the bot")
    tg.inject_group_message(GROUP, "/ask@comet_test_bot what is 2+2?")
    tg.inject_group_message(GROUP, "thanks", reply_to=bot_msg.message_id, user_id=77)
    cmd, reply = (u.message for u in await bot.get_updates())
    assert cmd.chat.type == "supergroup"
    assert cmd.parse_entities(["bot_command"]) == {cmd.entities[0]: "/ask@comet_test_bot"}
    assert reply.reply_to_message.from_user.is_bot
    assert reply.reply_to_message.message_id == bot_msg.message_id
    assert reply.from_user.id == 77
    assert len(tg.messages(GROUP, include_user=True)) == 3
    assert cmd.message_id < reply.message_id


async def test_get_chat(tg: FakeTelegram, bot: Bot) -> None:
    tg.add_chat(GROUP, title="Comet fans", is_forum=True)
    chat = await bot.get_chat(GROUP)
    assert (chat.title, chat.type, chat.is_forum) == ("Comet fans", "supergroup", True)
    private = await bot.get_chat(USER)
    assert private.type == "private"


async def test_unknown_chats_when_auto_chats_off() -> None:
    async with (
        FakeTelegram(token=TOKEN, auto_chats=False) as tg,
        Bot(TOKEN, base_url=tg.api_base_url) as bot,
    ):
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(USER, "x")
        tg.add_chat(USER)
        await bot.send_message(USER, "x")


async def test_commands_roundtrip(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([("start", "Start"), ("help", "Help")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert tg.my_commands() == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("Bad-Name", "x")])
    await bot.delete_my_commands()
    assert tg.my_commands() is None


# -- callback queries -----------------------------------------------------------------------------


async def test_callback_query_answer_rules(tg: FakeTelegram, bot: Bot, clock: FakeClock) -> None:
    sent = await bot.send_message(USER, "pick", reply_markup=keyboard("again"))
    query_id = tg.inject_callback_query(USER, sent.message_id, "again")
    update = (await bot.get_updates())[0]
    assert update.callback_query.id == query_id
    assert update.callback_query.data == "again"
    assert update.callback_query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query_id, text="ok")
    assert tg.callback(query_id).answered
    assert tg.callback(query_id).answer == {"text": "ok"}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query_id)

    late = tg.inject_callback_query(USER, sent.message_id, "again")
    await clock.advance(16)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(late)
    assert not tg.callback(late).answered


# -- updates --------------------------------------------------------------------------------------


async def test_get_updates_offset_and_limit(tg: FakeTelegram, bot: Bot) -> None:
    for text in ("one", "two", "three"):
        tg.inject_private_message(text)
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first] == ["one", "two"]
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest] == ["three"]
    assert tg.pending_updates == 1  # not confirmed yet
    assert await bot.get_updates(offset=rest[-1].update_id + 1) == ()
    assert tg.pending_updates == 0


async def test_allowed_updates_filter(tg: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(USER, "pick", reply_markup=keyboard("a"))
    tg.inject_private_message("text")
    tg.inject_callback_query(USER, sent.message_id, "a")
    updates = await bot.get_updates(allowed_updates=["callback_query"])
    assert [u.callback_query is not None for u in updates] == [True]


async def test_long_poll_returns_when_update_injected(tg: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda: tg.calls("getUpdates"))
    tg.inject_private_message("wake up")
    updates = await asyncio.wait_for(poll, timeout=10)  # far below the 30 s long poll
    assert [u.message.text for u in updates] == ["wake up"]


async def test_second_poller_conflicts_the_first(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda: tg.calls("getUpdates"))
    async with aiohttp.ClientSession() as http:  # PTB's own getUpdates pool holds one request
        second = asyncio.create_task(
            http.post(f"{tg.api_base_url}{TOKEN}/getUpdates", data={"timeout": "30"})
        )
        with pytest.raises(Conflict):
            await asyncio.wait_for(first, timeout=10)
        tg.inject_private_message("for the second")
        resp = await asyncio.wait_for(second, timeout=10)
        body = await resp.json()
    assert [u["message"]["text"] for u in body["result"]] == ["for the second"]


# -- the full Application -------------------------------------------------------------------------


async def test_application_polls_and_replies(tg: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("Welcome!")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(f"echo: {update.message.text}", do_quote=True)

    app: Application = (  # type: ignore[type-arg]
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(tg.api_base_url)
        .base_file_url(tg.file_base_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        tg.inject_private_message("/start")
        hello = tg.inject_private_message("hello")
        topic = tg.inject_group_message(GROUP, "in a topic", thread_id=5)
        await tg.wait_for_message(USER, "Welcome!")
        echoed = await tg.wait_for_message(USER, "echo: hello")
        assert echoed.reply_to == hello.message_id
        in_topic = await tg.wait_for_message(GROUP, "echo: in a topic")
        assert (in_topic.thread_id, in_topic.reply_to) == (5, topic.message_id)
        await tg.wait_idle()
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert [c.method for c in tg.calls()][:2] == ["getMe", "deleteWebhook"]
    assert tg.texts(USER) == ["Welcome!", "echo: hello"]
    assert tg.total_429s == 0


async def test_wait_for_times_out_with_a_useful_message(tg: FakeTelegram) -> None:
    with pytest.raises(AssertionError, match="never"):
        await tg.wait_for(lambda: False, timeout=0.05, message="never")


@pytest.mark.skipif(not DEFAULT_SPEC.is_file(), reason="no ../shared/specs in this checkout")
async def test_spec_check_flags_unknown_parameters(tg: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER, "fine", reply_markup=keyboard("a"))
    assert tg.spec_problems == []
    async with aiohttp.ClientSession() as http:
        await http.post(
            f"{tg.api_base_url}{TOKEN}/sendMessage",
            json={"chat_id": USER, "text": "x", "bogus_field": 1},
        )
    assert tg.spec_problems == ["sendMessage: unknown parameter 'bogus_field'"]


async def test_whitespace_is_trimmed_like_telegram(tg: FakeTelegram, bot: Bot) -> None:
    tg.rate_limits_enabled = False
    text = "  hi there \n"
    sent = await bot.send_message(USER, text, entities=[MessageEntity("bold", offset=2, length=10)])
    assert sent.text == "hi there"
    assert tg.last_message(USER).entities == [{"type": "bold", "offset": 0, "length": 8}]
    with pytest.raises(BadRequest, match=r"(?i)not modified"):  # only trailing space differs
        await bot.edit_message_text(
            "hi there  ",
            chat_id=USER,
            message_id=sent.message_id,
            entities=[MessageEntity("bold", offset=0, length=8)],
        )


async def test_message_drafts_private_only(tg: FakeTelegram, bot: Bot) -> None:
    assert await bot.send_message_draft(USER, draft_id=1, text="thinking")
    assert await bot.send_message_draft(USER, draft_id=1, text="")
    assert [(d, t) for d, t, _ in tg.drafts[USER]] == [(1, "thinking"), (1, "")]
    with pytest.raises(BadRequest, match=r"(?i)private chats"):
        await bot.send_message_draft(GROUP, draft_id=1, text="x")
    assert tg.messages(USER) == []  # drafts are not messages


async def test_strict_entity_nesting() -> None:
    async with (
        FakeTelegram(token=TOKEN, rate_limits=False, strict_entity_nesting=True) as tg,
        Bot(TOKEN, base_url=tg.api_base_url) as bot,
    ):
        with pytest.raises(BadRequest, match=r"(?i)overlap"):
            await bot.send_message(
                USER,
                "abcdef",
                entities=[MessageEntity("bold", 0, 4), MessageEntity("italic", 2, 4)],
            )
        with pytest.raises(BadRequest, match=r"(?i)code entity can't contain"):
            await bot.send_message(
                USER,
                "abcdef",
                entities=[MessageEntity("code", 0, 6), MessageEntity("bold", 1, 2)],
            )
        await bot.send_message(
            USER, "abcdef", entities=[MessageEntity("bold", 0, 6), MessageEntity("italic", 1, 2)]
        )


async def test_user_document_and_wait_helpers(tg: FakeTelegram, bot: Bot) -> None:
    doc = tg.inject_document(
        USER, b"%PDF-1.7", filename="paper.pdf", content_type="application/pdf"
    )
    update = (await bot.get_updates())[0]
    assert update.message.document.file_name == "paper.pdf"
    tg_file = await bot.get_file(doc.media["file_id"])
    assert bytes(await tg_file.download_as_bytearray()) == b"%PDF-1.7"

    async def reply_later() -> None:
        await bot.send_message(USER, "first")
        await bot.send_message(USER, "second")

    task = asyncio.create_task(reply_later())
    second = await tg.wait_for_message(USER, "second")
    call = await tg.wait_for_call("sendMessage", USER, count=2)
    assert call.result["message_id"] == second.message_id
    await task
    await tg.wait_idle(quiet=0.01)
