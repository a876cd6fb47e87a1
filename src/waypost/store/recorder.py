"""Analytics kept in a rule store: what each rule answered and which paths answered 404, counted
in memory on the request path (:mod:`waypost.stats`) and added to the store in batches, for a
server's worker or a middleware (``WaypostMiddleware(app, rules, stats=recorder)``).

Each worker (each process of an app with a middleware) counts on its own and, every
``interval`` seconds and when it stops gracefully, drains its counters into the store as
increments (``Store.add_rule_hits`` and ``Store.add_not_found`` add, never overwrite), so the
workers and instances sharing one database see the sum. A crash loses at most the last
interval's counts. A flush that fails (the database unreachable) keeps the drained counts and
adds them to the next flush, up to ``MAX_HELD`` batches; past that the oldest batch is dropped
and counted in ``dropped``.

A rule is counted by its store id or, for rules from a file, by its ``file:line``. The rules an
engine serves are bound (:meth:`StatsRecorder.bind`, which the store sync calls with each new
revision): their hits are counted by position into arrays, which stay small and cheap to fold at
a million rules; a rule of no bound rule set (a middleware's) is counted by its key.
Retention: once an hour, rows older than ``retention`` days are purged (``Store.purge_stats``).

The request path only appends to a log (:class:`~waypost.stats.RuleHits`); the thread folds the
log into counts every second and writes them every ``interval`` seconds, or less often when
writing would take long: the next flush waits until the time since the last is at least
``1 / BUDGET`` times what it is expected to cost (its rows, at what the last flush cost per row),
so flushing takes at most about 1% of the worker whatever the rule set. With a million rules hit
evenly a flush writes up to a million rows, and the interval grows to several minutes, which is
also what a crash can lose (the counts of bound rules take 25 bytes per rule meanwhile; those
counted by key, about 140 bytes per key). :meth:`StatsRecorder.report` says the interval in use.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from waypost.decision import Decision
from waypost.exceptions import StoreError
from waypost.rules.model import Rule
from waypost.stats import NotFoundLog, RuleHits
from waypost.stats.rules import PositionHits
from waypost.stats.visits import AddressMode, Visit, anonymize
from waypost.store._background import BackgroundLoop
from waypost.store.connect import open_store
from waypost.store.redis_stats import RedisCounters, open_redis_counters
from waypost.store.stats import NotFoundDelta as StoredNotFound
from waypost.store.stats import RuleHitsDelta as StoredRuleHits

if TYPE_CHECKING:
    from waypost.engine import Engine

__all__ = ["BUDGET", "MAX_HELD", "MAX_PENDING_VISITS", "StatsRecorder", "open_geoip"]

logger = logging.getLogger("waypost.store")

#: Batches kept while the store cannot take them (one per interval).
MAX_HELD = 60
_PURGE_EVERY = 3600.0
#: The share of a worker's CPU time the flushes may take (see the module docstring).
BUDGET = 0.01
#: Visits kept while the store does not answer; past them, new ones are dropped (counted).
MAX_PENDING_VISITS = 10_000
#: Seconds between folds of the hit log (memory holds about this long a log).
FOLD_EVERY = 1.0
#: What a flush is taken to cost per row before one was measured (SQLite on this machine:
#: 10 to 15 microseconds), and the least a measurement may set it to.
ROW_SECONDS = 15e-6
MIN_ROW_SECONDS = 1e-6


_second = itemgetter(1)


def open_geoip(path: str) -> Any:
    """A reader of the GeoLite2 (or GeoIP2) file at ``path``; StoreError saying why not."""
    try:
        import maxminddb
    except ImportError:
        raise StoreError(
            "--geoip needs the maxminddb package: pip install 'waypost[geoip]'"
        ) from None
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"--geoip {path!r} is not a readable MaxMind database ({exc}); download "
            "GeoLite2-Country.mmdb from MaxMind"
        ) from None


def _stamp(moment: float | None) -> str | None:
    return (
        None
        if moment is None
        else datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )


class _Bound:
    """A rule set whose hits are counted by position, and the keys its positions have."""

    __slots__ = ("hits", "ids", "record", "rules")

    def __init__(self, rules: Sequence[Rule], ids: tuple[str, ...], hits: PositionHits) -> None:
        self.rules = rules
        self.ids = ids
        self.hits = hits
        self.record = hits.record

    def key(self, position: int) -> str:
        """The key the rule at ``position`` is counted under: its store id, or its
        ``file:line``."""
        ids = self.ids
        return ids[position] if position < len(ids) else self.rules[position].source

    def deltas(self) -> list[StoredRuleHits]:
        """The hits drained, each under its key."""
        key = self.key
        return [
            StoredRuleHits(key(d.position), d.hits, d.first, d.last, d.hours)
            for d in self.hits.drain()
        ]


class StatsRecorder(BackgroundLoop):
    """Counts hits and 404s of one worker and adds them to the store at ``url``, from a daemon
    thread started by :meth:`start` (in the worker, after any fork: a thread does not survive
    one) and ended by :meth:`stop`, which writes what is left.

    ``interval``: seconds between writes (at least; see the module docstring); ``retention_days``:
    rows older are purged (None: kept); ``capacity``: the 404 paths tracked between writes;
    ``rules`` and ``rule_ids``: an engine's ``rules`` and their store ids (see :meth:`bind`;
    without them a rule is counted by its ``file:line``); ``top_rules``: see :meth:`top_rules`;
    ``redis`` and ``fold_interval``: write to Redis, folded into the store that often (see
    :mod:`waypost.store.redis_stats`); ``visits``, ``addresses`` and ``geoip``: see
    :meth:`visit`.
    """

    thread_name = "stats"

    def __init__(
        self,
        url: str,
        *,
        interval: float = 5.0,
        retention_days: float | None = 90.0,
        capacity: int = 1000,
        rules: Sequence[Rule] | None = None,
        rule_ids: Sequence[str] = (),
        top_rules: int = 10,
        redis: str | None = None,
        fold_interval: float = 60.0,
        visits: float = 0.0,
        addresses: AddressMode = "anonymized",
        geoip: str | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.interval = interval
        self.retention_days = retention_days
        #: Hits of rules of no bound rule set, by key (a middleware's rules: file:line).
        self.rules = RuleHits()
        self.not_found = NotFoundLog(capacity)
        #: The rule sets bound (see bind()), newest first: the rules, their keys, their hits.
        self._bound: list[_Bound] = []
        #: Bound rule sets replaced since the last flush, to drain at the next.
        self._unbound: list[_Bound] = []
        if rules is not None:
            self.bind(rules, rule_ids)
        #: Batches not yet added (the store was unreachable), oldest first.
        self._held: list[tuple[str, list[Any], int]] = []
        #: Batches given up after ``MAX_HELD`` failed flushes.
        self.dropped = 0
        self.flushed_at: float | None = None
        #: The seconds between flushes in use: ``interval``, or more after a long flush.
        self.effective_interval = interval
        #: CPU seconds the last flush took per row written (see _run()).
        self._row_seconds = ROW_SECONDS
        self._store: Any = None
        self._purged = 0.0
        #: With ``redis``: the flushes go to Redis, and every ``fold_interval`` seconds (and at
        #: stop) what Redis holds is folded into the store (see waypost.store.redis_stats).
        self.redis_url = redis
        self.fold_interval = fold_interval
        self._counters: RedisCounters | None = None
        self._folded = time.monotonic()
        self.folded_at: float | None = None
        #: The share of redirects logged one by one (0: none), how their client address is
        #: kept, and the GeoLite2 file their country comes from (see :meth:`visit`).
        self.visit_rate = visits
        self.addresses: AddressMode = addresses
        self.geoip = geoip
        self._geo: Any = None
        #: Visits not written yet, each with the address its country is looked up by.
        self._visits: list[tuple[Visit, str | None]] = []
        #: Visits not kept: more than MAX_PENDING_VISITS waited for a store that did not answer.
        self.visits_dropped = 0
        self._record = self.rules.record
        #: The engine whose compiled road counts hits for this recorder (see count_from()).
        self._engine: Engine | None = None
        #: How many of the busiest rules top_rules() gives (for per-rule metrics).
        self.top_count = top_rules
        #: Hits since start of the busiest rules: at most 4 x top_count keys (see _add_totals()).
        self._totals: dict[str, int] = {}
        self._top: list[tuple[str, int]] = []

    def __repr__(self) -> str:
        return f"StatsRecorder(interval={self.interval!r})"

    # -- the request path ------------------------------------------------------------------

    def bind(self, rules: Sequence[Rule], rule_ids: Sequence[str] = ()) -> None:
        """Count the hits of ``rules`` (an engine's ``rules``, the tuple the engine serves) by
        position from now on, each named by its store id in ``rule_ids`` (empty: by its
        ``file:line``). The rule set bound before stays bound, for the requests a reload raced;
        the one before that is drained at the next flush."""
        bound = _Bound(rules, tuple(rule_ids), PositionHits(len(rules)))
        kept, dropped = [bound, *self._bound[:1]], self._bound[1:]
        self._bound = kept  # one store: hit() reads the list whole
        self._unbound += dropped

    def hit(self, decision: Decision, when: float) -> None:
        """Count the rule that made ``decision`` (none: nothing to count)."""
        lazy = decision._lazy
        if lazy is not None:
            # A packed rule's position is in the decision: its rule object is not read (with a
            # million rules, reading it is a miss to memory the count does not need).
            rules = lazy[0]
            for bound in self._bound:
                if bound.rules is rules:
                    bound.record(lazy[1], when)
                    return
            self._record(rules[lazy[1]].source, when)
            return
        rule = decision.rule
        if rule is None:
            return
        index = rule.index
        for bound in self._bound:
            positions = bound.rules
            if index < len(positions) and positions[index] is rule:
                bound.record(index, when)
                return
        self._record(rule.source, when)

    def visit(
        self,
        decision: Decision,
        when: float,
        client: str | None,
        referrer: str | None,
        user_agent: str | None,
    ) -> None:
        """Log one redirect (the caller samples: ``visit_rate`` of them); its country is looked
        up when it is written, off the request path."""
        key = self._key_of(decision)
        if key is None:
            return
        if len(self._visits) >= MAX_PENDING_VISITS:
            self.visits_dropped += 1
            return
        kept = anonymize(client, self.addresses)
        visit = Visit(when, key, decision.location, referrer, user_agent, kept)
        self._visits.append((visit, client if self.geoip is not None else None))

    def _key_of(self, decision: Decision) -> str | None:
        """The key ``decision``'s rule is counted under, as :meth:`hit` finds it (None: no
        rule). Off the hot path: the rule object of a packed redirect is read."""
        rule = decision.rule
        if rule is None:
            return None
        index = rule.index
        for bound in self._bound:
            if index < len(bound.rules) and bound.rules[index] is rule:
                return bound.key(index)
        return rule.source

    def missing(
        self,
        target: str,
        referrer: str | None,
        user_agent: str | None,
        when: float,
    ) -> None:
        """Count a request for ``target`` (its path and query, as sent) that ended in 404."""
        path, _, query = target.partition("?")
        self.not_found.record(path, query, referrer, user_agent, when)

    def top_rules(self) -> list[tuple[str, int]]:
        """The busiest rules since this recorder started, as of the last flush: ``(key,
        hits)``, most hits first, at most ``top_count``. A rule that drops out of the kept
        candidates and comes back starts again from the hits of its return (see
        :meth:`_add_totals`): the figures are for a dashboard, the store has the exact ones."""
        return self._top

    def _add_totals(self, hits: Sequence[tuple[str, int]]) -> None:
        if self.top_count <= 0:
            return
        totals = self._totals
        for key, count in hits:
            totals[key] = totals.get(key, 0) + count
        if len(totals) > 4 * self.top_count:
            # Bounded: the candidates beyond twice the top are forgotten (a heap, not a sort:
            # a flush may bring a million keys).
            kept = heapq.nlargest(2 * self.top_count, totals.items(), key=_second)
            self._totals = totals = dict(kept)
        self._top = sorted(totals.items(), key=_second, reverse=True)[: self.top_count]

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(FOLD_EVERY, self.interval)):
            self._fold()
            # What the next flush will cost (one row per rule and per path, at what the last
            # flush cost per row) sets how long since the last it may come: at most BUDGET of
            # the time goes to flushing.
            rows = self.pending()
            self.effective_interval = max(self.interval, rows * self._row_seconds / BUDGET)
            if time.monotonic() - last < self.effective_interval:
                continue
            spent = time.thread_time()
            self.flush()
            spent = time.thread_time() - spent
            if rows:
                self._row_seconds = max(spent / rows, MIN_ROW_SECONDS)
            last = time.monotonic()

    @property
    def held(self) -> int:
        """Batches not written yet (the store or Redis refused them)."""
        return len(self._held)

    def report(self) -> dict[str, object]:
        """For health: when the counts were last written, the interval in use, and the batches
        given up."""
        flushed = self.flushed_at
        return {
            "flushed_at": _stamp(flushed),
            "interval": round(self.effective_interval, 1),
            "held": len(self._held),
            "dropped": self.dropped,
            **({} if self.redis_url is None else {"folded_at": _stamp(self.folded_at)}),
        }

    def stop(self) -> None:
        """Stop the thread and add what is counted (the graceful shutdown's last flush)."""
        super().stop()
        self.flush(final=True)
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._counters is not None:
            self._counters.close()
            self._counters = None

    def pending(self) -> int:
        """The rows the next flush writes for rule hits, and the paths tracked."""
        bound = sum(b.hits.pending() for b in (*self._bound, *self._unbound))
        return self.rules.pending() + bound + len(self.not_found)

    def count_from(self, engine: Engine) -> None:
        """Take the hits of ``engine``'s compiled road from its counters at every fold (see
        ``Engine.count_hits()``), where the request path counts them with no object per hit;
        the server then asks ``engine.resolve_counted(request, record)``."""
        engine.count_hits()
        self._engine = engine

    def _fold(self) -> None:
        self.rules.fold()
        for bound in (*self._bound, *self._unbound):
            bound.hits.fold()
        self._take_counted()

    def _take_counted(self) -> None:
        """Fold in the hits the engine's compiled road counted (see count_from())."""
        engine = self._engine
        if engine is None:
            return
        when = time.time()
        by_id = any(bound.ids for bound in self._bound)
        for rules, counter in engine.hit_counters():
            for bound in (*self._bound, *self._unbound):
                if bound.rules is rules:
                    bound.hits.add_counted(counter, when)
                    break
            else:
                if by_id:
                    # A store's new revision, swapped in and not bound yet (bind() comes right
                    # after): its hits stay counted until then.
                    continue
                # Rules never bound (a file reloaded): each hit under its rule's file:line.
                spare = PositionHits(len(rules))
                spare.add_counted(counter, when)
                for delta in spare.drain():
                    for _ in range(delta.hits):
                        self._record(rules[delta.position].source, when)

    def flush(self, *, final: bool = False) -> None:
        """Drain the counters and add them to the store, or to Redis (kept for the next flush
        on failure); with Redis, fold what it holds into the store when it is time (or
        ``final``, at stop)."""
        self._take_counted()  # first: what it records by file:line is drained just below
        hits = [
            StoredRuleHits(d.key, d.hits, d.first, d.last, dict(d.hours))
            for d in self.rules.drain()
        ]
        unbound, self._unbound = self._unbound, []
        for bound in (*self._bound, *unbound):
            hits += bound.deltas()
        self._add_totals([(delta.rule_key, delta.hits) for delta in hits])
        drained = self.not_found.drain()
        # The hits a path certainly had (Space-Saving's count less its error), and 'other': what
        # is stored adds up to the 404s recorded, exactly.
        paths = [
            StoredNotFound(
                p.path,
                p.guaranteed,
                min(p.bot_hits, p.guaranteed),
                p.first,
                p.last,
                dict(p.referrers),
                dict(p.user_agents),
            )
            for p in drained.paths
            if p.guaranteed > 0
        ]
        # Space-Saving's invariant: other + sum(guaranteed) is every 404 recorded (a tracked
        # path's error is hits of paths evicted before it, which 'other' counts already).
        other = drained.other
        if hits:
            self._held.append(("rules", hits, 0))
        if paths or other:
            self._held.append(("not_found", paths, other))
        while len(self._held) > MAX_HELD:
            self._held.pop(0)
            self.dropped += 1
        try:
            target = self._target()
            while self._held:
                # Each batch is one transaction (one Redis script): taken off once it is in.
                kind, batch, extra = self._held[0]
                if kind == "rules":
                    target.add_rule_hits(batch)
                else:
                    target.add_not_found(batch, other=extra)
                self._held.pop(0)
            self.flushed_at = time.time()
        except StoreError as exc:
            logger.warning("waypost: statistics not written yet (%s); kept for the next try", exc)
            return
        self._write_visits()
        try:
            if self._counters is not None and (
                final or time.monotonic() - self._folded >= self.fold_interval
            ):
                self._folded = time.monotonic()
                self._counters.fold_into(self._open_store())
                self.folded_at = time.time()
            self._purge()
        except StoreError as exc:
            logger.warning("waypost: statistics not folded into the store yet (%s)", exc)

    def _write_visits(self) -> None:
        """Write the visits logged, with their countries; kept for the next try on failure."""
        visits, self._visits = self._visits, []
        if not visits:
            return
        try:
            rows = [(visit, self._country(address)) for visit, address in visits]
            self._open_store().add_visits(rows)
        except StoreError as exc:
            logger.warning("waypost: visits not written yet (%s); kept for the next try", exc)
            kept = visits + self._visits
            self.visits_dropped += max(0, len(kept) - MAX_PENDING_VISITS)
            self._visits = kept[-MAX_PENDING_VISITS:]

    def _country(self, address: str | None) -> str | None:
        """The ISO code of the country of ``address`` in the GeoLite2 file (None: unknown)."""
        if address is None or self.geoip is None:
            return None
        if self._geo is None:
            self._geo = open_geoip(self.geoip)
        try:
            found = self._geo.get(address.strip("[]"))
        except ValueError:
            return None
        country = (found or {}).get("country") or (found or {}).get("registered_country") or {}
        code = country.get("iso_code") if isinstance(country, dict) else None
        return code if isinstance(code, str) else None

    def _open_store(self) -> Any:
        if self._store is None:
            self._store = open_store(self.url)
        return self._store

    def _target(self) -> Any:
        """Where flushes go: Redis with ``redis``, else the store."""
        if self.redis_url is None:
            return self._open_store()
        if self._counters is None:
            self._counters = open_redis_counters(self.redis_url, self.url)
        return self._counters

    def _purge(self) -> None:
        if self.retention_days is None or time.monotonic() - self._purged < _PURGE_EVERY:
            return
        self._purged = time.monotonic()
        older = datetime.now(UTC) - timedelta(days=self.retention_days)
        self._open_store().purge_stats(older)
