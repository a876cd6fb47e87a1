"""Prometheus metrics for ``/_waypost/metrics``, kept with prometheus_client.

With one worker the metrics live in the process. With several, ``waypost serve`` runs
prometheus_client's multiprocess mode: the main process sets ``PROMETHEUS_MULTIPROC_DIR`` to a
private temporary folder before any worker starts, each worker writes its values to memory-mapped
files there, and a scrape answered by any worker adds them all up, so the numbers are the server's,
not one worker's. (Reload counters count per worker: one file change reloads in every worker.)

The hot path pays one dict lookup and two ``inc``/``observe`` calls per request: the labelled
children are cached, because ``labels()`` costs more than the increment itself.
"""

from __future__ import annotations

import os
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
        # prometheus_client picks its value store when first imported: multiprocess only if the
        # variable was set by then (``waypost serve`` sets it before anything imports it).
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV)) and (
            _values.ValueClass is not _values.MutexValue
        )
        registry = self.registry
        self.requests = Counter(
            "waypost_requests",
            "Requests answered, by action (redirect, respond, rewrite, pass, rejected, internal) "
            "and response status.",
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
            "Reloads of the rules file that failed (the previous rules kept serving).",
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "waypost_decision_seconds",
            "Time the engine took to decide a request.",
            buckets=_DECISION_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def __repr__(self) -> str:
        return f"ServerMetrics(multiprocess={self.multiprocess!r})"

    def count(self, action: str, status: int) -> None:
        """Count one answered request."""
        key = (action, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(action, str(status))
        child.inc()

    def reloaded(self, ok: bool, rule_count: int) -> None:
        """Record a reload attempt and the rule count now serving."""
        (self.reloads if ok else self.reload_failures).inc()
        self.rules.set(rule_count)

    def render(self) -> bytes:
        """The Prometheus text of every metric (of every worker, in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
