"""SIGTERM while a long answer is still being posted message by message (the real process):
what is shown when it exits ends with the "interrupted" note, never with a bare half
sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.chat.markdown import utf16_len
from bot.core.chat.streaming import CANCEL_NOTE
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.test_shutdown import TOKEN, USER, BotProcess, write_config
from tests.world import rendered

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


async def test_sigterm_while_a_long_answer_is_posted_ends_it_with_the_note(
    tmp_path: Path,
) -> None:
    sentence = "This sentence is one of many in a very long answer. "
    answer = sentence * (40_000 // len(sentence))  # ~10 Telegram messages, ~1 a second
    chunks = [answer[i : i + 400] for i in range(0, len(answer), 400)]
    async with FakeCometAPI() as comet, FakeTelegram(token=TOKEN) as tg:
        bot = BotProcess(write_config(tmp_path, comet, tg), tmp_path / "bot.log")
        comet.script_chat(tokens=chunks, delay=0.005)  # streamed in well under a second
        await bot.start(tg)
        tg.inject_private_message("write a book", user_id=USER)
        await tg.wait_for(lambda: len(tg.messages(USER)) >= 2, timeout=15)
        assert await bot.terminate() == 0
        messages = tg.messages(USER)
        assert tg.violations == 0
    shown = "".join(m.text for m in messages)
    assert len(shown) < len(answer)  # it was cut: there was no time to post it all
    assert messages[-1].text.endswith(rendered(CANCEL_NOTE))
    assert all(utf16_len(m.text) <= 4096 for m in messages)
    # what is shown is the answer's beginning (cut between messages), then the note
    body = " ".join(m.text for m in messages).removesuffix(rendered(CANCEL_NOTE))
    assert " ".join(answer.split()).startswith(" ".join(body.split()))
    assert len(messages) < 10
