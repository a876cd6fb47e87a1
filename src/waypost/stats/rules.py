"""Per-rule hit counts, recorded on the request path and drained in batches.

:class:`RuleHits` counts hits in memory: per key (a rule's stable identity, a string the caller
chooses, such as the store's rule id or a rules file's ``file:line``) the number of hits, the first
and last hit and the hits per hour. :meth:`RuleHits.drain` hands the counts gathered since the last
drain over as :class:`RuleHitDelta` values and starts again from nothing, so memory holds one drain
interval's keys at most. Deltas are increments: those of several drains, workers or instances add up
with :func:`merge_rule_deltas` (hits and hours add, ``first`` is the earliest, ``last`` the latest),
which is what a store does with them.

Thread safety without a lock (CPython, with its GIL). A lock would cost every request and serialise
the workers' threads; instead every step of :meth:`RuleHits.record` is one operation the
interpreter does not interrupt:

- a count is an :class:`itertools.count` advanced with ``next()``: one call into C, so two threads
  never lose an increment (``n += 1`` on an int can: the load and the store are separate steps);
- a key's tally and an hour's counter are created with ``dict.setdefault``, one operation, so two
  threads seeing a key at once share one tally;
- ``first`` and ``last`` are a comparison then one attribute store: threads racing within the same
  microseconds may leave a time a few microseconds off the exact minimum or maximum. Counts are
  exact; only these times carry that slack.

:meth:`RuleHits.drain` replaces the pending table with a fresh one in one store; a thread that
read the old table just before the swap may still count into it. So the old table is kept for one
more drain, and for as long as a thread inside ``record`` still holds it (its reference count says
so), and each drain reports the late hits found in it: no hit is lost. Late hits come one drain
late, with the tally's times. All of this leans on CPython's GIL: a free-threaded build (3.13t)
would need a lock.
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


class _Tally:
    """One key's pending hits: the hour counters and the first and last hit."""

    __slots__ = ("first", "hours", "last")

    def __init__(self, when: float) -> None:
        self.first = when
        self.last = when
        # hour start -> counter; a key's hits are the sum over its hours, so there is no
        # separate total to keep in step.
        self.hours: dict[int, count[int]] = {}


def _read(counter: count[int]) -> int:
    """How many times ``counter`` has been advanced, read by advancing it once more (an
    itertools.count cannot be read otherwise); the caller accounts for that extra step."""
    return next(counter)


class RuleHits:
    """Per-rule hit counters in memory; see the module docstring for thread safety.

    ``record`` is called on the request path: a few dictionary look-ups and one counter step,
    allocating only on the first hit of a key (and of each hour) since the last drain. ``drain``
    is called off the request path, every few seconds and on shutdown, and its deltas flushed to
    the store.
    """

    __slots__ = ("_pending", "_retired")

    def __init__(self) -> None:
        self._pending: dict[str, _Tally] = {}
        # Tables drained already, each with what the drains read of its counters and a marker,
        # kept while a recording thread may still count into them (see drain()).
        self._retired: list[tuple[dict[str, _Tally], dict[str, dict[int, int]], object]] = []

    def __repr__(self) -> str:
        return f"RuleHits()  # {len(self._pending)} keys pending"

    def record(self, key: str, when: float) -> None:
        """Count one hit of the rule ``key`` at Unix time ``when``."""
        pending = self._pending
        tally = pending.get(key)
        if tally is None:
            tally = pending.setdefault(key, _Tally(when))
        hour = int(when // HOUR) * HOUR
        hours = tally.hours
        counter = hours.get(hour)
        if counter is None:
            counter = hours.setdefault(hour, count())
        next(counter)
        if when > tally.last:
            tally.last = when
        elif when < tally.first:
            tally.first = when

    def drain(self) -> tuple[RuleHitDelta, ...]:
        """The hits recorded since the last drain, one delta per key; recording goes on into a
        fresh table meanwhile. Hits a racing thread counted into an earlier drain's table after
        that drain read it come with this one (merged into the key's delta)."""
        pending = self._pending
        self._pending = {}
        late: list[tuple[RuleHitDelta, ...]] = []
        retired = []
        for table, seen, marker in self._retired:
            # A thread inside record() holds the table it read in a local variable, so the table
            # then has more references than its marker, referenced here exactly as it is. Once it
            # has no more, nobody can reach it again (self._pending is a newer table): this read
            # is the last one needed.
            held = sys.getrefcount(table) > sys.getrefcount(marker)
            late.append(_deltas(table, seen))
            if held:
                retired.append((table, seen, marker))
        seen_now: dict[str, dict[int, int]] = {}
        deltas = _deltas(pending, seen_now)
        retired.append((pending, seen_now, {}))
        self._retired = retired
        return merge_rule_deltas(deltas, *late) if any(late) else deltas


def _deltas(table: dict[str, _Tally], seen: dict[str, dict[int, int]]) -> tuple[RuleHitDelta, ...]:
    """The hits counted in ``table`` beyond what ``seen`` says a drain has read already (nothing,
    for a key or hour it lacks); ``seen`` is updated with what is read now."""
    deltas: list[RuleHitDelta] = []
    # list() copies in one step: a racing thread may still add a key or an hour to the table.
    for key, tally in list(table.items()):
        before = seen.get(key, {})
        now = {hour: _read(counter) for hour, counter in list(tally.hours.items())}
        # Each earlier reading advanced the counter once itself: that step is not a hit.
        hours = {h: n - before[h] - 1 if h in before else n for h, n in now.items()}
        hours = {h: n for h, n in hours.items() if n}
        seen[key] = now
        if hours:
            deltas.append(RuleHitDelta(key, sum(hours.values()), tally.first, tally.last, hours))
    return tuple(deltas)
