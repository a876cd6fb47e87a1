"""The not-found log: which paths answer 404, how often, from where, to whom; in bounded memory.

:class:`NotFoundLog` aggregates 404s by path (the query dropped unless ``keep_query``). A scanner
sending a million random paths must not grow it, so it keeps the heaviest paths with the
Space-Saving algorithm (:mod:`waypost.stats._spacesaving`): ``capacity`` tracked paths; a new path
when all are taken replaces a least-counted one and inherits its count as ``error``, so for every
tracked path ``count - error <= true count <= count`` and a path hit more often than one time in
``capacity`` is always tracked. 404s of paths no longer tracked are counted in ``other``: at every
drain, ``other + sum(count - error)`` is exactly the number of 404s recorded (noise aside).

Per tracked path: count and error, first and last hit (since the path was last taken into the
table), the top referrers and user agents (a Space-Saving of ``top_values`` counters each, values
cut to ``max_value_length`` characters), and how many of its hits came from bots and from browsers.

The bot verdict is crawlerdetect's (:class:`~waypost.stats.bots.BotDetector`), and it is made at
drain time, on each path's top user agents, never on the request path: crawlerdetect's patterns
cost about 25 microseconds per character of an unknown user agent (7 ms for 256 random letters),
so a scanner sending a fresh user agent with every request would otherwise buy 7 ms of a worker's
time per request. Known user agents are answered from a cache; a drain judges at most
``bot_checks_per_drain`` new ones (heaviest paths first), the others staying unknown until a later
drain. A path's ``bot_hits`` and ``human_hits`` are the counts of its top user agents judged each
way: both are kept rather than one flag so that deltas add up across drains and instances, and
:attr:`NotFoundDelta.is_bot` says "most of the hits with a verdict came from bots".

Memory is bounded whatever the traffic: :attr:`NotFoundLog.memory_bound` is the worst case in bytes
(every path, referrer and user agent at its full length in four-byte characters), about 18 MB with
the defaults; ASCII traffic at full lengths takes about 6 MB. ``drain()`` hands the table over and
starts a fresh one.

Paths that are never interesting (:mod:`waypost.stats.noise`) are counted in ``ignored`` and nothing
else. Recording takes a lock: a 404 does a dozen dictionary steps that must not interleave, and an
uncontended lock costs a few per cent of that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from waypost.exceptions import SettingsError
from waypost.stats._spacesaving import SmallTop, SpaceSaving
from waypost.stats.bots import BotDetector
from waypost.stats.noise import DEFAULT_NOISE, NoiseFilter

__all__ = ["NotFoundDelta", "NotFoundDrain", "NotFoundLog", "merge_not_found"]

# Bytes, for the memory bound: a str of n characters takes at most 80 + 4n (CPython's compact
# UCS-4 form); what a tracked path costs besides its strings (its entry, the three tables' slots,
# its bucket, two value tables and their dicts, the floats and ints) is under _ENTRY, measured at
# about 800 (tests/stats/test_notfound.py proves the bound); a cached verdict's slot under _SLOT.
_STR = 80
_ENTRY = 2048
_SLOT = 200


def _str_bound(length: int) -> int:
    return _STR + 4 * length


Values = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class NotFoundDelta:
    """One path's 404s since the last drain: an increment to add to what is stored.

    ``path`` is the path (with ``?query`` when the log keeps queries); ``count`` the Space-Saving
    count, an upper bound of the true number, and ``count - error`` a lower bound; ``first`` and
    ``last`` the first and last hit (Unix times) since the path was last taken into the table;
    ``referrers`` and ``user_agents`` the most frequent values, ``(value, count)`` largest first,
    counts being upper bounds; ``bot_hits`` and ``human_hits`` the counts of those user agents
    crawlerdetect judged a bot and a browser (the rest: no user agent, a user agent not judged yet,
    or no crawlerdetect).
    """

    path: str
    count: int
    error: int
    first: float
    last: float
    referrers: Values = ()
    user_agents: Values = ()
    bot_hits: int = 0
    human_hits: int = 0

    @property
    def guaranteed(self) -> int:
        """The hits this path certainly had: ``count - error``."""
        return self.count - self.error

    @property
    def is_bot(self) -> bool | None:
        """True when most hits with a verdict came from bots, None when none had a verdict."""
        judged = self.bot_hits + self.human_hits
        return None if not judged else self.bot_hits * 2 > judged

    def merge(self, other: NotFoundDelta, top_values: int = 5) -> NotFoundDelta:
        """This delta and ``other`` (the same path) as one: counts, errors and values add up, and
        the ``top_values`` largest referrers and user agents stay."""
        if other.path != self.path:
            raise ValueError(f"cannot merge the 404s of {self.path!r} with those of {other.path!r}")
        return NotFoundDelta(
            self.path,
            self.count + other.count,
            self.error + other.error,
            min(self.first, other.first),
            max(self.last, other.last),
            _merge_values(self.referrers, other.referrers, top_values),
            _merge_values(self.user_agents, other.user_agents, top_values),
            self.bot_hits + other.bot_hits,
            self.human_hits + other.human_hits,
        )


def _merge_values(ours: Values, theirs: Values, top_values: int) -> Values:
    # Two top-k summaries merge into one of the same size: counts add, the k largest stay
    # (Agarwal et al., "Mergeable summaries", 2012). Counts stay upper bounds.
    counts = dict(ours)
    for value, hits in theirs:
        counts[value] = counts.get(value, 0) + hits
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return tuple(ranked[:top_values])


@dataclass(frozen=True, slots=True)
class NotFoundDrain:
    """What :meth:`NotFoundLog.drain` hands over: the tracked paths, heaviest first; ``other``,
    the 404s of paths not tracked any more; ``ignored``, the 404s of noise paths."""

    paths: tuple[NotFoundDelta, ...] = ()
    other: int = 0
    ignored: int = 0

    @property
    def recorded(self) -> int:
        """The 404s recorded, noise aside: exactly ``other`` plus the guaranteed hits."""
        return self.other + sum(delta.guaranteed for delta in self.paths)


def merge_not_found(*drains: NotFoundDrain, top_values: int = 5) -> NotFoundDrain:
    """Several drains (of one log, or of many workers and instances) as one: per path the deltas
    merged (keeping ``top_values`` referrers and user agents), heaviest first; ``other`` and
    ``ignored`` added. Bounding the number of paths is the store's business."""
    merged: dict[str, NotFoundDelta] = {}
    for drain in drains:
        for delta in drain.paths:
            known = merged.get(delta.path)
            merged[delta.path] = delta if known is None else known.merge(delta, top_values)
    return NotFoundDrain(
        tuple(sorted(merged.values(), key=lambda delta: -delta.count)),
        sum(drain.other for drain in drains),
        sum(drain.ignored for drain in drains),
    )


class _Entry:
    """A tracked path's details besides its count."""

    __slots__ = ("agents", "first", "key", "last", "referrers")

    def __init__(self, key: str, when: float) -> None:
        self.key = key
        self.first = when
        self.last = when
        # Made on the first value: under a scanner most paths are evicted before they have one.
        self.referrers: SmallTop | None = None
        self.agents: SmallTop | None = None


class NotFoundLog:
    """A bounded, thread-safe aggregate of 404s; see the module docstring.

    ``capacity`` paths are tracked; ``keep_query`` keeps the query in the key; ``noise`` lists the
    globs of paths to ignore (:data:`~waypost.stats.noise.DEFAULT_NOISE`); ``top_values`` referrers
    and user agents are kept per path; paths are cut to ``max_path_length`` characters, referrers
    and user agents to ``max_value_length`` (bot verdicts are on the cut user agent: the crawler's
    name comes early in every real one); ``bot_cache_size`` verdicts are cached, and a drain makes
    at most ``bot_checks_per_drain`` new ones.
    """

    __slots__ = (
        "_bots",
        "_entries",
        "_ignored",
        "_lock",
        "_noise",
        "_table",
        "bot_cache_size",
        "bot_checks_per_drain",
        "capacity",
        "keep_query",
        "max_path_length",
        "max_value_length",
        "top_values",
    )

    def __init__(
        self,
        capacity: int = 1000,
        *,
        keep_query: bool = False,
        noise: Iterable[str] = DEFAULT_NOISE,
        top_values: int = 5,
        max_path_length: int = 512,
        max_value_length: int = 256,
        bot_cache_size: int = 1024,
        bot_checks_per_drain: int = 50,
    ) -> None:
        for name, value in [
            ("capacity", capacity),
            ("top_values", top_values),
            ("max_path_length", max_path_length),
            ("max_value_length", max_value_length),
        ]:
            if value < 1:
                raise SettingsError(f"the not-found log's {name} must be at least 1, not {value!r}")
        for name, value in [
            ("bot_cache_size", bot_cache_size),
            ("bot_checks_per_drain", bot_checks_per_drain),
        ]:
            if value < 0:
                raise SettingsError(f"the not-found log's {name} cannot be negative, not {value!r}")
        self.capacity = capacity
        self.keep_query = keep_query
        self.top_values = top_values
        self.max_path_length = max_path_length
        self.max_value_length = max_value_length
        self.bot_cache_size = bot_cache_size
        self.bot_checks_per_drain = bot_checks_per_drain
        self._noise = NoiseFilter(noise)
        self._bots = BotDetector(bot_cache_size)
        self._lock = threading.Lock()
        self._table = SpaceSaving(capacity)
        self._entries: dict[str, _Entry] = {}
        self._ignored = 0

    def __len__(self) -> int:
        """The paths tracked since the last drain (at most ``capacity``)."""
        return len(self._table)

    def __repr__(self) -> str:
        return (
            f"NotFoundLog({self.capacity!r}, keep_query={self.keep_query!r}, "
            f"noise={list(self._noise.globs)!r}, top_values={self.top_values!r}, "
            f"max_path_length={self.max_path_length!r}, "
            f"max_value_length={self.max_value_length!r}, "
            f"bot_cache_size={self.bot_cache_size!r}, "
            f"bot_checks_per_drain={self.bot_checks_per_drain!r})"
        )

    @property
    def memory_bound(self) -> int:
        """The most memory the log can hold, in bytes, whatever is recorded: the tracked paths with
        every string at full length in four-byte characters, and the cached bot verdicts (ours and
        crawlerdetect's own cache of the same strings)."""
        value = _str_bound(self.max_value_length)
        per_path = _ENTRY + _str_bound(self.max_path_length) + 2 * self.top_values * value
        cached = self.bot_cache_size + self._bots.library_cache_size
        return self.capacity * per_path + cached * (value + _SLOT)

    @property
    def bots_known(self) -> bool:
        """Whether bot verdicts are known (crawlerdetect is installed)."""
        return self._bots.available

    def record(
        self,
        path: str,
        query: str,
        referrer: str | None,
        user_agent: str | None,
        when: float,
    ) -> None:
        """Count one 404 of ``path`` (``query`` without its ``?``) at Unix time ``when``."""
        if path in self._noise:
            with self._lock:
                self._ignored += 1
            return
        key = f"{path}?{query}" if query and self.keep_query else path
        if len(key) > self.max_path_length:
            key = key[: self.max_path_length]
        cut = self.max_value_length
        if user_agent is not None and len(user_agent) > cut:
            user_agent = user_agent[:cut]
        if referrer is not None and len(referrer) > cut:
            referrer = referrer[:cut]
        with self._lock:
            entries = self._entries
            entry = entries.get(key)
            if entry is None:
                evicted = self._table.add(key)
                if evicted is not None:
                    del entries[evicted]
                entry = entries[key] = _Entry(key, when)
            else:
                # The entry's own key: `key` is an equal copy when it was cut, and the table
                # would keep it besides the first (a second string of up to max_path_length).
                self._table.add(entry.key)
                if when > entry.last:
                    entry.last = when
                elif when < entry.first:
                    entry.first = when
            if referrer:
                if entry.referrers is None:
                    entry.referrers = SmallTop()
                entry.referrers.add(referrer, self.top_values)
            if user_agent:
                if entry.agents is None:
                    entry.agents = SmallTop()
                entry.agents.add(user_agent, self.top_values)

    def drain(self) -> NotFoundDrain:
        """The 404s recorded since the last drain; the log starts again from an empty table."""
        with self._lock:
            table, entries, ignored = self._table, self._entries, self._ignored
            self._table = SpaceSaving(self.capacity)
            self._entries = {}
            self._ignored = 0
        paths = []
        budget = self.bot_checks_per_drain
        bots = self._bots
        for key, hits, error in table.items():
            entry = entries[key]
            agents = () if entry.agents is None else entry.agents.top()
            judged = [0, 0]  # bot hits, human hits
            for agent, seen in agents:
                verdict = bots.cached(agent)
                if verdict is None and budget > 0 and bots.available:
                    budget -= 1
                    verdict = bots.is_bot(agent)
                if verdict is not None:
                    judged[not verdict] += seen
            paths.append(
                NotFoundDelta(
                    key,
                    hits,
                    error,
                    entry.first,
                    entry.last,
                    () if entry.referrers is None else entry.referrers.top(),
                    agents,
                    *judged,
                )
            )
        return NotFoundDrain(tuple(paths), table.unattributed, ignored)
