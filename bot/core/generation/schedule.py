"""The task poller's settings, its per-cycle report, and the sentences it writes itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from bot.core.generation.records import DEFAULT_DEADLINES, Provider

__all__ = ["MODAL_DURING_POLL", "UNCERTAIN_AFTER_RESTART", "CycleStats", "PollerConfig"]

UNCERTAIN_AFTER_RESTART: Final = (
    "The bot restarted while sending this request, so I cannot tell whether it was "
    "accepted. To avoid paying twice I did not send it again; please try again if no "
    "result arrives."
)
MODAL_DURING_POLL: Final = (
    "Midjourney is waiting for input the bot cannot give for this task (is remix mode on?)."
)


@dataclass(frozen=True, slots=True)
class PollerConfig:
    first_interval: float = 3.0
    max_interval: float = 15.0
    growth: float = 1.5
    jitter: float = 0.1
    batch_window: float = 1.0
    max_requests: int = 100
    deadlines: Mapping[Provider, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    progress_edit_interval: float = 3.0

    def interval(self, attempts: int) -> float:
        """Seconds until the next poll of a task polled ``attempts`` times (no jitter)."""
        return min(self.max_interval, self.first_interval * self.growth ** max(0, attempts))


@dataclass(slots=True)
class CycleStats:
    """What one cycle did (tests, benchmarks and the telemetry port read it)."""

    tasks: int = 0
    requests: int = 0
    failed_requests: int = 0
    finished: int = 0
    updated: int = 0
    edits: int = 0
    saturated: bool = False
