"""Builders for Discord API objects as discord.py 2.7 parses them (users, guilds, messages,
interactions). Pure functions: ids are snowflake-like ints, every builder has sensible defaults.
"""

from __future__ import annotations

import datetime
import itertools
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
EVERYONE_PERMISSIONS = "1071698660929"  # view, send, read history, embed, attach, use commands...
APP_PERMISSIONS = "2248473465835073"
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Interaction types (payload "type")
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Interaction contexts
CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2

_sequence = itertools.count(1)


def snowflake() -> int:
    """A unique id shaped like a Discord snowflake (timestamp in the high bits)."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_sequence) & 0x3FFFFF)


def snowflake_on_shard(shard: int, count: int) -> int:
    """A unique guild id whose events Discord sends on ``shard`` of ``count``
    ((id >> 22) % count == shard)."""
    ms = snowflake() >> 22
    return ((ms - ms % count + shard) << 22) | (next(_sequence) & 0x3FFFFF)


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def interaction_token() -> str:
    return "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)


def make_user(
    user_id: int | None = None, username: str = "alice", *, bot: bool = False, **extra: Any
) -> JSON:
    user: JSON = {
        "id": str(user_id or snowflake()),
        "username": username,
        "discriminator": "0",
        "global_name": None if bot else username.capitalize(),
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }
    user.update(extra)
    return user


def make_bot_user(user_id: int, username: str) -> JSON:
    """The bot's own user as GET /users/@me returns it."""
    return make_user(
        user_id,
        username,
        bot=True,
        verified=True,
        mfa_enabled=False,
        flags=0,
        locale="en-US",
        email=None,
    )


def make_application(app_id: int, name: str, owner: JSON) -> JSON:
    """GET /oauth2/applications/@me: every field discord.py's AppInfo reads."""
    return {
        "id": str(app_id),
        "name": name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": owner,
        "team": None,
        "verify_key": "0" * 64,
        "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": 1,
        "integration_types_config": {"0": {}},
    }


def make_role(
    guild_id: int,
    role_id: int | None = None,
    name: str = "@everyone",
    *,
    permissions: str = EVERYONE_PERMISSIONS,
    position: int = 0,
) -> JSON:
    return {
        "id": str(role_id or guild_id),
        "name": name,
        "permissions": permissions,
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }


def make_member(
    user: JSON,
    *,
    roles: Iterable[int | str] = (),
    nick: str | None = None,
    permissions: str | None = None,
) -> JSON:
    member: JSON = {
        "user": user,
        "roles": [str(r) for r in roles],
        "nick": nick,
        "avatar": None,
        "joined_at": iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        member["permissions"] = permissions
    return member


def make_text_channel(
    guild_id: int,
    name: str = "general",
    channel_id: int | None = None,
    *,
    position: int = 0,
    parent_id: int | None = None,
    topic: str | None = None,
    nsfw: bool = False,
) -> JSON:
    return {
        "id": str(channel_id or snowflake()),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": str(parent_id) if parent_id else None,
        "topic": topic,
        "nsfw": nsfw,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def make_thread(
    guild_id: int,
    parent_id: int,
    name: str = "thread",
    thread_id: int | None = None,
    *,
    owner_id: int | None = None,
    private: bool = False,
) -> JSON:
    return {
        "id": str(thread_id or snowflake()),
        "type": 12 if private else 11,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "owner_id": str(owner_id or snowflake()),
        "name": name,
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": iso_now(),
            "locked": False,
        },
    }


def make_dm_channel(recipient: JSON, channel_id: int | None = None) -> JSON:
    return {
        "id": str(channel_id or snowflake()),
        "type": 1,
        "recipients": [recipient],
        "last_message_id": None,
        "flags": 0,
    }


def make_guild(
    bot_user: JSON,
    *,
    guild_id: int | None = None,
    name: str = "Test Guild",
    channels: Sequence[str | JSON] = ("general",),
    threads: Sequence[str | JSON] = (),
    members: Sequence[JSON] = (),
    roles: Sequence[JSON] = (),
    owner_id: int | None = None,
) -> JSON:
    """A full GUILD_CREATE payload. Channels/threads may be names; members may be users or
    member objects. The bot is always a member; @everyone (id = guild id) is always a role."""
    gid = guild_id or snowflake()
    chans = [
        make_text_channel(gid, c, position=i) if isinstance(c, str) else c
        for i, c in enumerate(channels)
    ]
    parent = int(chans[0]["id"]) if chans else snowflake()
    thrs = [make_thread(gid, parent, t) if isinstance(t, str) else t for t in threads]
    mems = [m if "user" in m else make_member(m) for m in members]
    if not any(m["user"]["id"] == bot_user["id"] for m in mems):
        mems.append(make_member(bot_user))
    all_roles = [make_role(gid), *roles]
    return {
        "id": str(gid),
        "name": name,
        "icon": None,
        "splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(owner_id or mems[0]["user"]["id"]),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": all_roles,
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "system_channel_id": chans[0]["id"] if chans else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "joined_at": iso_now(),
        "large": False,
        "member_count": len(mems),
        "voice_states": [],
        "members": mems,
        "channels": chans,
        "threads": thrs,
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "premium_progress_bar_enabled": False,
    }


def make_attachment(
    url: str,
    filename: str,
    size: int,
    *,
    attachment_id: int | None = None,
    content_type: str | None = None,
) -> JSON:
    att: JSON = {
        "id": str(attachment_id or snowflake()),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
    }
    if content_type:
        att["content_type"] = content_type
    return att


def make_message(
    channel_id: int,
    author: JSON,
    content: str = "",
    *,
    message_id: int | None = None,
    guild_id: int | None = None,
    member: JSON | None = None,
    mentions: Sequence[JSON] = (),
    mention_roles: Sequence[int | str] = (),
    mention_everyone: bool = False,
    attachments: Sequence[JSON] = (),
    embeds: Sequence[JSON] = (),
    components: Sequence[JSON] = (),
    referenced_message: JSON | None = None,
    flags: int = 0,
    **extra: Any,
) -> JSON:
    """A message object, e.g. for MESSAGE_CREATE. `member` (guild only) is the author's member
    object without `user`; `referenced_message` makes it a reply (type 19)."""
    msg: JSON = {
        "id": str(message_id or snowflake()),
        "channel_id": str(channel_id),
        "author": author,
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": mention_everyone,
        "mentions": list(mentions),
        "mention_roles": [str(r) for r in mention_roles],
        "attachments": list(attachments),
        "embeds": list(embeds),
        "components": list(components),
        "reactions": [],
        "pinned": False,
        "type": 0,
        "flags": flags,
    }
    if guild_id is not None:
        msg["guild_id"] = str(guild_id)
        if member is not None:
            msg["member"] = {k: v for k, v in member.items() if k != "user"}
    if referenced_message is not None:
        msg["type"] = 19
        msg["message_reference"] = {
            "type": 0,
            "message_id": referenced_message["id"],
            "channel_id": referenced_message["channel_id"],
            **({"guild_id": str(guild_id)} if guild_id is not None else {}),
        }
        msg["referenced_message"] = referenced_message
    msg.update(extra)
    return msg


_OPTION_TYPES: tuple[tuple[type, int], ...] = ((bool, 5), (int, 4), (float, 10), (str, 3))


ATTACHMENT_OPTION = 11


def is_attachment(value: Any) -> bool:
    """An attachment object (see make_attachment / FakeDiscord.add_attachment)."""
    return isinstance(value, Mapping) and "filename" in value and "url" in value


def command_options(options: Mapping[str, Any] | Sequence[JSON] | None) -> list[JSON]:
    """{"prompt": "hi", "n": 2} -> [{"name","type","value"}]; type inferred (str 3, int 4,
    bool 5, float 10, an attachment object 11 with its id as the value: see
    resolved_attachments). Pass a list of option dicts for anything else (users...)."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return list(options)
    out: list[JSON] = []
    for name, value in options.items():
        if is_attachment(value):
            out.append({"name": name, "type": ATTACHMENT_OPTION, "value": str(value["id"])})
            continue
        otype = next((t for py, t in _OPTION_TYPES if isinstance(value, py)), 3)
        out.append({"name": name, "type": otype, "value": value})
    return out


def resolved_attachments(options: Mapping[str, Any] | Sequence[JSON] | None) -> JSON:
    """The ``data.resolved`` Discord sends with attachment options: {"attachments": {id: obj}}
    ({} when there are none)."""
    if not isinstance(options, Mapping):
        return {}
    found = {str(v["id"]): dict(v) for v in options.values() if is_attachment(v)}
    return {"attachments": found} if found else {}


def command_data(
    name: str, command_id: int, options: list[JSON], *, guild_id: int | None = None
) -> JSON:
    """Application command data; "group sub" / "cmd sub" names become nested options."""
    root, *subs = name.split()
    for depth, sub in enumerate(reversed(subs)):
        options = [{"name": sub, "type": 1 if depth == 0 else 2, "options": options}]
    data: JSON = {"id": str(command_id), "name": root, "type": 1, "options": options}
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    return data


def modal_submit_components(
    modal_components: Sequence[JSON], values: Mapping[str, Any]
) -> list[JSON]:
    """Mirror a modal's layout (action rows or labels) as submitted components."""
    out: list[JSON] = []
    for comp in modal_components:
        ctype = comp.get("type")
        if ctype == 1:
            out.append(
                {"type": 1, "components": modal_submit_components(comp["components"], values)}
            )
        elif ctype == 18:
            inner = modal_submit_components([comp["component"]], values)
            if inner:
                out.append({"type": 18, "id": comp.get("id", 0), "component": inner[0]})
        elif ctype == 4:
            value = values.get(comp["custom_id"], comp.get("value") or "")
            out.append({"type": 4, "custom_id": comp["custom_id"], "value": value})
        elif ctype in (3, 5, 6, 7, 8):
            chosen = values.get(comp["custom_id"], [])
            chosen = [chosen] if isinstance(chosen, str) else list(chosen)
            out.append({"type": ctype, "custom_id": comp["custom_id"], "values": chosen})
    return out


def make_interaction(
    *,
    application_id: int,
    itype: int,
    data: JSON | None,
    channel: JSON,
    user: JSON,
    guild_id: int | None = None,
    member: JSON | None = None,
    message: JSON | None = None,
    interaction_id: int | None = None,
    token: str | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
    app_permissions: str = APP_PERMISSIONS,
    context: int | None = None,
    authorizing_integration_owners: Mapping[str, str] | None = None,
    entitlements: Sequence[JSON] = (),
    attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT,
) -> JSON:
    """An INTERACTION_CREATE payload. With guild_id the invoker is `member` (built from `user`
    with permissions if not given), otherwise `user` (a DM with the bot)."""
    payload: JSON = {
        "id": str(interaction_id or snowflake()),
        "application_id": str(application_id),
        "type": itype,
        "token": token or interaction_token(),
        "version": 1,
        "channel_id": channel["id"],
        "channel": channel,
        "locale": locale,
        "app_permissions": app_permissions,
        "entitlements": list(entitlements),
        "entitlement_sku_ids": [],
        "attachment_size_limit": attachment_size_limit,
    }
    if data is not None:
        payload["data"] = data
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild"] = {"id": str(guild_id), "locale": guild_locale, "features": []}
        payload["guild_locale"] = guild_locale
        payload["member"] = member or make_member(user, permissions=EVERYONE_PERMISSIONS)
        payload["context"] = CONTEXT_GUILD if context is None else context
        owners = authorizing_integration_owners or {"0": str(guild_id)}
    else:
        payload["user"] = user
        payload["context"] = CONTEXT_BOT_DM if context is None else context
        owners = authorizing_integration_owners or {"0": "0"}
    payload["authorizing_integration_owners"] = dict(owners)
    if message is not None:
        payload["message"] = message
    return payload
