"""A small thread-safe cache of recent successful checks (API keys, sign-in sessions).

An entry is good for ``ttl`` seconds: long enough to spare the database a query per request,
short enough that a revocation made in another process takes effect within seconds. At most
``size`` entries are kept, the least recently stored dropped first.

A revocation made in this process drops the entries it ends, and must not be undone by a check
that was already asking the database when it happened (and may have read the row just before it
was deleted): :meth:`CheckCache.put` takes the :attr:`~CheckCache.generation` read before that
lookup and stores nothing if an entry was dropped since.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CheckCache"]

V = TypeVar("V")


class CheckCache(Generic[V]):
    """Fresh values by digest; see the module docstring."""

    def __init__(
        self, *, ttl: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._generation = 0

    def __repr__(self) -> str:
        return f"CheckCache(ttl={self.ttl!r}, size={self._size!r})"

    def get(self, digest: str) -> V | None:
        """The value stored for ``digest`` less than ``ttl`` seconds ago, or None."""
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or self._clock() - entry[1] >= self.ttl:
            return None
        return entry[0]

    @property
    def generation(self) -> int:
        """Counts the calls of :meth:`drop`: read it before a lookup, pass it to :meth:`put`."""
        return self._generation

    def put(self, digest: str, value: V, *, generation: int | None = None) -> None:
        """Store ``value`` for ``digest``, unless ``generation`` (read before the lookup that
        found ``value``) is no longer current: something was dropped since, perhaps this."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._entries[digest] = (value, self._clock())
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def pop(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def drop(self, matches: Callable[[str, V], bool] | None = None) -> None:
        """Drop the entries ``matches(digest, value)`` selects, or all of them."""
        with self._lock:
            self._generation += 1
            if matches is None:
                self._entries.clear()
                return
            for digest in [d for d, (value, _) in self._entries.items() if matches(d, value)]:
                del self._entries[digest]
