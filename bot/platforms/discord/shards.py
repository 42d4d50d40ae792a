"""Which Discord shards this process runs, and what follows from that.

Discord splits a bot's gateway traffic into ``shard_count`` shards: a server's events arrive
on shard ``(guild_id >> 22) % shard_count`` and DMs on shard 0 only. With ``[discord]
shard_count`` and ``shard_ids`` each process opens one gateway session per shard it owns, so
the servers are divided between processes; the process owning shard 0 also gets every DM.
Nothing is routed by hand: Discord delivers each event to its shard's session. A task
started from a server carries that server's shard as its route (``messages.route_of``, from
discord.py's ``Guild.shard_id``), and the process whose :attr:`ShardPlan.sessions` include
it posts the result. This module imports no discord.py (``bot.app`` reads the share).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import DiscordSettings

__all__ = ["DM_SHARD", "ShardPlan"]

DM_SHARD = 0
"""Discord delivers direct messages on shard 0 only."""


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """``count`` shards in all (0: unsharded, one session that sees everything) and the
    ``ids`` this process runs."""

    count: int = 0
    ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, settings: DiscordSettings) -> ShardPlan:
        return cls(settings.shard_count, settings.owned_shards)

    @property
    def sharded(self) -> bool:
        return self.count > 0

    @property
    def share(self) -> float:
        """This process's fraction of the bot's overall request budget (1.0 unsharded)."""
        return len(self.ids) / self.count if self.sharded else 1.0

    @property
    def sessions(self) -> tuple[int, ...]:
        """The shard ids of this process's gateway sessions (unsharded: the one session,
        shard 0): results of tasks started on them are this process's to post."""
        return self.ids if self.sharded else (DM_SHARD,)
