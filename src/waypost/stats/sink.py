"""What the adapters (the server, the middlewares) record analytics into: a :class:`StatsSink`.

A sink takes each decision (:meth:`StatsSink.hit`: the rule that decided, if any, is counted) and
each request that ended in 404 (:meth:`StatsSink.missing`), on the request path, without I/O;
where the counts go is the sink's business (:class:`waypost.store.recorder.StatsRecorder` adds
them to a rule store from a thread of its own). :meth:`StatsSink.start` and :meth:`StatsSink.stop`
bracket a process's serving: the middlewares call them at the ASGI lifespan's start-up and
shutdown, or start on the first request and stop when the interpreter exits.
"""

from __future__ import annotations

from typing import Protocol

from waypost.decision import Decision

__all__ = ["StatsSink"]


class StatsSink(Protocol):
    """Records rule hits and 404s; see the module docstring."""

    def hit(self, decision: Decision, when: float) -> None:
        """Count the rule that made ``decision`` at Unix time ``when`` (none: nothing)."""

    def missing(
        self, target: str, referrer: str | None, user_agent: str | None, when: float
    ) -> None:
        """Count a request for ``target`` (its path and query, as sent) that ended in 404."""

    def start(self) -> None:
        """Begin (a thread, a connection); called in the serving process, after any fork."""

    def stop(self) -> None:
        """Write what is counted and end; called once serving is over."""
