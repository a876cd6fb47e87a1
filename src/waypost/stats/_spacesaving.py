"""Streaming top-k counting in bounded memory: the Space-Saving algorithm.

Metwally, Agrawal and El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
Streams" (ICDT 2005). ``capacity`` counters; an item already counted adds one to its counter; a new
item, when all counters are taken, replaces an item with the smallest count and inherits that count
plus one, the inherited part kept as its ``error``. For every tracked item::

    count - error <= true count <= count

and any item whose true count exceeds (items seen) / capacity is tracked. :class:`SpaceSaving` keeps
counters in buckets by count (the paper's Stream-Summary), so finding a smallest count is O(1)
whatever the capacity. :class:`SmallTop` is the same algorithm for a handful of values (a path's
top referrers), where a scan of a few counters is cheaper than buckets.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["SmallTop", "SpaceSaving"]


class SpaceSaving:
    """Space-Saving over string keys with ``capacity`` counters.

    ``unattributed`` counts the hits known to belong to no tracked key: when a key is evicted its
    guaranteed hits (count - error) move there. So at any time the hits seen add up exactly::

        unattributed + sum(count - error for each tracked key) == hits seen
    """

    __slots__ = ("_buckets", "_counts", "_errors", "_min", "capacity", "unattributed")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a Space-Saving table needs at least one counter, not {capacity!r}")
        self.capacity = capacity
        self.unattributed = 0
        self._counts: dict[str, int] = {}
        self._errors: dict[str, int] = {}
        # count -> the keys with that count, as an insertion-ordered set
        self._buckets: dict[int, dict[str, None]] = {}
        self._min = 0

    def __repr__(self) -> str:
        return f"SpaceSaving({self.capacity!r})  # {len(self._counts)} keys tracked"

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    def add(self, key: str) -> str | None:
        """Count one hit of ``key``; answer the key evicted to make room for it, if any."""
        counts = self._counts
        buckets = self._buckets
        old = counts.get(key)
        if old is not None:
            self._move(key, old)
            return None
        if len(counts) < self.capacity:
            counts[key] = 1
            self._errors[key] = 0
            bucket = buckets.get(1)
            if bucket is None:
                bucket = buckets[1] = {}
            bucket[key] = None
            self._min = 1
            return None
        least = self._min
        bucket = buckets[least]
        # popitem() takes the newest of the smallest: O(1). Taking the oldest would scan the
        # deleted slots at the front of the dict each time (quadratic under a scanner); the
        # guarantees hold whichever smallest is replaced.
        victim, _ = bucket.popitem()
        del counts[victim]
        self.unattributed += least - self._errors.pop(victim)
        if not bucket:
            del buckets[least]
            self._min = least + 1
        counts[key] = least + 1
        self._errors[key] = least
        bucket = buckets.get(least + 1)
        if bucket is None:
            bucket = buckets[least + 1] = {}
        bucket[key] = None
        return victim

    def _move(self, key: str, old: int) -> None:
        buckets = self._buckets
        bucket = buckets[old]
        del bucket[key]
        if not bucket:
            del buckets[old]
            if old == self._min:
                # The key itself now holds old + 1, and nothing held less than old.
                self._min = old + 1
        self._counts[key] = old + 1
        higher = buckets.get(old + 1)
        if higher is None:
            higher = buckets[old + 1] = {}
        higher[key] = None

    def count(self, key: str) -> tuple[int, int]:
        """``(count, error)`` of a tracked ``key``; KeyError if it is not tracked."""
        return self._counts[key], self._errors[key]

    def items(self) -> Iterator[tuple[str, int, int]]:
        """``(key, count, error)`` of every tracked key, largest count first."""
        for hits in sorted(self._buckets, reverse=True):
            for key in self._buckets[hits]:
                yield key, hits, self._errors[key]


class SmallTop:
    """Space-Saving for a few values (a path's referrers or user agents): ``capacity`` counters
    in one dict, a smallest found by a scan. Counts are upper bounds, as in :class:`SpaceSaving`;
    the errors are not kept (a few bytes per value, for a figure nobody reads at this size)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SmallTop()  # {self.counts!r}"

    def add(self, value: str, capacity: int) -> None:
        """Count one ``value``, keeping at most ``capacity`` values."""
        counts = self.counts
        known = counts.get(value)
        if known is not None:
            counts[value] = known + 1
        elif len(counts) < capacity:
            counts[value] = 1
        else:
            victim = min(counts, key=counts.__getitem__)
            counts[value] = counts.pop(victim) + 1

    def top(self) -> tuple[tuple[str, int], ...]:
        """``(value, count)`` pairs, largest count first."""
        return tuple(sorted(self.counts.items(), key=lambda item: -item[1]))
