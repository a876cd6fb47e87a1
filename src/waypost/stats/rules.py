"""Per-rule hit counts, recorded on the request path and drained in batches.

:class:`RuleHits` counts hits in memory: per key (a rule's stable identity, a string the caller
chooses, such as the store's rule id or a rules file's ``file:line``) the number of hits, the first
and last hit and the hits per hour. :meth:`RuleHits.drain` hands the counts gathered since the last
drain over as :class:`RuleHitDelta` values and starts again from nothing, so memory holds one drain
interval's keys at most. Deltas are increments: those of several drains, workers or instances add up
with :func:`merge_rule_deltas` (hits and hours add, ``first`` is the earliest, ``last`` the latest),
which is what a store does with them.

``first`` and ``last`` are the times of the first and the last hit recorded, as the caller's clock
read them: with a clock they are the earliest and the latest (comparing on every hit would cost the
request path a look-up more, for clocks that step back).

Thread safety without a lock (CPython, with its GIL). A lock would cost every request and serialise
the workers' threads; instead every step of :meth:`RuleHits.record` is one operation the
interpreter does not interrupt:

- a count is an :class:`itertools.count` advanced with ``next()``: one call into C, so two threads
  never lose an increment (``n += 1`` on an int can: the load and the store are separate steps);
- an hour's table and a key's counter are created with ``dict.setdefault``, one operation, so two
  threads seeing a key at once share one counter;
- ``first`` is set once by ``setdefault``, ``last`` by one store, both before the count, so a drain
  that finds a hit finds its times. Two threads racing on one key may leave ``last`` at the time of
  the one that stored first: microseconds apart.

:meth:`RuleHits.drain` replaces the pending table with a fresh one in one store; a thread that
read the old table just before the swap may still count into it. Such a thread holds the table in
a local variable, which its reference count shows: a table still held is kept and read again at
each later drain until it is not, and the late hits found are reported then. No hit is lost; a late
one comes a drain late. In the usual case nobody holds the table and one read is all it takes. All
of this leans on CPython's GIL: a free-threaded build (3.13t) would need a lock.

Costs (CPython 3.11, this machine): ``record`` about 210 ns for a key seen since the last drain,
1.4 microseconds for a new one (mostly the counter and the garbage collector's share); ``drain``
about 3 microseconds per key (3 s for a million keys), off the request path.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import count

__all__ = ["RuleHitDelta", "RuleHits", "merge_rule_deltas"]

#: Seconds in one bucket of :attr:`RuleHitDelta.hours`.
HOUR = 3600


@dataclass(frozen=True, slots=True)
class RuleHitDelta:
    """The hits of one rule since the last drain: an increment, to be added to what is stored.

    ``key`` is the rule's identity as the caller gave it; ``hits`` the number of hits; ``first``
    and ``last`` the first and last hit (Unix times); ``hours`` the hits per hour, keyed by the
    Unix time the hour starts at (a multiple of 3600), adding up to ``hits``.
    """

    key: str
    hits: int
    first: float
    last: float
    hours: Mapping[int, int] = field(hash=False)

    def merge(self, other: RuleHitDelta) -> RuleHitDelta:
        """This delta and ``other`` (the same key) as one: hits and hours add up."""
        if other.key != self.key:
            raise ValueError(f"cannot merge the hits of {self.key!r} with those of {other.key!r}")
        hours = dict(self.hours)
        for hour, hits in other.hours.items():
            hours[hour] = hours.get(hour, 0) + hits
        return RuleHitDelta(
            self.key,
            self.hits + other.hits,
            min(self.first, other.first),
            max(self.last, other.last),
            hours,
        )


def merge_rule_deltas(*drains: Iterable[RuleHitDelta]) -> tuple[RuleHitDelta, ...]:
    """The deltas of several drains (of one recorder, or of many workers and instances) added up:
    one delta per key, in the order keys first appear."""
    merged: dict[str, RuleHitDelta] = {}
    for drain in drains:
        for delta in drain:
            known = merged.get(delta.key)
            merged[delta.key] = delta if known is None else known.merge(delta)
    return tuple(merged.values())


# hour start -> key -> counter of that key's hits in that hour
_Counters = dict[int, dict[str, "count[int]"]]
# hour start -> key -> what a drain read of that counter
_Seen = dict[int, dict[str, int]]


class _Table:
    """The hits pending since the last drain. Flat dictionaries rather than an object per key: a
    key seen for the first time costs one counter and three dictionary slots, and the cyclic
    garbage collector, which walks every container object, has one object per key to walk."""

    __slots__ = ("counters", "firsts", "lasts")

    def __init__(self) -> None:
        self.counters: _Counters = {}
        self.firsts: dict[str, float] = {}
        self.lasts: dict[str, float] = {}


class RuleHits:
    """Per-rule hit counters in memory; see the module docstring for thread safety.

    ``record`` is called on the request path: a few dictionary steps and one counter step,
    allocating only on the first hit of a key (and of each hour) since the last drain. ``drain``
    is called off the request path, every few seconds and on shutdown, and its deltas flushed to
    the store.
    """

    __slots__ = ("_retired", "_table")

    def __init__(self) -> None:
        self._table = _Table()
        # Tables drained already that a recording thread may still count into (see drain()),
        # each with what the drains read of its counters and a marker.
        self._retired: list[tuple[_Table, _Seen, object]] = []

    def __repr__(self) -> str:
        return f"RuleHits()  # {len(self._table.firsts)} keys pending"

    def record(self, key: str, when: float) -> None:
        """Count one hit of the rule ``key`` at Unix time ``when``."""
        table = self._table
        hour = int(when // HOUR) * HOUR
        counters = table.counters.get(hour)
        if counters is None:
            counters = table.counters.setdefault(hour, {})
        counter = counters.get(key)
        if counter is None:
            # `first` goes in before the counter exists and `last` before the count: a drain
            # that finds a hit finds its times.
            table.firsts.setdefault(key, when)
            counter = counters.setdefault(key, count())
        table.lasts[key] = when
        next(counter)

    def drain(self) -> tuple[RuleHitDelta, ...]:
        """The hits recorded since the last drain, one delta per key; recording goes on into a
        fresh table meanwhile. Hits a racing thread counted into an earlier drain's table after
        that drain read it come with this one (merged into the key's delta).

        Called from one thread at a time (the flusher's): two drains at once would share the
        retired tables."""
        table = self._table
        self._table = _Table()
        marker = object()
        # A thread inside record() holds the table it read in a local variable, so the table then
        # has more references than the marker, referenced here exactly as it is. A table without
        # one can never be reached again (self._table is a newer table): checked before reading,
        # so the read that follows is its last. A table still held is kept and read again.
        retired = []
        late: list[tuple[RuleHitDelta, ...]] = []
        for old, seen, old_marker in self._retired:
            held = sys.getrefcount(old) > sys.getrefcount(old_marker)
            late.append(_deltas(old, seen))
            if held:
                retired.append((old, seen, old_marker))
        if sys.getrefcount(table) > sys.getrefcount(marker):
            seen_now: _Seen = {}
            deltas = _deltas(table, seen_now)
            retired.append((table, seen_now, marker))
        else:
            deltas = _deltas(table, None)
        self._retired = retired
        return merge_rule_deltas(deltas, *late) if any(late) else deltas


def _deltas(table: _Table, seen: _Seen | None) -> tuple[RuleHitDelta, ...]:
    """The hits counted in ``table``, less what ``seen`` says a drain has read already (nothing,
    for a counter it lacks); ``seen``, if given, is updated with what is read now."""
    hours_of: dict[str, dict[int, int]] = {}
    # list() copies in one step: a racing thread may still add an hour or a key to the table.
    for hour, counters in list(table.counters.items()):
        before = seen.setdefault(hour, {}) if seen is not None else None
        for key, counter in list(counters.items()):
            # An itertools.count cannot be read but by advancing it: its value is the number of
            # hits, and each reading adds a step of its own that is not a hit.
            hits = next(counter)
            if before is not None:
                last_read = before.get(key)
                before[key] = hits
                if last_read is not None:
                    hits -= last_read + 1
            if hits:
                hours = hours_of.get(key)
                if hours is None:
                    hours_of[key] = {hour: hits}
                else:
                    hours[hour] = hits
    firsts, lasts = table.firsts, table.lasts
    return tuple(
        RuleHitDelta(key, sum(hours.values()), firsts[key], lasts[key], hours)
        for key, hours in hours_of.items()
    )
