"""Which Discord shards this process runs, and what follows from that.

Discord splits a bot's gateway traffic into ``shard_count`` shards: a server's events arrive
on shard ``(guild_id >> 22) % shard_count`` and DMs on shard 0 only. With ``[discord]
shard_count`` and ``shard_ids`` each process opens one gateway session per shard it owns, so
the servers are divided between processes; the process owning shard 0 also gets every DM.
Nothing is routed by hand: Discord delivers each event to its shard's session. What a process
must decide itself (for instance which one posts a finished task to a channel) asks
:meth:`ShardPlan.owns_guild`. This module imports no discord.py (``bot.app`` reads the share).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import DiscordSettings

__all__ = ["DM_SHARD", "ShardPlan", "shard_of"]

DM_SHARD = 0
"""Discord delivers direct messages on shard 0 only."""


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard that carries ``guild_id``'s events (a DM's: :data:`DM_SHARD`)."""
    if guild_id is None or shard_count <= 1:
        return DM_SHARD
    return (guild_id >> 22) % shard_count


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

    def owns_guild(self, guild_id: int | None) -> bool:
        """Whether this process receives ``guild_id``'s events (``None``: a DM, shard 0)."""
        return not self.sharded or shard_of(guild_id, self.count) in self.ids
