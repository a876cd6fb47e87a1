"""Slowing down key guessing: failed authentications counted per client address.

A sliding window, in memory, per process: after ``limit`` failures within ``window`` seconds an
address gets 429 with ``Retry-After`` until the oldest of those failures leaves the window. Only
presented-and-refused credentials count (a browser that simply has no cookie yet does not), and a
success does not reset the count: a guesser who also holds one good key gains nothing by using it.
With several worker processes each keeps its own count, which still bounds guessing per worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["FailureLimiter"]


class FailureLimiter:
    """Counts failures per address; :meth:`retry_after` says how long an address must wait."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"limit must be 1 or more and window positive, got {limit}, {window}")
        self.limit = limit
        self.window = window
        self._max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"FailureLimiter(limit={self.limit!r}, window={self.window!r})"

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> int:
        """Seconds ``address`` must wait before trying again (0: it may try now)."""
        now = self._clock()
        with self._lock:
            times = self._recent(address, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def fail(self, address: str) -> None:
        """Record one failure from ``address``."""
        now = self._clock()
        with self._lock:
            times = self._recent(address, now)
            if times is None:
                times = self._failures[address] = deque(maxlen=self.limit)
            times.append(now)
            self._failures.move_to_end(address)
            # Bounded memory under a flood of addresses: forget the least recently failing.
            while len(self._failures) > self._max_addresses:
                self._failures.popitem(last=False)
