"""Prometheus metrics for ``/_waypost/metrics``, kept with prometheus_client.

With one worker the metrics live in the process. With several, ``waypost serve`` runs
prometheus_client's multiprocess mode: the main process sets ``PROMETHEUS_MULTIPROC_DIR`` to a
private temporary folder before any worker starts, each worker writes its values to memory-mapped
files there, and a scrape answered by any worker adds them all up, so the numbers are the server's,
not one worker's. (Reload counters count per worker: one file change reloads in every worker.)

The hot path does not touch prometheus_client: :meth:`ServerMetrics.count` and
:meth:`ServerMetrics.observe_decision` add to plain counters in the worker (a dict entry and a list
slot), and :meth:`ServerMetrics.flush` moves them into the prometheus_client values. Every scrape
flushes first, and the server flushes each worker every half second, so a scrape answered by
another worker is at most that much behind. (An increment and an observation through
prometheus_client take a lock each and cost more than deciding a request does.)
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE", "MULTIPROCESS_ENV", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The engine answers in microseconds; the buckets are spread where its answers fall.
_DECISION_BUCKETS = (
    1e-6,
    2.5e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    1e-3,
    1e-2,
    float("inf"),
)


class ServerMetrics:
    """The server's metrics, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # prometheus_client picks its value store when first imported: multiprocess only if its
        # variable was set by then (``waypost serve`` sets it before anything imports it). That
        # choice is what counts, so it is read here rather than the environment.
        self.multiprocess = _values.ValueClass is not _values.MutexValue
        registry = self.registry
        self.requests = Counter(
            "waypost_requests",
            "Requests answered, by action (redirect, respond, rewrite, pass, rejected, internal; "
            "auth: a forward_auth guard's service failed) and response status.",
            ["action", "status"],
            registry=registry,
        )
        self.rules = Gauge(
            "waypost_rules_loaded",
            "Rules in the rule set now serving.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.reloads = Counter(
            "waypost_reloads", "Successful reloads of the rules file.", registry=registry
        )
        self.reload_failures = Counter(
            "waypost_reload_failures",
            "Reloads that failed or were held back by the shrink guard (the previous rules kept "
            "serving).",
            registry=registry,
        )
        self.degraded = Gauge(
            "waypost_degraded",
            "1 while the rules serving are not their source's: a rules file that does not load "
            "or is held back by the shrink guard, a rule store that cannot be reached or read.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.decision_seconds = Histogram(
            "waypost_decision_seconds",
            "Time the engine took to decide a request.",
            buckets=_DECISION_BUCKETS,
            registry=registry,
        )
        self.rule_hits = Counter(
            "waypost_rule_hits",
            "Hits of the busiest rules (with --stats; --stats-top-rules of them per worker, "
            "counted since the worker started, as of its last statistics flush), by rule: its "
            "id in the store.",
            ["rule"],
            registry=registry,
        )
        self.stats_held = Gauge(
            "waypost_stats_batches_held",
            "Batches of statistics not written yet: the store (or Redis, with --redis) did not "
            "take them; they go with the next flush.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.stats_dropped = Gauge(
            "waypost_stats_batches_dropped",
            "Batches of statistics given up after 60 flushes the store (or Redis) refused.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        #: What rule_hits has of each rule already (rules_hit() adds the difference).
        self._rule_hits_shown: dict[str, int] = {}
        self._children: dict[tuple[str, int], Any] = {}
        #: Not yet flushed: requests by (action, status), decisions by bucket, their total time.
        self._pending: dict[tuple[str, int], int] = {}
        self._bounds = _DECISION_BUCKETS[:-1]
        self._pending_buckets = [0] * len(_DECISION_BUCKETS)
        self._pending_seconds = 0.0
        # Bulk increments need the histogram's per-bucket values, which prometheus_client keeps
        # as _buckets and _sum (0.26); were they to change, every decision is observed instead.
        self._bulk = _has_bulk_values(self.decision_seconds)

    def __repr__(self) -> str:
        return f"ServerMetrics(multiprocess={self.multiprocess!r})"

    def count(self, action: str, status: int) -> None:
        """Count one answered request (see :meth:`flush`)."""
        key = (action, status)
        pending = self._pending
        pending[key] = pending.get(key, 0) + 1

    def observe_decision(self, seconds: float) -> None:
        """Record the time the engine took to decide one request (see :meth:`flush`)."""
        if not self._bulk:
            self.decision_seconds.observe(seconds)
            return
        self._pending_buckets[bisect_left(self._bounds, seconds)] += 1
        self._pending_seconds += seconds

    def flush(self) -> None:
        """Move what :meth:`count` and :meth:`observe_decision` gathered into the metrics."""
        pending, self._pending = self._pending, {}
        for key, n in pending.items():
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.requests.labels(key[0], str(key[1]))
            child.inc(n)
        if self._pending_seconds or any(self._pending_buckets):
            buckets, self._pending_buckets = self._pending_buckets, [0] * len(_DECISION_BUCKETS)
            seconds, self._pending_seconds = self._pending_seconds, 0.0
            histogram: Any = self.decision_seconds
            for value, n in zip(histogram._buckets, buckets, strict=True):
                if n:
                    value.inc(n)
            histogram._sum.inc(seconds)

    def rules_hit(self, top: list[tuple[str, int]]) -> None:
        """Bring the per-rule series up to ``top``, the busiest rules and their hits since the
        worker started (a rule's series only grows; one that left the top stays as it was)."""
        shown = self._rule_hits_shown
        for key, hits in top:
            before = shown.get(key, 0)
            if hits > before:
                self.rule_hits.labels(key).inc(hits - before)
                shown[key] = hits

    def reloaded(self, ok: bool, rule_count: int) -> None:
        """Record a reload attempt and the rule count now serving."""
        (self.reloads if ok else self.reload_failures).inc()
        self.rules.set(rule_count)

    def render(self) -> bytes:
        """The Prometheus text of every metric (of every worker, in multiprocess mode)."""
        self.flush()
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def _has_bulk_values(histogram: Histogram) -> bool:
    values = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    return (
        isinstance(values, list)
        and len(values) == len(_DECISION_BUCKETS)
        and all(callable(getattr(v, "inc", None)) for v in [*values, total])
    )
