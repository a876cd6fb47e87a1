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

Recording costs the request path two appends and nothing more: :meth:`RuleHits.record` adds the
key and the time to a log. The counting happens off the request path, in :meth:`RuleHits.fold`,
which the flushing thread calls every second or so (and :meth:`RuleHits.drain` calls first): it
takes the log as it is and counts it into per-hour tallies with the C loops of
:class:`collections.Counter` and ``dict(zip(...))``. Memory holds one fold interval's log (a
second of hits) and one entry per key seen since the last drain.

Thread safety without a lock (CPython, with its GIL). ``list.append`` and ``array.append`` are
each one operation the interpreter does not interrupt, so two recording threads never lose a hit;
the time goes in before the key, so a key read has its time (with two threads recording at once,
a hit may be given the other's time: microseconds apart). :meth:`RuleHits.fold`
replaces the log with a fresh list in one store; a thread that read the old log just before the
swap may still append to it. Such a thread holds the log in a temporary, which its reference count
shows: a log still held is kept, and what was appended to it since is folded at each later fold
until nobody holds it. No hit is lost; a late one is counted a fold late. ``fold`` and ``drain``
are called from one thread at a time (the flusher's). All of this leans on CPython's GIL: a
free-threaded build (3.13t) would need a lock.

Costs (CPython 3.11, this machine): ``record`` about 90 ns; ``fold`` about 0.1 microsecond per hit;
``drain`` about 2 microseconds per key. Only ``record`` is on the request path.
"""

from __future__ import annotations

import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["PositionDelta", "PositionHits", "RuleHitDelta", "RuleHits", "merge_rule_deltas"]

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


K = TypeVar("K", str, int)


class _Log(Generic[K]):
    """Hits as record() appends them: the keys in a list, the times in an array of doubles. No
    object per hit that the cyclic garbage collector would walk (a pair per hit, alive for a
    second, made each collection walk a second's worth of pairs)."""

    __slots__ = ("keys", "whens")

    def __init__(self) -> None:
        self.keys: list[K] = []
        self.whens = array("d")


class _Folding(Generic[K]):
    """The log :meth:`record` appends to and :meth:`fold` counts, for a subclass's ``_count``."""

    __slots__ = ("_log", "_retired")

    def __init__(self) -> None:
        self._log: _Log[K] = _Log()
        # Logs folded already that a recording thread may still append to (see fold()), each
        # with how much of it was folded and a marker.
        self._retired: list[tuple[_Log[K], int, object]] = []

    def record(self, key: K, when: float) -> None:
        """Count one hit of the rule ``key`` at Unix time ``when``."""
        log = self._log
        log.whens.append(when)
        log.keys.append(key)

    def fold(self) -> int:
        """Count the hits recorded since the last fold into the pending tallies (off the request
        path); the number of hits folded."""
        log = self._log
        self._log = _Log()
        marker = object()
        # A thread inside record() holds the log it read, so the log then has more references
        # than the marker, referenced here exactly as it is. A log without one can never be
        # reached again (self._log is a newer one): checked before reading, so the read that
        # follows is its last. A log still held is kept and read again from where it was left.
        # record() appends the time first: a key appended has its time.
        retired: list[tuple[_Log[K], int, object]] = []
        folded = 0
        for old, done, old_marker in self._retired:
            held = sys.getrefcount(old) > sys.getrefcount(old_marker)
            end = len(old.keys)
            folded += self._count(old.keys[done:end], old.whens[done:end])
            if held:
                retired.append((old, end, old_marker))
        if sys.getrefcount(log) > sys.getrefcount(marker):
            end = len(log.keys)
            folded += self._count(log.keys[:end], log.whens[:end])
            retired.append((log, end, marker))
        else:  # nobody appends to it any more: read as it is
            folded += self._count(log.keys, log.whens)
        self._retired = retired
        return folded

    def _count(self, keys: list[K], whens: Sequence[float]) -> int:
        raise NotImplementedError


class RuleHits(_Folding[str]):
    """Per-rule hit counters in memory; see the module docstring for thread safety.

    ``record`` is called on the request path: two appends. ``fold`` counts what was appended
    (every second or so, off the request path), and ``drain`` hands the counts over, every few
    seconds and on shutdown, for the store.
    """

    __slots__ = ("_firsts", "_hours", "_lasts")

    def __init__(self) -> None:
        super().__init__()
        #: Folded since the last drain: hour start -> key -> hits, and each key's first and last.
        self._hours: dict[int, Counter[str]] = {}
        self._firsts: dict[str, float] = {}
        self._lasts: dict[str, float] = {}

    def __repr__(self) -> str:
        unfolded = len(self._log.keys)
        return f"RuleHits()  # {unfolded} hits unfolded, {len(self._firsts)} keys pending"

    def pending(self) -> int:
        """The keys folded since the last drain: the deltas the next drain gives, at least."""
        return len(self._firsts)

    def _count(self, keys: list[str], whens: Sequence[float]) -> int:
        if not keys:
            return 0
        # C loops only (zip, Counter, dict): a Python loop per hit would cost what the log saved
        # the request path.
        hour = int(min(whens) // HOUR) * HOUR
        if int(max(whens) // HOUR) * HOUR == hour:
            by_hour: list[tuple[int, list[str]]] = [(hour, keys)]
        else:  # the log spans the end of an hour (one fold an hour, or a clock stepping back)
            split: dict[int, list[str]] = {}
            for key, when in zip(keys, whens, strict=True):
                split.setdefault(int(when // HOUR) * HOUR, []).append(key)
            by_hour = list(split.items())
        for start, hour_keys in by_hour:
            tally = self._hours.get(start)
            if tally is None:
                tally = self._hours[start] = Counter()
            tally.update(hour_keys)
        # dict(zip()) keeps the last value of a repeated key: the last hit, and (reversed) the
        # first; a key folded before keeps its first (the new keys' firsts are copied over by
        # itemgetter, in C too).
        firsts = self._firsts
        batch_firsts = dict(zip(reversed(keys), reversed(whens), strict=True))
        new = list(batch_firsts.keys() - firsts.keys())
        if len(new) > 1:
            firsts.update(zip(new, itemgetter(*new)(batch_firsts), strict=True))
        elif new:
            firsts[new[0]] = batch_firsts[new[0]]
        self._lasts.update(zip(keys, whens, strict=True))
        return len(keys)

    def drain(self) -> tuple[RuleHitDelta, ...]:
        """The hits recorded since the last drain, one delta per key (folded first); recording
        goes on meanwhile. Hits a racing thread appended to a log already folded come with a
        later drain (see fold())."""
        self.fold()
        hours, firsts, lasts = self._hours, self._firsts, self._lasts
        self._hours, self._firsts, self._lasts = {}, {}, {}
        hours_of: dict[str, dict[int, int]] = {}
        for start, tally in hours.items():
            for key, hits in tally.items():
                known = hours_of.get(key)
                if known is None:
                    hours_of[key] = {start: hits}
                else:
                    known[start] = hits
        return tuple(
            RuleHitDelta(key, sum(counts.values()), firsts[key], lasts[key], counts)
            for key, counts in hours_of.items()
        )


class PositionDelta(NamedTuple):
    """The hits of the rule at ``position`` since the last drain (see :class:`RuleHitDelta`)."""

    position: int
    hits: int
    first: float
    last: float
    hours: dict[int, int]


class PositionHits(_Folding[int]):
    """Hit counters for the ``size`` rules of one rule set, by position (``0 .. size - 1``),
    for rule sets of any size: where :class:`RuleHits` keeps a dictionary entry and two floats
    per key (about 140 bytes, and a fold of a second of hits over a million rules costs as much
    as the requests), the fold here adds into one array, 24 bytes per rule: the hits in the
    current hour, the first and the last hit, side by side, so that a hit touches one cache line.
    Times are Unix times (more than 0: a first hit of 0.0 reads as none). Recording is the same
    two appends; the caller names the positions when it drains (a store id, a ``file:line``).
    """

    __slots__ = ("_closed", "_hour", "_slots", "_touched", "size")

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        #: Per position: hits in the hour ``_hour``, first hit, last hit (0.0: not hit).
        self._slots = array("d", bytes(24 * size))
        self._hour: int | None = None
        #: Hours before ``_hour`` since the last drain: hour start -> position -> hits.
        self._closed: dict[int, dict[int, int]] = {}
        #: The positions hit since the last drain, in the order of their first hit.
        self._touched: list[int] = []

    def __repr__(self) -> str:
        unfolded = len(self._log.keys)
        pending = len(self._touched)
        return f"PositionHits({self.size})  # {unfolded} hits unfolded, {pending} pending"

    def pending(self) -> int:
        """The positions hit since the last drain: the deltas the next drain gives."""
        return len(self._touched)

    def _open(self, hour: int | None) -> None:
        """Move the hits of the hour counted so far aside and count ``hour``'s from now on."""
        if self._hour is not None:
            slots = self._slots
            closed = self._closed.setdefault(self._hour, {})
            for position in self._touched:
                at = 3 * position
                hits = int(slots[at])
                if hits:
                    closed[position] = closed.get(position, 0) + hits
                    slots[at] = 0.0
        self._hour = hour

    def _count(self, keys: list[int], whens: Sequence[float]) -> int:
        if not keys:
            return 0
        slots, touched = self._slots, self._touched
        hour = int(min(whens) // HOUR) * HOUR
        same_hour = int(max(whens) // HOUR) * HOUR == hour
        if same_hour and hour != self._hour:
            self._open(hour)
        for position, when in zip(keys, whens, strict=True):
            if not same_hour:  # the log spans the end of an hour (one fold an hour)
                hour = int(when // HOUR) * HOUR
                if hour != self._hour:
                    self._open(hour)
            at = 3 * position
            slots[at] += 1.0
            if not slots[at + 1]:
                slots[at + 1] = when
                touched.append(position)
            slots[at + 2] = when
        return len(keys)

    def add_counted(self, counter: Any, when: float) -> int:
        """Fold the hits ``counter`` counted in C (a compiled road's, see
        ``Engine.count_hits()``) in at Unix time ``when``; the number of hits. A counted hit's
        first and last time is the fold's: at most a fold interval later than the request."""
        self.fold()  # the hits recorded before, first: their times are earlier
        hour = int(when // HOUR) * HOUR
        if hour != self._hour:
            self._open(hour)
        return int(counter.drain_into(self._slots, when, self._touched))

    def drain(self) -> list[PositionDelta]:
        """The hits recorded since the last drain, one delta per position hit, in the order
        they were first hit (folded first); recording goes on meanwhile."""
        self.fold()
        self._open(None)
        closed, touched = self._closed, self._touched
        self._closed, self._touched = {}, []
        slots = self._slots
        deltas = []
        for position in touched:
            per_hour = {}
            for hour, hits in closed.items():
                count = hits.get(position)
                if count:
                    per_hour[hour] = count
            at = 3 * position
            deltas.append(
                PositionDelta(
                    position, sum(per_hour.values()), slots[at + 1], slots[at + 2], per_hour
                )
            )
            slots[at + 1] = slots[at + 2] = 0.0
        return deltas
