"""Prometheus metrics on a private registry, behind the core's :class:`Telemetry` port.

========================================  =========  ===================================
metric                                    type       labels
========================================  =========  ===================================
cometbot_replies_total                    counter    platform, outcome (ok/error/cut/...)
cometbot_tokens_total                     counter    type (prompt/completion), model
cometbot_upstream_errors_total            counter    kind (error class), status
cometbot_platform_rate_limited_total      counter    platform
cometbot_poll_cycle_seconds               histogram  -
cometbot_poll_requests_total              counter    -
cometbot_task_transitions_total           counter    provider, status
cometbot_tasks                            gauge      provider, status (from the store)
cometbot_queue_length                     gauge      - (unfinished tasks, from the store)
cometbot_requests_refused_total           counter    reason (user/place/cooldown/quota/...)
cometbot_results_unfetched_total          counter    provider, reason (not_found/refused/...)
========================================  =========  ===================================

The two gauges are read from the store just before each scrape (:meth:`Metrics.refresh`),
so they are right after a restart too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.core.access.stats import FINISHED_STATUSES

if TYPE_CHECKING:
    from bot.core.ports import StatsStore, Telemetry

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
_POLL_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Implements :class:`bot.core.ports.Telemetry`; :meth:`render` is the /metrics body."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.replies = Counter(
            "cometbot_replies", "Chat replies finished", ["platform", "outcome"], registry=r
        )
        self.tokens_used = Counter(
            "cometbot_tokens", "Tokens reported by CometAPI usage", ["type", "model"], registry=r
        )
        self.upstream_errors = Counter(
            "cometbot_upstream_errors", "CometAPI failures", ["kind", "status"], registry=r
        )
        self.platform_429 = Counter(
            "cometbot_platform_rate_limited",
            "429 / RetryAfter answers from a platform",
            ["platform"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "cometbot_poll_cycle_seconds",
            "Duration of one task poller cycle",
            buckets=_POLL_BUCKETS,
            registry=r,
        )
        self.poll_requests = Counter(
            "cometbot_poll_requests", "Upstream requests made by the task poller", registry=r
        )
        self.task_transitions = Counter(
            "cometbot_task_transitions",
            "Generation tasks entering a status",
            ["provider", "status"],
            registry=r,
        )
        self.tasks = Gauge(
            "cometbot_tasks", "Stored generation tasks", ["provider", "status"], registry=r
        )
        self.queue_length = Gauge(
            "cometbot_queue_length", "Unfinished generation tasks", registry=r
        )
        self.refusals = Counter(
            "cometbot_requests_refused",
            "Requests refused by access control or a limit",
            ["reason"],
            registry=r,
        )
        self.results_unfetched = Counter(
            "cometbot_results_unfetched",
            "Finished tasks whose result could not be downloaded (given up, quota refunded)",
            ["provider", "reason"],
            registry=r,
        )

    # -- Telemetry ------------------------------------------------------------------------------

    def reply_done(self, platform: str, outcome: str) -> None:
        self.replies.labels(platform=platform, outcome=outcome).inc()

    def tokens(self, prompt: int, completion: int, *, model: str = "") -> None:
        if prompt > 0:
            self.tokens_used.labels(type="prompt", model=model).inc(prompt)
        if completion > 0:
            self.tokens_used.labels(type="completion", model=model).inc(completion)

    def upstream_error(self, kind: str, status: int | None = None) -> None:
        self.upstream_errors.labels(kind=kind, status=str(status) if status else "").inc()

    def platform_rate_limited(self, platform: str) -> None:
        self.platform_429.labels(platform=platform).inc()

    def poll_cycle(self, seconds: float, requests: int) -> None:
        self.poll_seconds.observe(max(0.0, seconds))
        if requests > 0:
            self.poll_requests.inc(requests)

    def task_state(self, provider: str, status: str) -> None:
        self.task_transitions.labels(provider=provider, status=status).inc()

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason=reason).inc()

    def result_unfetched(self, provider: str, reason: str) -> None:
        self.results_unfetched.labels(provider=provider, reason=reason).inc()

    # -- scraping -------------------------------------------------------------------------------

    def set_tasks(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Set the task gauges from ``(provider, status) -> count`` (e.g. the store's)."""
        self.tasks.clear()
        for (provider, status), count in counts.items():
            self.tasks.labels(provider=provider, status=status).set(count)
        self.queue_length.set(
            sum(n for (_, status), n in counts.items() if status not in FINISHED_STATUSES)
        )

    async def refresh(self, store: StatsStore) -> None:
        """Read the task gauges from the store (call before rendering a scrape)."""
        self.set_tasks(await store.task_counts())

    def render(self) -> bytes:
        """The registry in Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


if TYPE_CHECKING:

    def _is_telemetry(metrics: Metrics) -> Telemetry:
        return metrics
