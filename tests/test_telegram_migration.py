"""A Telegram group that becomes a supergroup, end to end: its conversation (context, model,
persona) and its running tasks follow the new chat id, whether the bot sees Telegram's
migrate service messages or only learns of it from a ``ChatMigrated`` answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.generation.records import TaskStatus
from bot.core.models import ConversationKey, Platform
from tests.fakes.cometapi import FakeCometAPI
from tests.fakes.telegram import FakeTelegram
from tests.generation_world import GenerationWorld, generation_service
from tests.world import chat_requests, history_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]

USER = 42
OLD = -4242
NEW = -1004242


def key(chat_id: int) -> ConversationKey:
    return ConversationKey(Platform.TELEGRAM, str(chat_id))


async def running_task_in_old_group(tg: FakeTelegram, comet: FakeCometAPI) -> None:
    """The old group has a model, one exchange of context and an /imagine still rendering."""
    tg.inject_group_message(OLD, "/model gpt-4o", user_id=USER)
    await tg.wait_for_message(OLD, "Model set to gpt-4o", timeout=10)
    tg.inject_group_message(OLD, "remember the word pelican", user_id=USER, mention_bot=True)
    await tg.wait_for(lambda: len(chat_requests(comet)) == 1, timeout=10)
    comet.auto_advance = False  # Midjourney is slow: the task outlives the group's old id
    tg.inject_group_message(OLD, "/imagine a paper boat", user_id=USER)
    await tg.wait_for(lambda: len(comet.requests_to("/mj/submit/imagine")) == 1, timeout=10)
    await tg.wait_idle(quiet=0.3)


async def assert_followed(tg: FakeTelegram, comet: FakeCometAPI, world: GenerationWorld) -> None:
    comet.auto_advance = True
    await tg.wait_for(lambda: [m for m in tg.messages(NEW) if m.media_type == "photo"], timeout=15)
    store = world.core.store
    task = await store.get_task(1)
    assert task is not None and task.conversation == key(NEW)
    assert task.status is TaskStatus.SUCCEEDED
    assert (await store.get_settings(key(NEW))).model == "gpt-4o"
    assert (await store.get_settings(key(OLD))).model is None
    tg.inject_group_message(NEW, "which word?", user_id=USER, mention_bot=True)
    await tg.wait_for(lambda: len(chat_requests(comet)) == 2, timeout=10)
    request = chat_requests(comet)[1]
    assert request["model"] == "gpt-4o"
    assert "pelican" in str(history_of(request))  # the context came along
    assert [m for m in tg.messages(OLD) if m.media_type == "photo"] == []


async def test_migrate_service_messages_move_the_conversation_and_its_tasks(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        tg.add_chat(OLD, type="group")
        tg.set_chat_admin(OLD, USER)
        async with generation_service(tmp_path, comet, tg) as world:
            await running_task_in_old_group(tg, comet)
            tg.migrate_chat(OLD, NEW, user_id=USER)
            for _ in range(500):  # the service message is handled
                if (await world.core.store.get_settings(key(NEW))).model == "gpt-4o":
                    break
                await asyncio.sleep(0.02)
            await assert_followed(tg, comet, world)


async def test_a_chat_migrated_answer_moves_them_without_the_service_messages(
    tmp_path: Path,
) -> None:
    async with FakeCometAPI(task_steps=2) as comet, FakeTelegram(rate_limits=False) as tg:
        tg.add_chat(OLD, type="group")
        tg.set_chat_admin(OLD, USER)
        async with generation_service(tmp_path, comet, tg) as world:
            await running_task_in_old_group(tg, comet)
            tg.migrate_chat(OLD, NEW, user_id=USER, announce=False)  # the bot missed them
            await assert_followed(tg, comet, world)
        migrated = [c for c in tg.calls(chat_id=OLD) if c.status == 400]
        assert migrated  # the old id was tried, answered "upgraded", and not given up on
