"""Last-use times, written in batches: at most once per ``interval`` seconds for each id, the rest
kept until the next due write or :meth:`UsageLog.flush` (API keys' ``last_used_at`` and admin
sessions' ``last_seen_at``, so that a check is not a database write per request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime

from waypost.exceptions import StoreError

__all__ = ["UsageLog", "UsageRecorder"]

UsageRecorder = Callable[[Mapping[str, datetime]], None]


class UsageLog:
    """Pending last-use times, written through ``write({id: when})``. Thread-safe."""

    def __init__(
        self,
        write: UsageRecorder,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, datetime] = {}
        self._written: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"UsageLog(interval={self.interval!r})"

    def note(self, ident: str) -> None:
        """``ident`` was used now; written at once if its last write is ``interval`` old."""
        now = self._clock()
        with self._lock:
            self._pending[ident] = datetime.now(UTC)
            due = now - self._written.get(ident, -self.interval) >= self.interval
            if due:
                self._written[ident] = now
        if due:
            # flush() keeps the time on failure: a database hiccup must not refuse a good check.
            with suppress(StoreError):
                self.flush(only=ident)

    def flush(self, only: str | None = None) -> None:
        """Write pending times (of one id, or all); on StoreError they stay pending."""
        with self._lock:
            if only is not None:
                batch = {only: self._pending.pop(only)} if only in self._pending else {}
            else:
                batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            self._write(batch)
        except StoreError:
            with self._lock:
                for ident, when in batch.items():
                    self._pending.setdefault(ident, when)
            raise
