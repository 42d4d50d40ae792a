"""GenerationService on virtual time: checks before anything is stored, the paid submit and
its outcomes, admission, buttons and Midjourney modals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.core.errors import PromptRefused, SubmitUncertain, UserFacingError
from bot.core.generation.poller import PollerConfig, TaskPoller
from bot.core.generation.presses import ALREADY, NOT_HERE, NOT_YOURS
from bot.core.generation.prompts import MusicSpec, PromptLimits, VideoSpec
from bot.core.generation.records import ButtonSpec, Provider, TaskStatus, TaskUpdate
from bot.core.generation.requests import (
    ActionRequest,
    ImagineRequest,
    ModalRequest,
    MusicRequest,
    VideoRequest,
)
from bot.core.generation.service import GenerationConfig, GenerationService, Origin
from bot.core.generation.views import DEAD_PARENT, GONE, MODAL_EXPIRED
from bot.core.models import ConversationKey, ImageInput, Platform
from tests.fakes.clock import FakeClock
from tests.fakes.task_store import MemoryTaskStore
from tests.fakes.tasks import FakeBackend, FakeOutbox

KEY = ConversationKey(Platform.TELEGRAM, "42")
ORIGIN = Origin(KEY, "tg:42", reply_to="5")
DEADLINES = {Provider.MIDJOURNEY: 600.0, Provider.SUNO: 300.0, Provider.KLING: 900.0}


class FakeAdmission:
    """Records admissions; refuses while ``refuse`` is set."""

    def __init__(self) -> None:
        self.admitted: list[tuple[str, str]] = []
        self.records = 0
        self.refunded = 0
        self.refuse: str | None = None

    async def admit_generation(self, user: str, kind: str, *, amount: int = 1) -> FakeAdmission:
        if self.refuse:
            raise UserFacingError(self.refuse)
        self.admitted.append((user, kind))
        return self

    def recorded(self) -> None:
        self.records += 1

    async def refund(self) -> bool:
        self.refunded += 1
        return True


@dataclass
class Rig:
    clock: FakeClock
    store: MemoryTaskStore
    backend: FakeBackend
    outbox: FakeOutbox
    poller: TaskPoller
    service: GenerationService
    admission: FakeAdmission


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock(start=5000.0)
    store, backend, outbox = MemoryTaskStore(clock), FakeBackend(clock), FakeOutbox(clock)
    outboxes = {Platform.TELEGRAM: outbox}
    config = PollerConfig(first_interval=2.0, jitter=0.0, deadlines=DEADLINES)
    async with clock.auto():
        poller = TaskPoller(
            store=store,
            backend=backend,
            outboxes=outboxes,
            config=config,
            clock=clock,
            wall=clock.now,
        )
        admission = FakeAdmission()
        service = GenerationService(
            store=store,
            backend=backend,
            poller=poller,
            outboxes=outboxes,
            config=GenerationConfig(
                limits=PromptLimits(mj=100), deadlines=DEADLINES, first_interval=2.0
            ),
            admission=admission,
            wall=clock.now,
        )
        async with poller:
            yield Rig(clock, store, backend, outbox, poller, service, admission)


async def test_imagine_writes_the_row_shows_status_submits_and_schedules(rig: Rig) -> None:
    image = ImageInput(b"\xff\xd8\xffjpeg")
    task_id = await rig.service.imagine(ORIGIN, "  a paper   boat --ar 16:9 ", images=[image])
    assert rig.backend.submits == [ImagineRequest("a paper boat --ar 16:9", (image,))]
    task = rig.store.tasks[task_id]
    assert (task.provider, task.kind) == (Provider.MIDJOURNEY, "imagine")
    assert task.request == {"prompt": "a paper boat --ar 16:9", "images": 1}  # counted, not stored
    assert task.status is TaskStatus.SUBMITTED and task.upstream_id == "up1"
    assert task.deadline == 5000.0 + 600 and task.next_poll_at == 5000.0 + 2
    assert task.owner_id == "tg:42" and task.reply_to_id == "5"
    (status,) = rig.outbox.posts
    assert status.reply_to == "5" and status.id == task.status_message_id
    assert status.message.text == "🎨 Imagine: a paper boat --ar 16:9\n⏳ Sending it to Midjourney…"
    assert rig.admission.admitted == [("tg:42", "imagine")] and rig.admission.records == 1
    await rig.clock.sleep(30)
    assert rig.store.tasks[task_id].delivered_at is not None  # the poller took it from there


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda s: s.imagine(ORIGIN, "   "), "Tell me what to imagine"),
        (lambda s: s.imagine(ORIGIN, "x" * 101), "too long (101 characters); the limit is 100"),
        (lambda s: s.imagine(ORIGIN, "a cat --ar wide"), "--ar needs width:height"),
        (lambda s: s.imagine(ORIGIN, "a cat --fast"), "Please remove --fast"),
        (lambda s: s.music(ORIGIN, MusicSpec()), "Describe the song"),
        (lambda s: s.music(ORIGIN, MusicSpec(title="x", lyrics="la")), "need a style"),
        (lambda s: s.video(ORIGIN, VideoSpec("a boat", duration=7)), "5 or 10 seconds"),
        (lambda s: s.video(ORIGIN, VideoSpec("")), "Describe the video"),
        (lambda s: s.blend(ORIGIN, [ImageInput(b"x")]), "2 to 5 images"),
        (lambda s: s.describe(ORIGIN, link="ftp://x"), "image link"),
    ],
)
async def test_bad_input_is_refused_before_anything_happens(
    rig: Rig, call: object, expected: str
) -> None:
    with pytest.raises(UserFacingError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        await call(rig.service)  # type: ignore[operator]
    assert rig.store.tasks == {} and rig.outbox.posts == [] and rig.backend.submits == []
    assert rig.admission.admitted == []


async def test_an_unclear_submit_fails_the_task_and_is_never_resubmitted(rig: Rig) -> None:
    rig.backend.submit_errors.append(SubmitUncertain())
    task_id = await rig.service.music(ORIGIN, MusicSpec(description="a calm piano piece"))
    await rig.clock.sleep(120)
    assert len(rig.backend.submits) == 1
    task = rig.store.tasks[task_id]
    assert task.status is TaskStatus.FAILED and task.upstream_id is None
    assert task.error is not None and "did not send it again" in task.error
    assert task.delivered_at is not None
    (_, view, _) = rig.outbox.edits[-1]
    assert view.final and "to avoid paying twice" in view.text
    assert rig.admission.refunded == 0  # it may have been charged: the quota stays used


async def test_a_refused_submit_says_why_and_gives_the_quota_back(rig: Rig) -> None:
    rig.backend.submit_errors.append(PromptRefused("Midjourney refused the prompt: banned."))
    task_id = await rig.service.imagine(ORIGIN, "a gory scene")
    await rig.clock.sleep(1)
    task = rig.store.tasks[task_id]
    assert task.status is TaskStatus.FAILED and task.delivered_at is not None
    assert rig.outbox.edits[-1][1].text.endswith("❌ Midjourney refused the prompt: banned.")
    assert rig.admission.refunded == 1


async def test_a_refused_admission_stores_and_sends_nothing(rig: Rig) -> None:
    rig.admission.refuse = "You already have 3 generations in progress."
    with pytest.raises(UserFacingError, match="3 generations"):
        await rig.service.video(ORIGIN, VideoSpec("a boat"))
    assert rig.store.tasks == {} and rig.outbox.posts == [] and rig.backend.submits == []


async def succeeded_grid(rig: Rig) -> int:
    task_id = await rig.service.imagine(ORIGIN, "a paper boat")
    await rig.clock.sleep(30)
    assert rig.store.tasks[task_id].status is TaskStatus.SUCCEEDED
    return task_id


async def test_a_button_submits_its_exact_custom_id_and_replies_to_its_message(rig: Rig) -> None:
    grid = await succeeded_grid(rig)
    token = next(t for t, b in rig.store.buttons.items() if b.label == "U2")
    ref = await rig.service.button(token, ORIGIN)
    posts_before = len(rig.outbox.posts)
    task_id = await rig.service.press(Origin(KEY, "tg:42", reply_to="900"), ref)
    request = rig.backend.submits[-1]
    assert isinstance(request, ActionRequest)
    assert request.parent == "up1" and request.custom_id == "MJ::JOB::upsample::2::h"
    task = rig.store.tasks[task_id]
    assert task.parent_id == grid and task.owner_id == "tg:42" and task.reply_to_id == "900"
    status = rig.outbox.posts[posts_before]  # posted after the submit, replying to the grid
    assert status.reply_to == "900" and status.message.text.startswith("🔘 U2: a boat")


async def test_buttons_of_unknown_failed_or_expired_tasks_say_so(rig: Rig) -> None:
    with pytest.raises(UserFacingError, match=GONE):
        await rig.service.button("no-such-token", ORIGIN)
    grid = await succeeded_grid(rig)
    token = next(iter(rig.store.buttons))
    await rig.store.update_task(TaskUpdate(grid, status=TaskStatus.EXPIRED))
    with pytest.raises(UserFacingError) as info:
        await rig.service.button(token, ORIGIN)
    assert info.value.message == DEAD_PARENT


async def test_a_describe_button_imagines_its_prompt(rig: Rig) -> None:
    rig.backend.result = {"type": "prompts", "prompts": ["a red boat", "a blue boat"]}
    task_id = await rig.service.describe(ORIGIN, image=ImageInput(b"img"))
    await rig.clock.sleep(30)
    assert rig.store.tasks[task_id].status is TaskStatus.SUCCEEDED
    prompts = next(p for p in rig.outbox.posts if p.message.buttons)
    assert "1. a red boat" in prompts.message.text and "2. a blue boat" in prompts.message.text
    second = prompts.message.buttons[0][1]
    assert second.text == "🎨 2"
    ref = await rig.service.button(second.token, ORIGIN)
    await rig.service.press(Origin(KEY, "tg:42", reply_to=prompts.id), ref)
    assert rig.backend.submits[-1] == ImagineRequest("a blue boat")


async def test_custom_zoom_asks_then_completes_with_a_modal(rig: Rig) -> None:
    await succeeded_grid(rig)
    ref_id = await rig.store.add_buttons(
        1, [ButtonSpec("MJ::CustomZoom::h", "Custom Zoom", "🔍", "custom_zoom")]
    )
    ref = await rig.service.button(ref_id[0], ORIGIN)
    rig.backend.submit_waiting.append(True)
    task_id = await rig.service.press(Origin(KEY, "tg:42", reply_to="900"), ref)
    task = rig.store.tasks[task_id]
    assert task.status is TaskStatus.WAITING and task.upstream_id == "up2"
    question = rig.outbox.posts[-1]
    assert question.message.ask and "zoom factor from 1 to 2" in question.message.text
    assert task.status_message_id == question.id and task.next_poll_at is None
    answer_origin = Origin(KEY, "tg:42", reply_to=question.id)
    # someone else's reply, or a reply to another message, is not an answer
    assert not await rig.service.answer(Origin(KEY, "tg:9"), question.id, "1.5")
    assert not await rig.service.answer(answer_origin, "12345", "1.5")
    with pytest.raises(UserFacingError, match="zoom factor"):
        await rig.service.answer(answer_origin, question.id, "make it wider")
    assert rig.store.tasks[task_id].status is TaskStatus.WAITING
    assert await rig.service.answer(answer_origin, question.id, "1.5")
    assert rig.backend.submits[-1] == ModalRequest("up2", "a boat --zoom 1.5")
    task = rig.store.tasks[task_id]
    assert task.status is TaskStatus.SUBMITTED and task.upstream_id == "up3"
    await rig.clock.sleep(30)
    assert rig.store.tasks[task_id].delivered_at is not None


async def test_a_late_answer_to_a_modal_expires_it(rig: Rig) -> None:
    await succeeded_grid(rig)
    (token,) = await rig.store.add_buttons(
        1, [ButtonSpec("MJ::CustomZoom::h", "Custom Zoom", "🔍", "custom_zoom")]
    )
    rig.backend.submit_waiting.append(True)
    task_id = await rig.service.press(ORIGIN, await rig.service.button(token, ORIGIN))
    question = rig.outbox.posts[-1]
    await rig.clock.sleep(rig.service.config.modal_timeout + 1)
    assert await rig.service.answer(ORIGIN, question.id, "1.5")
    await rig.clock.sleep(1)
    task = rig.store.tasks[task_id]
    assert task.status is TaskStatus.EXPIRED and task.error == MODAL_EXPIRED
    assert rig.outbox.edits[-1][0] == question.id and MODAL_EXPIRED in rig.outbox.edits[-1][1].text
    assert [s.kind for s in rig.backend.submits] == ["imagine", "action"]


async def test_music_and_video_requests_carry_the_configured_defaults(rig: Rig) -> None:
    lofi = MusicSpec(description="lofi beats", instrumental=True)
    punk = MusicSpec(lyrics="[Verse]\nla", style="punk", title="City")
    wide = VideoSpec("a boat", duration=10, aspect_ratio="9:16")
    image = ImageInput(b"img")
    await rig.service.music(ORIGIN, lofi)
    await rig.service.music(ORIGIN, punk)
    await rig.service.video(ORIGIN, wide)
    await rig.service.video(ORIGIN, VideoSpec(""), image=image)
    assert rig.backend.submits == [
        MusicRequest(lofi, "chirp-v4"),
        MusicRequest(punk, "chirp-v4"),
        VideoRequest(wide, "kling-v2-1"),
        VideoRequest(VideoSpec(""), "kling-v2-1", image=image),
    ]
    assert [(t.provider, t.kind, t.request) for t in rig.store.tasks.values()] == [
        (
            Provider.SUNO,
            "music",
            {"instrumental": True, "mv": "chirp-v4", "description": "lofi beats"},
        ),
        (
            Provider.SUNO,
            "music",
            {
                "instrumental": False,
                "mv": "chirp-v4",
                "lyrics": "[Verse]\nla",
                "style": "punk",
                "title": "City",
            },
        ),
        (
            Provider.KLING,
            "text2video",
            {"prompt": "a boat", "duration": 10, "model": "kling-v2-1", "aspect_ratio": "9:16"},
        ),
        (Provider.KLING, "image2video", {"prompt": "", "duration": 5, "model": "kling-v2-1"}),
    ]
    assert [a[1] for a in rig.admission.admitted] == ["music", "music", "video", "video"]


async def test_a_button_works_only_in_its_own_chat_for_its_owner_once(rig: Rig) -> None:
    await succeeded_grid(rig)
    token = next(t for t, b in rig.store.buttons.items() if b.label == "U1")
    other_chat = Origin(ConversationKey(Platform.TELEGRAM, "-100999"), "tg:42", reply_to="1")
    with pytest.raises(UserFacingError, match=NOT_HERE):
        await rig.service.button(token, other_chat)
    with pytest.raises(UserFacingError, match=NOT_HERE):
        await rig.service.press(other_chat, rig.store.buttons[token])  # no way around it
    with pytest.raises(UserFacingError, match=NOT_YOURS):
        await rig.service.button(token, Origin(KEY, "tg:7"))
    topic = Origin(ConversationKey(Platform.TELEGRAM, "42", "5"), "tg:42", reply_to="9")
    ref = await rig.service.button(token, topic)  # a topic of the same chat is that chat
    with pytest.raises(UserFacingError, match=ALREADY):
        await rig.service.button(token, ORIGIN)  # pressed again before the first submits
    await rig.service.press(topic, ref)
    with pytest.raises(UserFacingError, match=ALREADY):
        await rig.service.button(token, ORIGIN)  # and for a few seconds after
    await rig.clock.sleep(rig.service.config.press_window)
    await rig.service.press(ORIGIN, await rig.service.button(token, ORIGIN))
    assert [s.kind for s in rig.backend.submits] == ["imagine", "action", "action"]


async def test_admins_and_anyone_when_configured_may_press(rig: Rig) -> None:
    await succeeded_grid(rig)
    token = next(t for t, b in rig.store.buttons.items() if b.label == "U1")
    admin = GenerationService(
        store=rig.store,
        backend=rig.backend,
        poller=rig.poller,
        outboxes={Platform.TELEGRAM: rig.outbox},
        config=GenerationConfig(deadlines=DEADLINES),
        wall=rig.clock.now,
        is_admin=lambda user: user == "tg:1",
    )
    assert await admin.button(token, Origin(KEY, "tg:1"))
    anyone = GenerationService(
        store=rig.store,
        backend=rig.backend,
        poller=rig.poller,
        outboxes={Platform.TELEGRAM: rig.outbox},
        config=GenerationConfig(deadlines=DEADLINES, buttons_owner_only=False),
        wall=rig.clock.now,
    )
    assert await anyone.button(token, Origin(KEY, "tg:7"))
    with pytest.raises(UserFacingError, match=NOT_HERE):
        await anyone.button(token, Origin(ConversationKey(Platform.DISCORD, "42"), "tg:42"))
