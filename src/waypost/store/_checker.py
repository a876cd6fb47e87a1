"""What :class:`~waypost.store.keys.KeyChecker` and :class:`~waypost.store.sessions.SessionChecker`
share: a lookup in the store, a short cache of successful checks (:mod:`waypost.store._cache`)
and last-use times written in batches (:mod:`waypost.store._usage`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from waypost.store._cache import CheckCache
from waypost.store._usage import UsageLog, UsageRecorder

__all__ = ["CachedChecker"]

Found = TypeVar("Found")
V = TypeVar("V")


class CachedChecker(Generic[Found, V]):
    """Checks presented credentials against a store, with a short cache and throttled last-use
    writes. ``lookup(ident)`` returns what the store holds for a credential (None when it holds
    nothing); ``record_use({ident: when})`` writes last-use times. Thread-safe."""

    def __init__(
        self,
        lookup: Callable[[str], Found | None],
        record_use: UsageRecorder,
        *,
        ttl: float = 2.0,
        usage_interval: float = 60.0,
        cache_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._record_use = record_use
        self._cache: CheckCache[V] = CheckCache(ttl=ttl, size=cache_size, clock=clock)
        # Looked up at each write, so that a test may swap ``_record_use``.
        self._usage = UsageLog(
            lambda used: self._record_use(used), interval=usage_interval, clock=clock
        )

    @property
    def usage_interval(self) -> float:
        """At most one last-use write per credential in this many seconds."""
        return self._usage.interval

    @property
    def ttl(self) -> float:
        """Seconds a successful check is trusted before the store is asked again."""
        return self._cache.ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ttl={self.ttl!r}, usage_interval={self.usage_interval!r})"

    def flush(self, only: str | None = None) -> None:
        """Write pending last-use times (of one credential, or all)."""
        self._usage.flush(only)
