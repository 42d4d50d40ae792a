"""Conversations, turns and per-channel settings: the store's :class:`ChatStore` part."""

from __future__ import annotations

from typing import Final

from bot.core.access.usage import UsageKind
from bot.core.models import ChannelSettings, ConversationKey, Platform, Role, Turn, Usage
from bot.store._base import Row, StoreBase, utc_day
from bot.store.engine import Dialect, Session
from bot.store.usage import add_usage

__all__ = ["RECENT_TURNS_SQL", "ConversationQueries"]

_TURN_COLUMNS: Final = "t.id, t.role, t.content, t.speaker, t.tokens, t.created_at"

# The conversation is found by scalar subqueries on its unique key (evaluated
# once), so turns is the only table the planner orders. (Written as a JOIN,
# SQLite 3.40 chose to walk every turn backwards by rowid to skip a sort: a scan
# of the whole table for an idle conversation.) INDEXED BY keeps it that way:
# should the index ever go missing, the query fails instead of silently scanning.
_CONVERSATION_ID: Final = "(SELECT id FROM conversations WHERE key = ?1)"
_RESET_TURN_ID: Final = "(SELECT reset_turn_id FROM conversations WHERE key = ?1)"
_RECENT_TURNS: Final = f"""
    SELECT {_TURN_COLUMNS}
    FROM turns AS t INDEXED BY turns_by_conversation
    WHERE t.conversation_id = {_CONVERSATION_ID}
      AND t.id > {_RESET_TURN_ID}
    ORDER BY t.id DESC
    LIMIT ?2
"""
# PostgreSQL has no INDEXED BY, and given the equality above its planner walks the
# primary key backwards and filters by conversation (it does not know which
# conversation, so it guesses an average one): for a conversation with 1 % of the
# turns that reads ~100 rows per row returned, and an idle conversation on a busy
# database is a scan of everything written since. ``= ANY(ARRAY[...])`` bounds the
# index scan exactly as ``=`` does, but does not make the conversation a constant of
# the ordering, so ORDER BY (conversation_id, id) is one only turns_by_conversation
# gives: a backwards range scan that stops after ``limit`` rows. (A row comparison,
# ``(conversation_id, id) > (...)``, also picks the index, but PostgreSQL 15 does
# not stop the scan at its bound: after a reset it read the whole history.)
_RECENT_TURNS_POSTGRES: Final = f"""
    SELECT {_TURN_COLUMNS}
    FROM turns AS t
    WHERE t.conversation_id = ANY(ARRAY[{_CONVERSATION_ID}])
      AND t.id > {_RESET_TURN_ID}
    ORDER BY t.conversation_id DESC, t.id DESC
    LIMIT ?2
"""

#: The chat hot path: two key lookups, then a backwards range scan of
#: turns_by_conversation that stops after ``limit`` rows. Parameters: key, limit.
RECENT_TURNS_SQL: Final = {
    Dialect.SQLITE: _RECENT_TURNS,
    Dialect.POSTGRESQL: _RECENT_TURNS_POSTGRES,
}

_SETTING_COLUMNS: Final = frozenset({"model", "persona", "voice"})
_INSERT_TURN: Final = (
    "INSERT INTO turns (conversation_id, role, content, speaker, user_id, tokens, model,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


def _turn(row: Row) -> Turn:
    return Turn(
        role=Role(row[1]),
        content=row[2],
        speaker=row[3],
        tokens=row[4],
        created_at=row[5],
        id=row[0],
    )


class ConversationQueries(StoreBase):
    """Turns are append-only; ``reset`` moves a marker, it never deletes history."""

    async def recent_turns(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        """The newest ``limit`` turns after the conversation's last reset, oldest first."""
        if limit <= 0:
            return []
        rows = await self._fetchall(RECENT_TURNS_SQL[self.dialect], (str(key), limit))
        rows.reverse()
        return [_turn(row) for row in rows]

    async def add_turn(
        self,
        key: ConversationKey,
        turn: Turn,
        *,
        user_id: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
    ) -> int:
        """Store ``turn`` (its ``id`` is ignored) and return the new turn id.

        ``created_at`` 0 means "now". ``user_id`` is who spoke (user turns) or
        whom the answer was for (assistant turns). With ``usage`` and a
        ``user_id``, the user's daily prompt/completion tokens and chat count grow
        in the same transaction; an assistant turn without ``tokens`` then takes
        ``usage.completion_tokens``.
        """
        now = self._clock()
        created_at = turn.created_at or now
        tokens = turn.tokens
        if not tokens and usage is not None and turn.role is Role.ASSISTANT:
            tokens = usage.completion_tokens
        values = (turn.role.value, turn.content, turn.speaker, user_id, tokens, model, created_at)
        if usage is None or user_id is None:
            # One INSERT is atomic on its own: no transaction, one trip to the database
            # (this runs for every question the bot is asked). Creating the conversation
            # first is idempotent, so it needs no transaction either.
            conversation_id = await self._conversation_id(self._engine, key, now)
            rows = await self._engine.fetch(_INSERT_TURN, (conversation_id, *values))
        else:
            async with self._transaction() as db:
                conversation_id = await self._conversation_id(db, key, now, remember=False)
                rows = await db.fetch(_INSERT_TURN, (conversation_id, *values))
                await add_usage(
                    db,
                    user_id,
                    utc_day(now),
                    {
                        UsageKind.PROMPT_TOKENS: usage.prompt_tokens,
                        UsageKind.COMPLETION_TOKENS: usage.completion_tokens,
                        UsageKind.CHAT: 1,
                    },
                )
            # Only now is the row visible to other connections (PostgreSQL's pool).
            self._conversation_ids[str(key)] = conversation_id
        return int(rows[0][0])

    async def get_settings(self, key: ConversationKey) -> ChannelSettings:
        """The channel's model and persona; ``None`` fields mean "the configured default"."""
        row = await self._fetchone(
            "SELECT model, persona, voice FROM conversations WHERE key = ?", (str(key),)
        )
        if row is None:
            return ChannelSettings()
        return ChannelSettings(model=row[0], persona=row[1], voice=bool(row[2]))

    async def set_model(self, key: ConversationKey, model: str | None) -> None:
        """Pick the channel's model (``None``: back to the default)."""
        await self._set_setting(key, "model", model)

    async def set_persona(self, key: ConversationKey, persona: str | None) -> None:
        """Set the channel's system prompt (``None``: back to the default)."""
        await self._set_setting(key, "persona", persona)

    async def set_voice(self, key: ConversationKey, on: bool) -> None:
        await self._set_setting(key, "voice", int(on))

    async def reset(self, key: ConversationKey) -> None:
        """Start a fresh context: turns so far stay stored but leave ``recent_turns``."""
        now = self._clock()
        await self._write(
            "INSERT INTO conversations (key, platform, created_at, reset_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET reset_at = excluded.reset_at,"
            " reset_turn_id = (SELECT coalesce(max(id), 0) FROM turns"
            "  WHERE conversation_id = conversations.id)",
            (str(key), key.platform.value, now, now),
        )

    async def move_chat(self, platform: Platform, old_chat_id: str, new_chat_id: str) -> int:
        """The chat now has another id (a Telegram group became a supergroup): its
        conversations (forum topics too), with their turns and settings, and its tasks
        follow, in one transaction. Where the new id already has a conversation (someone
        spoke there first), it takes the old turns and keeps its own settings, taking the
        old ones only where it has none. Returns how many conversations and tasks moved (0
        when called again)."""
        old_key = str(ConversationKey(platform, old_chat_id))
        new_key = str(ConversationKey(platform, new_chat_id))
        # The chat's own key, or one of its threads' ("tg:-5:12"): the prefix then a colon.
        of_chat = (
            "{column} = CAST(?1 AS TEXT)"
            " OR substr({column}, 1, length(CAST(?1 AS TEXT)) + 1) = CAST(?1 AS TEXT) || ':'"
        )
        moved = 0
        async with self._transaction() as db:
            self._conversation_ids.clear()  # keys are about to point elsewhere
            rows = await db.fetch(
                "SELECT id, key, model, persona, voice FROM conversations WHERE "
                + of_chat.format(column="key"),
                (old_key,),
            )
            for conversation_id, key, model, persona, voice in rows:
                target = new_key + str(key)[len(old_key) :]
                existing = await db.fetch("SELECT id FROM conversations WHERE key = ?", (target,))
                if not existing:
                    await db.execute(
                        "UPDATE conversations SET key = ? WHERE id = ?", (target, conversation_id)
                    )
                else:
                    into = existing[0][0]
                    await db.execute(
                        "UPDATE turns SET conversation_id = ? WHERE conversation_id = ?",
                        (into, conversation_id),
                    )
                    await db.execute(
                        "UPDATE conversations SET model = coalesce(model, ?1),"
                        " persona = coalesce(persona, ?2),"
                        " voice = CASE WHEN voice > ?3 THEN voice ELSE ?3 END WHERE id = ?4",
                        (model, persona, voice, into),
                    )
                    await db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
                moved += 1
            moved += await db.execute(
                "UPDATE tasks SET conversation ="
                " CAST(?2 AS TEXT) || substr(conversation, length(CAST(?1 AS TEXT)) + 1)"
                " WHERE " + of_chat.format(column="conversation"),
                (old_key, new_key),
            )
        return moved

    async def _set_setting(
        self, key: ConversationKey, column: str, value: str | int | None
    ) -> None:
        if column not in _SETTING_COLUMNS:  # column names cannot be parameters
            raise ValueError(f"not a setting: {column}")
        await self._write(
            f"INSERT INTO conversations (key, platform, created_at, {column}) VALUES (?, ?, ?, ?)"
            f" ON CONFLICT (key) DO UPDATE SET {column} = excluded.{column}",
            (str(key), key.platform.value, self._clock(), value),
        )

    async def _conversation_id(
        self, db: Session, key: ConversationKey, now: float, *, remember: bool = True
    ) -> int:
        """The conversation's row id, creating the row (idempotent). Inside a transaction,
        ``remember=False``: an id the transaction created must not be cached before it
        commits, or a statement on another connection could use it too early."""
        raw = str(key)
        cached = self._conversation_ids.get(raw)
        if cached is not None:
            return cached
        # One statement whether or not the row exists (the no-op update makes RETURNING
        # answer for an existing row too).
        rows = await db.fetch(
            "INSERT INTO conversations (key, platform, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id",
            (raw, key.platform.value, now),
        )
        conversation_id = int(rows[0][0])
        if remember:
            self._conversation_ids[raw] = conversation_id
        return conversation_id
