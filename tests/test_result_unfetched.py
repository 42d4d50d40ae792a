"""Results that cannot be fetched: reported on the status message, refunded when nothing was
posted, logged and counted (the deliverer, on virtual time; the rig is the poller's)."""

from __future__ import annotations

from bot.core.errors import UpstreamError
from bot.core.generation.poller import TaskPoller
from bot.core.generation.records import Provider, Task
from bot.core.models import Platform
from bot.core.telemetry import NullTelemetry
from tests.fakes.tasks import audio_result
from tests.test_tasks_poller import Rig, done, rig

__all__ = ["rig"]  # the fixture, shared with the poller's tests


class _Refunds:
    def __init__(self) -> None:
        self.refunded: list[int] = []

    async def refund_task(self, task: Task) -> None:
        self.refunded.append(task.id)


class _Telemetry(NullTelemetry):
    def __init__(self) -> None:
        self.unfetched: list[tuple[str, str]] = []

    def result_unfetched(self, provider: str, reason: str) -> None:
        self.unfetched.append((provider, reason))


def _reporting_poller(rig: Rig) -> tuple[TaskPoller, _Refunds, _Telemetry]:
    refunds, telemetry = _Refunds(), _Telemetry()
    poller = TaskPoller(
        store=rig.store,
        backend=rig.backend,
        outboxes={Platform.TELEGRAM: rig.outbox},
        config=rig.config,
        clock=rig.clock,
        wall=rig.clock.now,
        refunds=refunds,
        telemetry=telemetry,
    )
    return poller, refunds, telemetry


async def test_a_result_that_answers_404_is_reported_refunded_and_counted(rig: Rig) -> None:
    rig.backend.missing.add("https://cdn.test/grid.png")
    await rig.task("u1", [done("u1")])
    poller, refunds, telemetry = _reporting_poller(rig)
    async with poller:
        await rig.clock.sleep(10)  # done at 2 s, one more try 3 s later, then given up
    assert [url for url, _ in rig.backend.downloads] == ["https://cdn.test/grid.png"] * 2
    assert rig.outbox.posts == []
    (edit,) = [view for _, view, _ in rig.outbox.edits]
    assert edit.final and edit.text == (
        "🎨 Imagine: a paper boat\n❌ The result could not be fetched from Midjourney, so it "
        "does not count against your quota. Please try again."
    )
    assert refunds.refunded == [1] and telemetry.unfetched == [("mj", "not_found")]
    assert rig.store.tasks[1].delivered_at is not None


async def test_a_download_that_keeps_failing_is_reported_after_the_long_schedule(
    rig: Rig,
) -> None:
    slow = [UpstreamError("too slow", reason="timeout") for _ in range(6)]
    rig.backend.download_errors.extend(slow)
    await rig.task("u1", [done("u1")])
    poller, refunds, telemetry = _reporting_poller(rig)
    async with poller:
        await rig.clock.sleep(1200)
        assert rig.outbox.edits == [] and refunds.refunded == []  # still retrying
        await rig.clock.sleep(200)  # 5 + 15 + 60 + 300 + 900 s after the first try
    (edit,) = [view for _, view, _ in rig.outbox.edits]
    assert "could not be fetched from Midjourney" in edit.text
    assert refunds.refunded == [1] and telemetry.unfetched == [("mj", "timeout")]


async def test_a_partly_fetched_result_says_so_and_is_not_refunded(rig: Rig) -> None:
    rig.backend.missing.add("https://cdn.test/2.mp3")
    await rig.task("s1", [done("s1", audio_result())], provider=Provider.SUNO, kind="music")
    poller, refunds, telemetry = _reporting_poller(rig)
    async with poller:
        await rig.clock.sleep(10)
    assert [p.message.text for p in rig.outbox.media_posts()] == ["🎵 Song 1 — synth-pop"]
    (edit,) = [view for _, view, _ in rig.outbox.edits]
    assert edit.text.endswith(
        "❌ Part of the result could not be fetched from Suno. Please try again."
    )
    assert refunds.refunded == [] and telemetry.unfetched == [("suno", "not_found")]
