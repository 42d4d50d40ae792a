"""Payload builders bound to a FakeDiscord's world: users, guilds, user messages and
interactions (slash, autocomplete, button/select clicks, modal submits) with sensible defaults.
FakeDiscord inherits these; they build payloads and register objects but send nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord_payloads import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    JSON,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    command_data,
    command_options,
    make_dm_channel,
    make_guild,
    make_interaction,
    make_member,
    make_message,
    make_user,
    modal_submit_components,
    resolved_attachments,
    snowflake,
)
from tests.fakes.discord_state import FakeInteraction, FakeMessage, World

ChannelRef = JSON | int | None
MessageRef = FakeMessage | JSON | int
ALL_PERMISSIONS = "2251799813685247"


class PayloadBuilders:
    world: World
    app_id: int
    bot_id: int
    bot_user: JSON
    user: JSON

    def now(self) -> float:
        return self.world.now()

    # --- world building -----------------------------------------------------------------

    def make_user(self, username: str = "alice", user_id: int | None = None, **extra: Any) -> JSON:
        user = make_user(user_id, username, **extra)
        self.world.register_user(user)
        return user

    def make_guild(
        self,
        name: str = "Test Guild",
        *,
        channels: Sequence[str | JSON] = ("general",),
        threads: Sequence[str | JSON] = (),
        members: Sequence[JSON] = (),
        roles: Sequence[JSON] = (),
        guild_id: int | None = None,
    ) -> JSON:
        """A GUILD_CREATE payload with text channels, threads, the default user + `members`
        and the bot as members. Registered now (listed in READY if the bot connects later);
        `await dc.guild_create(guild)` sends it to a connected bot."""
        guild = make_guild(
            self.bot_user,
            guild_id=guild_id,
            name=name,
            channels=channels,
            threads=threads,
            members=[self.user, *members],
        )
        guild["roles"].extend(roles)
        self.world.register_guild(guild)
        return guild

    def channel(self, guild: JSON, name: str) -> JSON:
        """A text channel or thread of `guild` by name."""
        for channel in [*guild["channels"], *guild["threads"]]:
            if channel["name"] == name:
                return dict(channel)
        raise KeyError(name)

    def dm_channel(self, user: JSON | None = None) -> JSON:
        return self.world.dm_channel(user or self.user)

    def add_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> JSON:
        """An attachment object whose url this fake serves (for user messages)."""
        return self.world.store_file(channel_id, filename, data, content_type)

    def voice_attachment(
        self, channel_id: int, data: bytes, *, duration: float = 3.0, size: int | None = None
    ) -> JSON:
        """A voice message's recording (``voice-message.ogg``, ``audio/ogg`` with
        ``duration_secs`` and ``waveform``); send it with ``flags=VOICE_MESSAGE_FLAG``.
        ``size`` overrides the size the attachment announces."""
        att = self.add_attachment(channel_id, "voice-message.ogg", data, "audio/ogg")
        att = {**att, "duration_secs": duration, "waveform": "AAAAAAAAAA=="}
        if size is not None:
            att["size"] = size
        return att

    def seed_bot_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        components: Sequence[JSON] = (),
        embeds: Sequence[JSON] = (),
        flags: int = 0,
    ) -> FakeMessage:
        """A message the bot "sent earlier" (e.g. before a restart), without a request."""
        msg = FakeMessage(
            id=snowflake(),
            channel_id=channel_id,
            author=self.bot_user,
            from_bot=True,
            guild_id=self.world.guild_of(channel_id),
            content=content,
            components=list(components),
            embeds=list(embeds),
            flags=flags,
            created_at=self.now(),
            history=[content],
        )
        return self.world.add_message(msg)

    # --- user messages -------------------------------------------------------------------

    def _channel_json(self, channel: ChannelRef, user: JSON) -> JSON:
        if channel is None:
            return self.dm_channel(user)
        if isinstance(channel, int):
            return self.world.channels[channel]
        self.world.register_channel(channel)
        return channel

    def _member(self, guild_id: int, user: JSON) -> JSON:
        guild = self.world.guilds.get(guild_id, {})
        members: list[JSON] = guild.get("members", [])
        found = [m for m in members if m["user"]["id"] == user["id"]]
        return found[0] if found else make_member(user)

    def message_of(self, ref: MessageRef) -> FakeMessage:
        mid = (
            ref.id
            if isinstance(ref, FakeMessage)
            else int(ref["id"] if isinstance(ref, dict) else ref)
        )
        return self.world.messages[mid]

    def user_message(
        self,
        content: str = "",
        *,
        author: JSON | None = None,
        channel: ChannelRef = None,
        mention_bot: bool = False,
        mentions: Sequence[JSON] = (),
        reply_to: MessageRef | None = None,
        files: Sequence[tuple[str, bytes]] = (),
        attachments: Sequence[JSON] = (),
        **extra: Any,
    ) -> JSON:
        """A MESSAGE_CREATE payload from a user (default: alice in her DM with the bot).
        `channel` is a channel object or id (guild channel -> guild message with member)."""
        author = author or self.user
        chan = self._channel_json(channel, author)
        cid = int(chan["id"])
        gid = self.world.guild_of(cid)
        mention_list = list(mentions)
        if mention_bot:
            content = f"<@{self.bot_id}> {content}"
            mention_list.append(self.bot_user)
        referenced = None
        if reply_to is not None:
            target = self.message_of(reply_to)
            referenced = target.payload()
            if target.author not in mention_list:
                mention_list.append(target.author)
        stored = [self.add_attachment(cid, name, data) for name, data in files]
        return make_message(
            cid,
            author,
            content,
            guild_id=gid,
            member=self._member(gid, author) if gid else None,
            mentions=mention_list,
            referenced_message=referenced,
            attachments=[*attachments, *stored],
            **extra,
        )

    # --- interactions --------------------------------------------------------------------

    def _interaction(
        self, itype: int, data: JSON | None, user: JSON | None, channel: ChannelRef, **kwargs: Any
    ) -> JSON:
        user = user or self.user
        chan = self._channel_json(channel, user)
        gid = self.world.guild_of(int(chan["id"]))
        member = None
        if gid is not None and "member" not in kwargs:
            member = {**self._member(gid, user), "permissions": ALL_PERMISSIONS}
        return make_interaction(
            application_id=self.app_id,
            itype=itype,
            data=data,
            channel=chan,
            user=user,
            guild_id=gid,
            member=kwargs.pop("member", member),
            **kwargs,
        )

    def _command_id(self, name: str, guild_id: int | None) -> int:
        root = name.split(maxsplit=1)[0]
        for scope in (guild_id, None):
            for cmd in self.world.commands.get(scope, []):
                if cmd["name"] == root:
                    return int(cmd["id"])
        return snowflake()

    def slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        user: JSON | None = None,
        channel: ChannelRef = None,
        **kwargs: Any,
    ) -> JSON:
        """A slash command interaction (type 2). "cmd sub" names become subcommands; option
        types are inferred from Python values, and an attachment object (add_attachment)
        becomes an attachment option with its ``data.resolved`` entry. kwargs go to
        make_interaction (locale, app_permissions, context, entitlements,
        attachment_size_limit, ...)."""
        chan = self._channel_json(channel, user or self.user)
        gid = self.world.guild_of(int(chan["id"]))
        data = command_data(name, self._command_id(name, gid), command_options(options))
        if resolved := resolved_attachments(options):
            data["resolved"] = resolved
        return self._interaction(APPLICATION_COMMAND, data, user, chan, **kwargs)

    def autocomplete(
        self,
        name: str,
        focused: str,
        value: str = "",
        options: Mapping[str, Any] | None = None,
        *,
        user: JSON | None = None,
        channel: ChannelRef = None,
        **kwargs: Any,
    ) -> JSON:
        """An autocomplete interaction (type 4) with `focused` being typed as `value`."""
        opts = command_options(options)
        opts.append({"name": focused, "type": 3, "value": value, "focused": True})
        chan = self._channel_json(channel, user or self.user)
        gid = self.world.guild_of(int(chan["id"]))
        data = command_data(name, self._command_id(name, gid), opts)
        return self._interaction(AUTOCOMPLETE, data, user, chan, **kwargs)

    def click(
        self,
        message: MessageRef,
        custom_id: str,
        *,
        user: JSON | None = None,
        values: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> JSON:
        """A component interaction (type 3) on a message the fake knows: a button click, or a
        select menu choice when `values` is given. The component type is taken from the
        message when it has that custom_id."""
        msg = self.message_of(message)
        comp = msg.component(custom_id)
        ctype = comp["type"] if comp else (3 if values is not None else 2)
        data: JSON = {"custom_id": custom_id, "component_type": ctype}
        if values is not None:
            data["values"] = list(values)
        channel = self.world.channels.get(msg.channel_id) or make_dm_channel(
            user or self.user, msg.channel_id
        )
        return self._interaction(
            MESSAGE_COMPONENT, data, user, channel, message=msg.payload(), **kwargs
        )

    def modal_submit(
        self,
        values: Mapping[str, Any],
        *,
        custom_id: str | None = None,
        after: FakeInteraction | None = None,
        user: JSON | None = None,
        channel: ChannelRef = None,
        **kwargs: Any,
    ) -> JSON:
        """A modal submit (type 5). With `after` (the interaction answered with type 9) the
        custom_id, layout, user, channel and message come from the modal the bot sent;
        `values` maps text input custom_ids to text (or select custom_ids to lists)."""
        components: list[JSON]
        if after is not None and after.modal is not None:
            custom_id = custom_id or after.modal["custom_id"]
            components = modal_submit_components(after.modal.get("components", []), values)
            user = user or after.user
            channel = channel if channel is not None else after.channel_id
            if "message" in after.payload:
                kwargs.setdefault("message", self.message_of(after.payload["message"]).payload())
        else:
            rows = [{"type": 1, "components": [{"type": 4, "custom_id": k}]} for k in values]
            components = modal_submit_components(rows, values)
        if custom_id is None:
            raise ValueError("modal_submit needs custom_id or after=<interaction with a modal>")
        data = {"custom_id": custom_id, "components": components}
        return self._interaction(MODAL_SUBMIT, data, user, channel, **kwargs)
