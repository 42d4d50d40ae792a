"""FakeDiscord driven by the real discord.py 2.7: login, gateway events, slash commands,
components, modals, Discord's limits and 429 handling. No internet, no real token."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from tests.fakes.clock import FakeClock
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_payloads import JSON
from tests.fakes.discord_rules import (
    DEFAULT_SPEC_PATH,
    FixedWindowLimiter,
    check_components,
    check_embeds,
    load_spec_validator,
)

pytestmark = pytest.mark.e2e

NO_PINGS = discord.AllowedMentions.none()
HAS_SPEC = DEFAULT_SPEC_PATH.is_file()
DcFactory = Callable[..., Awaitable[FakeDiscord]]


@pytest.fixture
async def make_dc(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DcFactory]:
    fakes: list[FakeDiscord] = []

    async def factory(**kwargs: Any) -> FakeDiscord:
        fake = FakeDiscord(**kwargs)
        await fake.start()
        fake.install(monkeypatch)
        fakes.append(fake)
        return fake

    yield factory
    for fake in fakes:
        await fake.close()


@pytest.fixture
async def dc(make_dc: DcFactory) -> FakeDiscord:
    return await make_dc()


def make_bot(
    *, message_content: bool = True, cls: type[commands.Bot] = commands.Bot
) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = message_content
    return cls(command_prefix="!", intents=intents, guild_ready_timeout=0.05)


def row(*buttons: tuple[str, str]) -> JSON:
    return {
        "type": 1,
        "components": [
            {"type": 2, "style": 1, "label": label, "custom_id": cid} for label, cid in buttons
        ],
    }


async def test_login_ready_and_tree_sync(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(description="Ask the model")
    async def ask(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.send_message(prompt)

    async with dc.running(bot):
        assert bot.user is not None and bot.user.id == dc.bot_id
        assert bot.application_id == dc.app_id
        synced = await bot.tree.sync()

    assert [c.name for c in synced] == ["ask"]
    assert synced[0].id == int(dc.commands()[0]["id"])
    first = [(c.method, c.path, c.status) for c in dc.calls()][:3]
    assert first == [
        ("GET", "/users/@me", 200),
        ("GET", "/oauth2/applications/@me", 200),
        ("PUT", f"/applications/{dc.app_id}/commands", 200),
    ]
    assert dc.identify is not None and dc.identify["intents"] & discord.Intents.message_content.flag
    assert dc.gateway.heartbeats >= 1
    assert dc.errors == []


async def test_wrong_token_fails_login(make_dc: DcFactory) -> None:
    dc = await make_dc(token="the-right-one")
    with pytest.raises(discord.LoginFailure):
        async with dc.running(make_bot(), token="a-wrong-one"):
            pass


async def test_dm_message_reaches_on_message_and_reply_pings_nobody(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        data = await message.attachments[0].read() if message.attachments else b""
        text = f"<@{message.author.id}> @everyone got {message.content!r} +{len(data)}B"
        await message.channel.send(text, allowed_mentions=NO_PINGS)

    async with dc.running(bot):
        sent = await dc.say("hello", files=[("notes.txt", b"abcdef")])
        dm = int(sent["channel_id"])
        reply = await dc.wait_for(lambda: dc.last_message(dm))
        created = await bot.create_dm(discord.Object(int(dc.user["id"])))
        assert created.id == dm

    assert reply.content == f"<@{dc.user['id']}> @everyone got 'hello' +6B"
    assert reply.allowed_mentions == {"parse": []}
    assert reply.pinged_user_ids() == [] and not reply.pings_everyone()
    assert [m.from_bot for m in dc.timeline(dm)] == [False, True]
    assert dc.errors == []


async def test_guild_create_mentions_replies_and_guild_slash(dc: FakeDiscord) -> None:
    bot = make_bot()
    seen: asyncio.Queue[discord.Message] = asyncio.Queue()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        await seen.put(message)
        if bot.user in message.mentions:
            await message.reply("at your service", mention_author=False, allowed_mentions=NO_PINGS)

    @bot.tree.command(description="Where am I")
    async def where(interaction: discord.Interaction) -> None:
        assert interaction.guild is not None and isinstance(interaction.user, discord.Member)
        channel = interaction.channel
        name = channel.name if isinstance(channel, discord.TextChannel) else "?"
        await interaction.response.send_message(f"{interaction.guild.name}/{name}")

    guild = dc.make_guild("Comets", channels=["general", "random"], threads=["ideas"])
    general = dc.channel(guild, "general")
    gid = int(general["id"])
    async with dc.running(bot):  # the guild is in READY, then GUILD_CREATE
        assert bot.get_guild(int(guild["id"])) is not None
        assert isinstance(bot.get_channel(int(dc.channel(guild, "ideas")["id"])), discord.Thread)

        later = dc.make_guild("Later", channels=["lobby"])
        async with asyncio.timeout(5):
            joined, _ = await asyncio.gather(bot.wait_for("guild_join"), dc.guild_create(later))
        assert joined.name == "Later" and joined.me is not None

        await dc.say("just chatting", channel=general)
        plain = await asyncio.wait_for(seen.get(), 5)
        ping = await dc.say("what's up?", channel=general, mention_bot=True)
        reply = await dc.wait_for(lambda: dc.last_message(gid))
        inter = await dc.interact(dc.slash("where", channel=general))
        await dc.wait_for(lambda: inter.acked)

    assert plain.content == "just chatting" and plain.guild is not None
    assert isinstance(plain.author, discord.Member)
    assert (
        reply.message_reference is not None and reply.message_reference["message_id"] == ping["id"]
    )
    assert reply.referenced_message is not None and reply.referenced_message["id"] == ping["id"]
    assert reply.allowed_mentions == {"parse": [], "replied_user": False}
    assert reply.pinged_user_ids() == []
    assert dc.message(inter.original_message_id or 0).content == "Comets/general"
    assert dc.errors == []


async def test_guild_messages_are_blank_without_message_content_intent(dc: FakeDiscord) -> None:
    bot = make_bot(message_content=False)
    seen: asyncio.Queue[discord.Message] = asyncio.Queue()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        await seen.put(message)

    guild = dc.make_guild()
    general = dc.channel(guild, "general")
    async with dc.running(bot):
        await dc.say("secret", channel=general)
        await dc.say("hey bot", channel=general, mention_bot=True)
        await dc.say("dm text")
        got = [await asyncio.wait_for(seen.get(), 5) for _ in range(3)]

    assert got[0].content == ""
    assert got[1].content.endswith("hey bot")
    assert got[2].content == "dm text"


async def test_slash_defer_followup_file_and_edit_original(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(description="Ask")
    async def ask(interaction: discord.Interaction, prompt: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"thinking about {prompt}…", allowed_mentions=NO_PINGS)
        await interaction.edit_original_response(content=f"answer: {prompt}")
        data = discord.File(io.BytesIO(b"hello"), "answer.txt")
        await interaction.followup.send("as a file", file=data, wait=True)

    async with dc.running(bot):
        await bot.tree.sync()
        inter = await dc.interact(dc.slash("ask", {"prompt": "comets"}))
        await dc.wait_for(lambda: inter.followup_ids)
        file_msg = dc.message(inter.followup_ids[0])
        async with (
            aiohttp.ClientSession() as http,
            http.get(file_msg.attachments[0]["url"]) as resp,
        ):
            served = await resp.read()

    assert inter.payload["data"]["id"] == dc.commands()[0]["id"]
    assert dc.interaction_responses(inter.id) == [{"type": 5}]
    original = dc.message(inter.original_message_id or 0)
    assert original.content == "answer: comets" and not original.loading
    assert original.history == ["", "thinking about comets…", "answer: comets"]
    assert original.edit_count == 2
    assert original.interaction_metadata is not None
    assert [(f.filename, f.size) for f in file_msg.files] == [("answer.txt", 5)]
    assert file_msg.attachments[0]["content_type"] == "text/plain"
    assert served == b"hello"
    assert dc.errors == []


async def test_late_ack_gets_unknown_interaction(dc: FakeDiscord) -> None:
    bot = make_bot()
    started, go = asyncio.Event(), asyncio.Event()
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @bot.tree.command(description="Slow")
    async def slow(interaction: discord.Interaction) -> None:
        started.set()
        await go.wait()
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as exc:
            outcome.set_result(exc)

    async with dc.running(bot):
        inter = await dc.interact(dc.slash("slow"))
        await asyncio.wait_for(started.wait(), 5)
        dc.advance(3.5)
        go.set()
        exc = await asyncio.wait_for(outcome, 5)

    assert isinstance(exc, discord.NotFound) and exc.code == 10062
    assert not inter.acked
    assert [(e.status, e.code) for e in dc.errors] == [(404, 10062)]


async def test_second_ack_and_expired_token(dc: FakeDiscord) -> None:
    bot = make_bot()
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @bot.tree.command(description="Hi")
    async def hi(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        dc.advance(15 * 60 + 1)
        try:
            await interaction.followup.send("too late")
        except discord.HTTPException as exc:
            outcome.set_result(exc)

    async with dc.running(bot):
        inter = await dc.interact(dc.slash("hi"))
        exc = await asyncio.wait_for(outcome, 5)
        url = f"{dc.api_base_url}/interactions/{inter.id}/{inter.token}/callback"
        async with aiohttp.ClientSession() as http, http.post(url, json={"type": 6}) as resp:
            status, body = resp.status, await resp.json()

    assert isinstance(exc, discord.HTTPException) and (exc.status, exc.code) == (401, 50027)
    assert (status, body["code"]) == (400, 40060)


@pytest.mark.parametrize("with_spec", [True, False], ids=["spec", "no-spec"])
async def test_message_limits_are_enforced(make_dc: DcFactory, with_spec: bool) -> None:
    dc = await make_dc(rate_limit=None, spec_path=DEFAULT_SPEC_PATH if with_spec else None)
    assert dc.spec_enabled == (with_spec and HAS_SPEC)
    bot = make_bot()
    six_rows = [row((f"b{i}", f"b{i}")) for i in range(6)]

    async with dc.running(bot):
        ch = bot.get_partial_messageable(int(dc.dm_channel()["id"]))
        long_id = discord.ui.View()
        long_id.add_item(discord.ui.Button(label="x", custom_id="x" * 101))
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=ch.id)
        attempts: dict[str, Callable[[], Awaitable[Any]]] = {
            "content": lambda: ch.send("x" * 2001),
            "custom_id": lambda: ch.send("pick", view=long_id),
            "rows": lambda: bot.http.request(route, json={"content": "r", "components": six_rows}),
            "embeds": lambda: ch.send(embeds=[discord.Embed(description="d" * 3500)] * 2),
            "empty": lambda: bot.http.request(route, json={"content": ""}),
        }
        failures: dict[str, discord.HTTPException] = {}
        for name, attempt in attempts.items():
            with pytest.raises(discord.HTTPException) as info:
                await attempt()
            failures[name] = info.value
        ok = await ch.send("x" * 2000)
        with pytest.raises(discord.NotFound) as unknown:
            await ch.get_partial_message(12345).edit(content="gone")

    assert unknown.value.code == 10008

    assert {k: (e.status, e.code) for k, e in failures.items()} == {
        "content": (400, 50035),
        "custom_id": (400, 50035),
        "rows": (400, 50035),
        "embeds": (400, 50035),
        "empty": (400, 50006),
    }
    details = [e.details for e in dc.errors]
    assert "content: BASE_TYPE_MAX_LENGTH: Must be 2000 or fewer in length." in details[0]
    assert any("components.0.components.0.custom_id" in d for d in details[1])
    assert "components: BASE_TYPE_MAX_LENGTH: Must be 5 or fewer in length." in details[2]
    assert any("MAX_EMBED_SIZE_EXCEEDED" in d for d in details[3])
    assert len(ok.content) == 2000 and dc.last_message(ch.id) is not None


@pytest.mark.skipif(not HAS_SPEC, reason="../shared/specs/discord-openapi.json is absent")
async def test_spec_violation_is_recorded(dc: FakeDiscord) -> None:
    async with dc.running(bot := make_bot()):
        ch_id = int(dc.dm_channel()["id"])
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=ch_id)
        with pytest.raises(discord.HTTPException) as info:
            await bot.http.request(route, json={"content": "hi", "tts": "yes"})
    assert info.value.code == 50035
    assert len(dc.spec_errors) == 1 and "tts" in dc.spec_errors[0].details[0]


async def test_429_on_edits_is_slept_through(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(description="Stream")
    async def stream(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("part")
        await interaction.edit_original_response(content="part two")

    async with dc.running(bot):
        ch = bot.get_partial_messageable(int(dc.dm_channel()["id"]))
        msg = await ch.send("draft")
        dc.fail_next(ch.id, retry_after=0.2, method="PATCH")
        edited = await msg.edit(content="final")

        dc.fail_next("/messages/@original", retry_after=0.1)
        inter = await dc.interact(dc.slash("stream"))
        await dc.wait_for(lambda: dc.message(inter.original_message_id or 0).edit_count)

    assert edited.content == "final" and dc.message(msg.id).content == "final"
    assert [c.status for c in dc.calls("PATCH", f"/messages/{msg.id}")] == [429, 200]
    assert [c.status for c in dc.calls("PATCH", "@original")] == [429, 200]
    assert dc.ratelimit_hits[ch.id] == 2
    assert dc.message(inter.original_message_id or 0).content == "part two"
    assert dc.errors == []


async def test_bucket_headers_make_discord_py_wait_instead_of_429(make_dc: DcFactory) -> None:
    dc = await make_dc(rate_limit=(2, 0.3))
    async with dc.running(bot := make_bot()):
        ch = bot.get_partial_messageable(int(dc.dm_channel()["id"]))
        for i in range(3):
            await ch.send(f"m{i}")
    posts = dc.calls("POST", f"/channels/{ch.id}/messages")
    assert [c.status for c in posts] == [200, 200, 200]
    assert not dc.ratelimit_hits
    assert dc.route_counts["POST /channels/{channel_id}/messages"] == 3


class Regenerate(discord.ui.View):
    picked: ClassVar[list[str]] = []

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Regenerate", custom_id="regen:1", style=discord.ButtonStyle.primary)
    async def regen(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content="regenerated", view=self)

    @discord.ui.select(custom_id="pick:1", options=[discord.SelectOption(label="a")])
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        self.picked.extend(select.values)
        await interaction.response.defer()


class PersistentBot(commands.Bot):
    async def setup_hook(self) -> None:
        self.add_view(Regenerate())


async def test_persistent_button_click_updates_the_message(dc: FakeDiscord) -> None:
    dm = int(dc.dm_channel()["id"])
    select = {"type": 3, "custom_id": "pick:1", "options": [{"label": "a", "value": "a"}]}
    rows = [row(("Regenerate", "regen:1")), {"type": 1, "components": [select]}]
    old = dc.seed_bot_message(dm, "first answer", components=rows)
    async with dc.running(make_bot(cls=PersistentBot)):
        inter = await dc.interact(dc.click(old, "regen:1"))
        await dc.wait_for(lambda: inter.acked)
        chosen = await dc.interact(dc.click(old, "pick:1", values=["a"]))
        await dc.wait_for(lambda: chosen.acked)

    assert inter.ack_type == 7 and chosen.ack_type == 6
    assert chosen.payload["data"] == {"custom_id": "pick:1", "component_type": 3, "values": ["a"]}
    assert Regenerate.picked == ["a"]
    msg = dc.message(old.id)
    assert msg.content == "regenerated" and msg.edit_count == 1
    assert msg.custom_ids() == ["regen:1", "pick:1"]
    assert dc.errors == []


async def test_autocomplete_returns_choices(dc: FakeDiscord) -> None:
    bot = make_bot()
    models = ["gpt-4o", "gpt-4o-mini", "claude-3"]

    @bot.tree.command(description="Pick a model")
    async def model(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    @model.autocomplete("name")
    async def complete(interaction: discord.Interaction, current: str) -> list[Any]:
        return [app_commands.Choice(name=m, value=m) for m in models if current in m]

    async with dc.running(bot):
        inter = await dc.interact(dc.autocomplete("model", "name", "gpt"))
        await dc.wait_for(lambda: inter.choices is not None)

    assert [c["value"] for c in inter.choices or []] == ["gpt-4o", "gpt-4o-mini"]
    assert dc.interaction_responses(inter.id)[0]["type"] == 8


async def test_subcommand_with_typed_options(dc: FakeDiscord) -> None:
    bot = make_bot()
    mj = app_commands.Group(name="mj", description="Midjourney")
    got: asyncio.Future[tuple[str, int, bool]] = asyncio.get_running_loop().create_future()

    @mj.command(description="Imagine")
    async def imagine(interaction: discord.Interaction, prompt: str, n: int, fast: bool) -> None:
        got.set_result((prompt, n, fast))
        await interaction.response.send_message("queued", ephemeral=True)

    bot.tree.add_command(mj)
    async with dc.running(bot):
        await bot.tree.sync()
        inter = await dc.interact(
            dc.slash("mj imagine", {"prompt": "a comet", "n": 2, "fast": True}, locale="de")
        )
        assert await asyncio.wait_for(got, 5) == ("a comet", 2, True)
        await dc.wait_for(lambda: inter.acked)
    assert inter.payload["locale"] == "de"
    assert dc.message(inter.original_message_id or 0).ephemeral


class ZoomPrompt(discord.ui.Modal, title="Custom zoom"):
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"zooming: {self.text.value}", ephemeral=True)


async def test_modal_is_sent_and_submitted(dc: FakeDiscord) -> None:
    bot = make_bot()

    @bot.tree.command(description="Zoom")
    async def zoom(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(ZoomPrompt())

    async with dc.running(bot):
        opened = await dc.interact(dc.slash("zoom"))
        await dc.wait_for(lambda: opened.modal)
        submitted = await dc.interact(dc.modal_submit({"prompt": "a comet"}, after=opened))
        await dc.wait_for(lambda: submitted.acked)

    assert opened.ack_type == 9 and opened.modal is not None
    assert opened.modal["title"] == "Custom zoom"
    reply = dc.message(submitted.original_message_id or 0)
    assert reply.content == "zooming: a comet" and reply.ephemeral
    assert dc.errors == []


async def test_gateway_reconnect_resumes(dc: FakeDiscord) -> None:
    bot = make_bot()
    seen: asyncio.Queue[str] = asyncio.Queue()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        await seen.put(message.content)

    async with dc.running(bot):
        await dc.reconnect()
        await dc.say("after resume")
        assert await asyncio.wait_for(seen.get(), 5) == "after resume"
    assert dc.gateway.resumes == 1 and dc.gateway.connections == 2


def test_component_and_embed_rules() -> None:
    def codes(components: list[JSON], **kw: Any) -> list[str]:
        return [i.code for i in check_components(components, **kw)]

    six = {"type": 1, "components": [row((str(i), f"c{i}"))["components"][0] for i in range(6)]}
    assert codes([six]) == ["BASE_TYPE_BAD_LENGTH"]
    assert codes([row(("a", "x" * 100))]) == []
    assert codes([row(("a", "x" * 101))]) == ["BASE_TYPE_BAD_LENGTH"]
    assert codes([row(("a" * 81, "id"))]) == ["BASE_TYPE_MAX_LENGTH"]
    assert codes([row(("a", "same"), ("b", "same"))]) == ["COMPONENT_CUSTOM_ID_DUPLICATED"]
    assert codes([row(("a", f"r{i}")) for i in range(6)]) == ["BASE_TYPE_MAX_LENGTH"]
    container = {"type": 17, "components": [{"type": 10, "content": "hi"}] * 41}
    assert codes([container], flags=1 << 15) == ["BASE_TYPE_MAX_LENGTH"]

    fine = [{"title": "t" * 256, "description": "d" * 4096}, {"description": "d" * 1648}]
    assert check_embeds(fine) == []
    assert [i.code for i in check_embeds([*fine, {"title": "x"}])] == ["MAX_EMBED_SIZE_EXCEEDED"]
    assert [i.code for i in check_embeds([{}] * 11)] == ["BASE_TYPE_MAX_LENGTH"]


def test_fixed_window_limiter_uses_the_injected_clock() -> None:
    clock = FakeClock(start=100.0)
    limiter = FixedWindowLimiter(2, 5.0, clock)
    assert [limiter.hit("c").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("other").allowed
    clock.set(105.0)
    state = limiter.hit("c")
    assert state.allowed and state.remaining == 1 and state.reset_after == 5.0


@pytest.mark.skipif(not HAS_SPEC, reason="../shared/specs/discord-openapi.json is absent")
def test_spec_validator_flags_webhook_limits() -> None:
    validator = load_spec_validator(str(DEFAULT_SPEC_PATH))
    assert validator is not None
    assert validator.validate("execute_webhook", {"content": "ok"}) == []
    [issue] = validator.validate("execute_webhook", {"content": "x" * 2001})
    assert issue.path == ("content",)
    bad_button = {"type": 4, "data": {"content": "x", "components": [row(("a", "x" * 101))]}}
    assert validator.validate("create_interaction_response", bad_button)
