"""A :class:`bot.core.ports.Telemetry` that records nothing: the default for the core and tests.

Production passes :class:`bot.ops.metrics.Metrics` (Prometheus) instead.
"""

from __future__ import annotations

__all__ = ["NullTelemetry"]


class NullTelemetry:
    """Accepts every report and drops it."""

    def reply_done(self, platform: str, outcome: str) -> None:
        return None

    def tokens(self, prompt: int, completion: int, *, model: str = "") -> None:
        return None

    def upstream_error(self, kind: str, status: int | None = None) -> None:
        return None

    def platform_rate_limited(self, platform: str) -> None:
        return None

    def poll_cycle(self, seconds: float, requests: int) -> None:
        return None

    def task_state(self, provider: str, status: str) -> None:
        return None

    def refused(self, reason: str) -> None:
        return None

    def result_unfetched(self, provider: str, reason: str) -> None:
        return None
