"""TaskPoller on virtual time: schedule, batching, errors, deadlines, progress, delivery and
restarts, with in-process fakes (no sockets, no threads: exact virtual timestamps)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.core.errors import PlatformUnavailable
from bot.core.generation.poller import UNCERTAIN_AFTER_RESTART, PollerConfig, TaskPoller
from bot.core.generation.records import NewTask, Provider, TaskStatus, TaskUpdate
from bot.core.models import (
    ConversationKey,
    MediaKind,
    MediaLimits,
    Platform,
    TaskSnapshot,
    UpstreamState,
)
from tests.fakes.clock import FakeClock
from tests.fakes.task_store import MemoryTaskStore
from tests.fakes.tasks import (
    FakeBackend,
    FakeOutbox,
    audio_result,
    image_result,
    rate_limited,
    upstream_down,
)

KEY = ConversationKey(Platform.TELEGRAM, "42")
T0 = 1000.0
DEADLINES = {Provider.MIDJOURNEY: 60.0, Provider.SUNO: 60.0, Provider.KLING: 60.0}


@dataclass
class Rig:
    clock: FakeClock
    store: MemoryTaskStore
    backend: FakeBackend
    outbox: FakeOutbox
    config: PollerConfig

    def poller(self, **changes: Any) -> TaskPoller:
        return TaskPoller(
            store=self.store,
            backend=self.backend,
            outboxes={Platform.TELEGRAM: self.outbox},
            config=dataclasses.replace(self.config, **changes),
            clock=self.clock,
            wall=self.clock.now,
        )

    async def task(
        self,
        upstream: str,
        snapshots: list[TaskSnapshot] | None = None,
        *,
        provider: Provider = Provider.MIDJOURNEY,
        kind: str = "imagine",
        status: TaskStatus = TaskStatus.SUBMITTED,
        due_in: float | None = 2.0,
        status_message: str | None = "7",
        **fields: Any,
    ) -> int:
        """A task as the use cases leave it after a successful submit."""
        if snapshots is not None:
            self.backend.add(upstream, snapshots)
        now = self.clock.now()
        new = NewTask(provider, kind, "tg:42", KEY, {"prompt": "a paper boat"}, reply_to_id="5")
        task_id = await self.store.create_task(new)
        await self.store.update_task(
            TaskUpdate(
                task_id,
                status=status,
                upstream_id=upstream,
                status_message_id=status_message,
                deadline=now + DEADLINES[provider],
                next_poll_at=None if due_in is None else now + due_in,
                **fields,
            )
        )
        return task_id


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock(start=T0)
    config = PollerConfig(
        first_interval=2.0,
        max_interval=10.0,
        growth=2.0,
        jitter=0.0,
        batch_window=0.0,
        max_requests=100,
        deadlines=DEADLINES,
        progress_edit_interval=0.0,
    )
    async with clock.auto():
        yield Rig(clock, MemoryTaskStore(clock), FakeBackend(clock), FakeOutbox(clock), config)


def snaps(upstream: str, *states: tuple[UpstreamState, int]) -> list[TaskSnapshot]:
    return [TaskSnapshot(upstream, state, progress) for state, progress in states]


QUEUED = (UpstreamState.QUEUED, 0)


def done(upstream: str, result: dict[str, Any] | None = None) -> TaskSnapshot:
    return TaskSnapshot(upstream, UpstreamState.SUCCEEDED, 100, result=result or image_result())


async def test_polls_back_off_from_the_first_interval_to_the_maximum(rig: Rig) -> None:
    await rig.task("u1", [*snaps("u1", *([QUEUED] * 6)), done("u1")])
    async with rig.poller():
        await rig.clock.sleep(60)
    times = [t - T0 for _, ids, t in rig.backend.polls if ids == ["u1"]]
    assert times == [2, 6, 14, 24, 34, 44, 54]  # +2, +4, +8, then capped at +10
    task = rig.store.tasks[1]
    assert task.status is TaskStatus.SUCCEEDED and task.delivered_at is not None


async def test_due_tasks_are_batched_per_provider_within_the_request_budget(rig: Rig) -> None:
    for n in range(250):
        await rig.task(f"m{n}", snaps(f"m{n}", QUEUED), due_in=1)
    for n in range(120):
        await rig.task(f"s{n}", snaps(f"s{n}", QUEUED), provider=Provider.SUNO, kind="music")
    for n in range(3):
        await rig.task(f"k{n}", snaps(f"k{n}", QUEUED), provider=Provider.KLING, kind="text2video")
    await rig.clock.sleep(5)
    poller = rig.poller(max_requests=4)
    first = await poller.run_cycle()
    assert (first.requests, first.tasks, first.saturated) == (4, 300, True)
    assert [len(ids) for _, ids, _ in rig.backend.polls] == [100, 100, 50, 50]
    second = await poller.run_cycle()
    third = await poller.run_cycle()
    assert second.requests == 4 and third.requests == 1 and not third.saturated
    polled = [len(ids) for p, ids, _ in rig.backend.polls]
    assert polled == [100, 100, 50, 50, 50, 20, 1, 1, 1]
    assert sorted({p for p, _, _ in rig.backend.polls}) == sorted(Provider)
    assert await poller.run_cycle() == type(first)()  # nothing due any more
    # Each task's row and its submit's update, then one batched write per cycle.
    assert rig.store.writes == 2 * 373 + 3


async def test_upstream_errors_delay_only_their_tasks_and_honour_retry_after(rig: Rig) -> None:
    await rig.task("u1", [done("u1")])
    rig.backend.poll_errors.extend([upstream_down(retry_after=20), RuntimeError("a bug")])
    async with rig.poller():
        await rig.clock.sleep(60)
    times = [t - T0 for _, _, t in rig.backend.polls]
    # 2: refused with Retry-After 20; 22: a bug in a batch only delays that batch (attempt 2:
    # +8 s); 30: the answer.
    assert times == [2, 22, 30]
    assert rig.store.tasks[1].status is TaskStatus.SUCCEEDED
    assert len(rig.outbox.media_posts()) == 1


async def test_a_task_past_its_deadline_expires_with_a_plain_sentence(rig: Rig) -> None:
    await rig.task("u1", snaps("u1", QUEUED))
    await rig.task("u2", [])  # unknown upstream: never in the answers
    async with rig.poller():
        await rig.clock.sleep(100)
    for task in rig.store.tasks.values():
        assert task.status is TaskStatus.EXPIRED
        assert task.error == (
            "Midjourney took more than 60 s, so I stopped waiting for this one. "
            "Please try again later."
        )
        assert task.delivered_at is not None
    finals = [view for _, view, _ in rig.outbox.edits if view.final]
    assert len(finals) == 2 and all("❌ Midjourney took more than" in v.text for v in finals)
    assert rig.outbox.posts == []


async def test_progress_is_shown_with_a_bar_and_preview_at_most_every_interval(rig: Rig) -> None:
    running = [
        TaskSnapshot("u1", UpstreamState.RUNNING, p, preview_url=f"https://p/{p}")
        for p in range(10, 100, 10)
    ]
    await rig.task("u1", [*running, done("u1")])
    async with rig.poller(max_interval=2.0, progress_edit_interval=5.0):
        await rig.clock.sleep(60)
    progress = [(view, t) for _, view, t in rig.outbox.edits if not view.final]
    assert [v.text.splitlines()[-1] for v, _ in progress] == [
        "▰▱▱▱▱▱▱▱▱▱ 10%",
        "▰▰▰▰▱▱▱▱▱▱ 40%",
        "▰▰▰▰▰▰▰▱▱▱ 70%",
    ]
    assert [v.preview_url for v, _ in progress] == ["https://p/10", "https://p/40", "https://p/70"]
    assert all(b - a >= 5.0 for (_, a), (_, b) in itertools.pairwise(progress))
    final = rig.outbox.edits[-1][1]
    assert final.final and final.text.endswith("✅ Done")


async def test_a_result_is_delivered_once_with_its_buttons(rig: Rig) -> None:
    await rig.task("u1", [done("u1")])
    poller = rig.poller()
    async with poller:
        await rig.clock.sleep(5)
        poller.deliver(1)  # a second request for the same delivery changes nothing
        await rig.clock.sleep(5)
    (post,) = rig.outbox.posts
    assert post.reply_to == "5" and post.message.media is not None
    assert post.message.media.kind is MediaKind.PHOTO
    assert [[b.text for b in row] for row in post.message.buttons] == [["U1", "U2", "U3", "U4"]]
    tokens = {b.token for row in post.message.buttons for b in row}
    assert {rig.store.buttons[t].custom_id for t in tokens} == {
        f"MJ::JOB::upsample::{n}::h" for n in range(1, 5)
    }
    task = rig.store.tasks[1]
    assert task.delivered_at is not None and task.result is not None
    assert task.result["sent"] == {"image": post.id}


async def test_oversized_results_become_documents_or_links(rig: Rig) -> None:
    rig.outbox.limits = MediaLimits(photo_max_bytes=50, upload_max_bytes=500)
    rig.backend.files["https://cdn.test/grid.png"] = bytes(200)
    video = {"type": "video", "video_url": "https://cdn.test/v.mp4", "duration": 5.1}
    rig.backend.files["https://cdn.test/v.mp4"] = bytes(1000)
    await rig.task("u1", [done("u1")])
    await rig.task("k1", [done("k1", video)], provider=Provider.KLING, kind="text2video")
    async with rig.poller():
        await rig.clock.sleep(5)
    (photo,) = rig.outbox.media_posts()
    assert photo.message.media is not None and photo.message.media.kind is MediaKind.DOCUMENT
    (link,) = [p for p in rig.outbox.posts if p.message.media is None]
    assert "too large to upload here; watch it at https://cdn.test/v.mp4" in link.message.text


async def test_rows_left_pending_by_a_dead_process_fail_and_are_never_resubmitted(
    rig: Rig,
) -> None:
    task_id = await rig.store.create_task(
        NewTask(Provider.MIDJOURNEY, "imagine", "tg:42", KEY, {"prompt": "a paper boat"})
    )
    await rig.store.update_task(TaskUpdate(task_id, status_message_id="7"))
    await rig.clock.sleep(1)
    async with rig.poller():
        await rig.clock.sleep(5)
    task = rig.store.tasks[1]
    assert task.status is TaskStatus.FAILED and task.error == UNCERTAIN_AFTER_RESTART
    assert rig.backend.submits == [] and rig.backend.polls == []
    (edit,) = [view for mid, view, _ in rig.outbox.edits if mid == "7"]
    assert edit.final and UNCERTAIN_AFTER_RESTART in edit.text


async def test_a_resumed_delivery_skips_the_parts_already_posted(rig: Rig) -> None:
    result = {**audio_result(), "sent": {"clip:0": "77"}}
    task_id = await rig.task(
        "s1", provider=Provider.SUNO, kind="music", status=TaskStatus.SUCCEEDED, due_in=None
    )
    await rig.store.update_task(TaskUpdate(task_id, result=result))
    async with rig.poller():
        await rig.clock.sleep(5)
    (post,) = rig.outbox.posts
    assert post.message.media is not None and post.message.media.title == "Song 2"
    assert post.message.media.thumbnail is not None and post.message.media.performer == "Suno"
    task = rig.store.tasks[1]
    assert task.delivered_at is not None
    assert task.result is not None and task.result["sent"] == {"clip:0": "77", "clip:1": post.id}


async def test_a_stop_during_a_post_finishes_and_records_it_then_resumes(rig: Rig) -> None:
    await rig.task("s1", [done("s1", audio_result())], provider=Provider.SUNO, kind="music")
    gate = rig.outbox.post_gate = asyncio.Event()
    poller = rig.poller()
    await poller.start()
    await rig.clock.sleep(3)  # finished; the first clip's post is in flight (held)
    stopping = asyncio.ensure_future(poller.stop())
    await rig.clock.sleep(1)
    assert not stopping.done()  # the stop waits for the post in flight ...
    gate.set()
    await stopping  # ... which completes and is recorded; clip 2 waits for the next start
    task = rig.store.tasks[1]
    assert task.delivered_at is None and task.result is not None
    assert list(task.result["sent"]) == ["clip:0"]
    assert len(rig.outbox.posts) == 1
    async with rig.poller():
        await rig.clock.sleep(5)
    assert [p.message.media.title for p in rig.outbox.posts if p.message.media] == [
        "Song 1",
        "Song 2",
    ]
    assert rig.store.tasks[1].delivered_at is not None


async def test_a_stop_while_waiting_for_the_chat_slot_posts_nothing(rig: Rig) -> None:
    await rig.task("u1", [done("u1")])
    rig.outbox.slot_gate = asyncio.Event()  # the chat is rate limited for a long time
    poller = rig.poller()
    await poller.start()
    await rig.clock.sleep(3)
    before = rig.clock.now()
    await poller.stop()
    assert rig.clock.now() == before  # no grace period to sit out: nothing was in flight
    assert rig.outbox.posts == [] and rig.store.tasks[1].delivered_at is None
    rig.outbox.slot_gate = None
    async with rig.poller():
        await rig.clock.sleep(1)
    assert len(rig.outbox.posts) == 1 and rig.store.tasks[1].delivered_at is not None


async def test_transient_platform_failures_are_retried_with_backoff(rig: Rig) -> None:
    await rig.task("u1", [done("u1")])
    rig.outbox.post_errors.extend([PlatformUnavailable("down"), PlatformUnavailable("down")])
    async with rig.poller():
        await rig.clock.sleep(60)
    (post,) = rig.outbox.posts
    assert post.at - T0 == 2 + 5 + 15  # after the retry delays of the deliverer
    assert rig.store.tasks[1].delivered_at is not None


async def test_a_rate_limited_part_waits_out_the_penalty_and_posts_once(rig: Rig) -> None:
    await rig.task("u1", [done("u1")])
    rig.outbox.post_errors.extend([rate_limited(7.0), rate_limited(3.0)])
    async with rig.poller():
        await rig.clock.sleep(30)
    (post,) = rig.outbox.posts
    assert post.at - T0 == 2 + 7 + 3  # no deliverer backoff: the chat's penalties only
    assert rig.store.tasks[1].delivered_at is not None


async def test_a_failed_task_edits_its_status_message_or_posts_a_notice(rig: Rig) -> None:
    failure = TaskSnapshot("u1", UpstreamState.FAILED, error="Midjourney's moderation blocked it.")
    await rig.task("u1", [failure])
    await rig.task("u2", [dataclasses.replace(failure, upstream_id="u2")], status_message=None)
    async with rig.poller():
        await rig.clock.sleep(5)
    (edit,) = [view for _, view, _ in rig.outbox.edits]
    assert edit.final and edit.text.endswith("❌ Midjourney's moderation blocked it.")
    (notice,) = rig.outbox.posts
    assert notice.message.text.endswith("❌ Midjourney's moderation blocked it.")
    assert notice.reply_to == "5"


async def test_a_new_task_wakes_the_sleeping_poller(rig: Rig) -> None:
    await rig.task("u1", snaps("u1", QUEUED), due_in=50)
    poller = rig.poller()
    async with poller:
        await rig.clock.sleep(1)
        await rig.task("u2", [done("u2")], due_in=1)
        poller.wake()
        await rig.clock.sleep(3)
        assert [ids for _, ids, _ in rig.backend.polls] == [["u2"]]
        assert rig.backend.polls[0][2] - T0 == 2
