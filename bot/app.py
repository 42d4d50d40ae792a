"""Composition root: builds everything from Settings and owns the service's lifecycle.

Only this module meets every concrete class. Each component gets its own slice of the
configuration through its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bot.adapters.chat_model import CometChatModel
from bot.adapters.image_model import CometImageModel
from bot.adapters.pdf import PypdfText
from bot.adapters.speaker import CometSpeaker
from bot.adapters.task_backend import CometTaskBackend
from bot.adapters.transcriber import CometTranscriber
from bot.config import Settings
from bot.core.access.gatekeeper import Gatekeeper
from bot.core.access.limits import Limits
from bot.core.chat.service import ChatService
from bot.core.chat.voice import VoiceConfig, VoiceService
from bot.core.clock import SystemClock
from bot.core.generation.images import ImageService
from bot.core.generation.poller import TaskPoller
from bot.core.generation.service import GenerationService
from bot.core.lifecycle import SHUTDOWN, WorkGate
from bot.core.models import MediaLimits, Platform
from bot.core.pacing import Pacer, discord_rules, telegram_rules
from bot.core.ports import Outbox
from bot.core.presence import STALE_AFTER, Presence
from bot.core.roles import POLLER, Roles
from bot.launch import StartupError, start_discord, start_telegram
from bot.ops.metrics import Metrics
from bot.ops.runtime import loop_name, settle_heap
from bot.ops.wiring import access_policy, limits_config, open_ops_server, process_name
from bot.platforms.common import Services
from bot.platforms.discord.shards import ShardPlan
from bot.providers.cometapi import CometAPI, DownloadLimits
from bot.providers.cometapi.aiohttp_transport import AiohttpTransport
from bot.store import Store, StoreError, redacted
from bot.store.coordination import Coordination
from bot.wiring import chat_config, generation_configs, images_config

log = logging.getLogger(__name__)


# Once an answer's text has begun, upstream is read at most every 0.1 s: chats show it about
# once a second, so nothing visible is lost, and a burst of tokens costs one wake-up, not one
# each (docs/benchmarks.md, "Streaming"). The first words are never held back.
STREAM_READ_INTERVAL = 0.1


@dataclass(slots=True)
class Core:
    """Everything the platforms share, built once from ``Settings`` (:func:`open_core`)."""

    store: Store
    chat: ChatService
    clock: SystemClock
    """Monotonic time for pacing, cooldowns and polling (the store keeps its own wall clock)."""
    generation: GenerationService
    tasks: TaskPoller
    """Polls unfinished tasks and delivers results; started last, stopped first."""
    outboxes: dict[Platform, Outbox] = field(repr=False)
    """Filled by each platform as it starts; the task poller reaches chats through them."""
    gatekeeper: Gatekeeper
    metrics: Metrics
    process_name: str
    """This process among those sharing the database (``host:pid``): leases, claimed
    parts, the process registry and /healthz carry it."""
    coordination: Coordination
    """How this process reaches the others on the database (nothing to reach on SQLite)."""
    roles: Roles = field(default_factory=Roles)
    """What this process holds now (Telegram, Discord shards, the poller)."""
    images: ImageService | None = None
    """``/image``; ``None`` where it is not offered."""
    voice: VoiceService | None = None
    """``None``: voice notes are not answered (``voice.enabled = false``)."""


async def live_names(store: Store) -> set[str]:
    """The processes heartbeating on the database now (``Presence``)."""
    return {process.name for process in await store.live_processes(STALE_AFTER)}


def _megabytes(value: float) -> int:
    return max(1, int(value * 1024 * 1024))


def media_limits(settings: Settings, platform: Platform) -> MediaLimits:
    """What a platform uploads, from ``[generation]`` (bigger results go as links)."""
    gen = settings.generation
    if platform is Platform.TELEGRAM:
        photo = _megabytes(gen.telegram_photo_max_mb)
        return MediaLimits(photo, max(photo, _megabytes(gen.telegram_upload_max_mb)))
    upload = _megabytes(gen.discord_upload_max_mb)
    return MediaLimits(upload, upload)


def download_limits(settings: Settings) -> DownloadLimits:
    """How long, how slow and how large one download may be, from ``[generation]``."""
    gen = settings.generation
    return DownloadLimits(
        max_bytes=_megabytes(gen.download_max_mb),
        deadline=gen.download_timeout,
        min_rate=gen.download_min_rate_kb * 1024,
    )


def voice_service(settings: Settings, chat: ChatService, client: CometAPI) -> VoiceService | None:
    """Voice notes transcribed by ``[voice]``'s model and answered by ``chat``."""
    voice = settings.voice
    if not voice.enabled:
        return None
    config = VoiceConfig(
        max_seconds=voice.max_seconds,
        max_bytes=_megabytes(voice.max_mb),
        speech_chars=voice.speech_max_chars,
    )
    transcriber = CometTranscriber(client, model=voice.transcription_model)
    speaker = None
    if voice.speech:
        speaker = CometSpeaker(client, model=voice.speech_model, voice=voice.speech_voice)
    return VoiceService(chat=chat, transcriber=transcriber, config=config, speaker=speaker)


@contextlib.asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """The store, the CometAPI client and the chat service, closed in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        storage = settings.storage
        name = process_name()
        try:
            store = await stack.enter_async_context(
                Store.open(storage.location, pool_size=storage.pool_size)
            )
        except (StoreError, OSError) as exc:
            where = redacted(storage.location) if storage.shared else storage.path
            raise StartupError(f"cannot open the database {where}: {exc}") from exc
        coordination = store.coordination()
        api = settings.cometapi
        client = await stack.enter_async_context(
            CometAPI(
                api_key=api.api_key.get_secret_value(),
                base_url=api.base_url,
                read_timeout=api.timeout,
                stream_read_timeout=api.timeout,
                max_retries=api.max_retries,
                # httpx over aiohttp's C parser: ~40% less bot CPU per streamed token
                # (docs/benchmarks.md, streaming); closed with the client.
                transport=AiohttpTransport(),
                download_limits=download_limits(settings),
            )
        )
        clock = SystemClock()
        metrics = Metrics()
        limits = Limits(limits_config(settings.limits, settings.access), store, telemetry=metrics)
        gatekeeper = Gatekeeper(
            policy=access_policy(settings.access, settings.chat),
            limits=limits,
            gate=WorkGate(),
            stats=store,
            telemetry=metrics,
            clock=clock,
        )
        chat_model = CometChatModel(client, telemetry=metrics, read_interval=STREAM_READ_INTERVAL)
        chat = ChatService(
            model=chat_model,
            images=chat_model,
            store=store,
            config=chat_config(settings),
            telemetry=metrics,
            clock=clock,
            turns=gatekeeper,
            pdf=PypdfText(),
        )
        voice = voice_service(settings, chat, client)
        backend = CometTaskBackend(client, telemetry=metrics)
        outboxes: dict[Platform, Outbox] = {}
        generation_config, poller_config = generation_configs(settings)
        tasks = TaskPoller(
            store=store,
            backend=backend,
            outboxes=outboxes,
            config=poller_config,
            clock=clock,
            telemetry=metrics,
            refunds=limits,
            name=name,
            shared=storage.shared,
            handoff=coordination,
            live=lambda: live_names(store),
        )
        generation = GenerationService(
            store=store,
            backend=backend,
            poller=tasks,
            outboxes=outboxes,
            admission=gatekeeper,
            config=generation_config,
            is_admin=gatekeeper.policy.is_admin,
        )
        yield Core(
            store=store,
            chat=chat,
            clock=clock,
            generation=generation,
            tasks=tasks,
            outboxes=outboxes,
            gatekeeper=gatekeeper,
            metrics=metrics,
            process_name=name,
            coordination=coordination,
            images=ImageService(
                model=CometImageModel(client, timeout=settings.images.timeout, telemetry=metrics),
                outboxes=outboxes,
                config=images_config(settings),
                admission=gatekeeper,
            ),
            voice=voice,
        )


def platform_pacer(core: Core, platform: Platform, *, share: float = 1.0) -> Pacer:
    """The one send/edit budget of a platform, shared by chat replies and task statuses;
    every 429 it is told about is counted in the metrics. ``share``: this process's part of
    Discord's overall budget (:func:`discord_share`)."""
    rules = telegram_rules() if platform is Platform.TELEGRAM else discord_rules(share)
    return Pacer(
        rules,
        clock=core.clock,
        on_penalty=lambda lane, seconds: core.metrics.platform_rate_limited(platform.value),
    )


def discord_share(settings: Settings) -> float:
    """The fraction of Discord's per-bot request budget this process may use: its shards out
    of ``shard_count`` (the processes running the other shards spend the rest); 1 unsharded."""
    return ShardPlan.of(settings.discord).share


def platform_services(
    core: Core, settings: Settings, platform: Platform, pacer: Pacer | None = None
) -> Services:
    """What a platform adapter is given: the core's services, the platform's pacer (a new
    :func:`platform_pacer` unless one is passed) and its upload limits."""
    return Services(
        chat=core.chat,
        gatekeeper=core.gatekeeper,
        pacer=pacer or platform_pacer(core, platform, share=discord_share(settings)),
        clock=core.clock,
        generation=core.generation,
        media_limits=media_limits(settings, platform),
        images=core.images,
        voice=core.voice,
    )


def _stop_event() -> asyncio.Event:
    """Set on SIGTERM or SIGINT, so the service stops taking work and shuts down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_service(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Run every configured platform until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or _stop_event()
    async with open_core(settings) as core, contextlib.AsyncExitStack() as platforms:
        try:
            ops = await platforms.enter_async_context(
                open_ops_server(
                    settings.http,
                    metrics=core.metrics,
                    store=core.store,
                    process=core.process_name,
                    roles=core.roles.names,
                )
            )
        except OSError as exc:  # the port is taken, the address is not this host's
            http = settings.http
            raise StartupError(
                f"cannot serve [http] on {http.host}:{http.port}: {exc.strerror or exc}"
            ) from exc
        coordination = core.coordination
        # Another process's finished task for a chat this process posts to.
        await platforms.enter_async_context(
            coordination.listen(lambda task_id: core.tasks.deliver(task_id, announce=False))
        )
        if settings.telegram.enabled:
            await start_telegram(
                core, settings, platforms, ops, coordination, shared=settings.storage.shared
            )
        if settings.discord.enabled:
            await start_discord(
                core, settings, platforms, ops, coordination, shared=settings.storage.shared
            )
        # Last in, first out: the poller stops before the platforms its outboxes use.
        await platforms.enter_async_context(core.tasks)
        core.roles.gain(POLLER)
        # Registered once running; on a clean stop the row goes first (/stats drops us).
        await platforms.enter_async_context(
            Presence(core.store, core.roles, name=core.process_name, clock=core.clock)
        )
        settle_heap()  # after start-up: what is alive now lives as long as the process
        log.info("cometbot is running on %s; stop it with Ctrl-C or SIGTERM", loop_name())
        await stop.wait()
        log.info("stopping: no new work; finishing the replies in flight")
        # Every platform refuses new work at once; what is in flight gets SHUTDOWN.finish, then
        # each platform cuts the rest short (their text so far is still delivered), all within
        # Docker's 10 s stop timeout. Generation tasks stay in the store and resume on start.
        if not await core.gatekeeper.gate.drain(SHUTDOWN.finish, core.clock):
            log.warning(
                "stopping: %d request(s) still running; cutting them short",
                core.gatekeeper.gate.active,
            )
    log.info("stopped")
    return 0


async def run_console(settings: Settings) -> int:
    """Chat in this terminal with the same core (needs only the API key)."""
    from bot.platforms.console import Console, unpaced

    async with open_core(settings) as core:
        services = Services(core.chat, core.gatekeeper, unpaced(core.clock), core.clock)
        return await Console(services).run()
