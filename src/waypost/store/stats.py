"""The values of the store's analytics: what a flush of the in-memory counters adds, and what the
queries of the admin API and the command line read back. Frozen, slotted, free of I/O.

In (one flush of one instance; times are Unix seconds, as the counters keep them):

- :class:`RuleHitsDelta`: hits of one rule since the last flush, with their hours;
- :class:`NotFoundDelta`: 404s of one path since the last flush, with referrers and user agents.

Out (times are aware datetimes in UTC):

- :class:`RuleStats` / :class:`RuleStatsPage`, :class:`RuleHour`: per rule, and its hourly series;
- :class:`NotFoundStats` / :class:`NotFoundPage`, :class:`NotFoundSource`: per path answered 404;
- :class:`UnusedRule` / :class:`UnusedRulePage`: store rules with no hits since a moment;
- :class:`StatsPurge`: what retention deleted.

A path's row id is :func:`not_found_id`, derived from the path alone, so that every instance
names a path's row alike without asking the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from waypost.store.keys import parse_duration
from waypost.store.model import _Shown

__all__ = [
    "MAX_NOT_FOUND_PATHS",
    "MAX_SOURCES",
    "NOT_FOUND_STATUSES",
    "SOURCE_VALUE_MAX",
    "NotFoundDelta",
    "NotFoundPage",
    "NotFoundSort",
    "NotFoundSource",
    "NotFoundStats",
    "NotFoundStatus",
    "RuleHitsDelta",
    "RuleHour",
    "RuleStats",
    "RuleStatsPage",
    "RuleStatsSort",
    "StatsPurge",
    "UnusedRule",
    "UnusedRulePage",
    "VisitPage",
    "VisitRow",
    "hour_start",
    "not_found_id",
    "parse_since",
]

NotFoundStatus = Literal["open", "dismissed", "resolved"]
#: A path's row is ``open`` until someone dismisses it or resolves it with a rule.
NOT_FOUND_STATUSES: tuple[NotFoundStatus, ...] = ("open", "dismissed", "resolved")
RuleStatsSort = Literal["hits", "last_at"]
NotFoundSort = Literal["hits", "last_at"]
#: Referrers (and, apart, user agents) kept per path: the heaviest, after every flush.
MAX_SOURCES = 10
#: Open not-found paths the store keeps: past this many (and a tenth more), the lightest are cut
#: and their hits counted in ``other``, so a scanner cannot grow the table without end.
MAX_NOT_FOUND_PATHS = 10_000
#: A referrer or user agent longer than this is cut (a row stays small whatever a client sends).
SOURCE_VALUE_MAX = 512


def not_found_id(path: str) -> str:
    """The id of ``path``'s not-found row: the first 16 hex digits of its SHA-256 (64 bits: a
    collision among even a million paths has odds of about 1 in 36 million)."""
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def parse_since(text: str, *, now: datetime | None = None, allow_future: bool = False) -> datetime:
    """The moment ``text`` names, for "no hits since": a duration back from ``now`` (``90d``,
    ``12h``, ``2w``, written as for a key's expiry) or an ISO 8601 date or time (UTC unless it
    names a zone), from 1970 on and, unless ``allow_future`` (an ``until``), not in the future;
    :class:`ValueError` with a message for people otherwise."""
    now = now or datetime.now(UTC)
    moment: datetime | None
    try:
        duration = parse_duration(text)
        if duration is not None:
            moment = now - duration
        else:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not a date; a duration past what a date can hold
        moment = None
    if moment is None or moment < _EARLIEST:
        raise ValueError(
            f"{text!r} is not a duration or a date: write how long ago, like '90d', '12h' or "
            "'2w', or a date like '2026-01-31' (or '2026-01-31T18:00:00+02:00'), from 1970 on"
        )
    if moment > now and not allow_future:
        raise ValueError(f"{text!r} is in the future; give a moment in the past, or a duration")
    return moment.astimezone(UTC)


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def hour_start(moment: float) -> datetime:
    """The start of the hour (UTC) that the Unix time ``moment`` falls in."""
    whole = int(moment // 3600) * 3600
    return datetime.fromtimestamp(whole, UTC)


@dataclass(frozen=True, slots=True)
class RuleHitsDelta:
    """Hits of one rule counted by one instance since its last flush.

    ``rule_key`` is the rule's id in the store or its ``file:line`` in a rules file; ``first``
    and ``last`` are the first and last hit (Unix times); ``hours`` maps the start of each hour
    (a Unix time; one inside the hour is taken as its hour) to the hits in it.
    """

    rule_key: str
    hits: int
    first: float
    last: float
    hours: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotFoundDelta:
    """404s of one path counted by one instance since its last flush: all of them (``hits``,
    bots included) and those from bots (``bot_hits``), the first and last (Unix times), and the
    hits per referrer and per user agent (the counters' heaviest; the store keeps the
    :data:`MAX_SOURCES` heaviest of all flushes)."""

    path: str
    hits: int
    bot_hits: int
    first: float
    last: float
    referrers: Mapping[str, int] = field(default_factory=dict)
    user_agents: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuleStats(_Shown):
    """One rule's hits over every instance: how many, the first and the last; for a rule in
    the store, its ``name`` and ``from_path`` (None for a rules file's ``file:line``, or a rule
    deleted since)."""

    rule_key: str
    hits: int
    first_at: datetime
    last_at: datetime
    name: str | None = None
    from_path: str | None = None

    _shown = ("rule_key", "hits", "first_at", "last_at", "name", "from_path")


@dataclass(frozen=True, slots=True)
class RuleStatsPage:
    """One page of :class:`RuleStats`; ``next_cursor`` fetches the next (None on the last)."""

    rows: tuple[RuleStats, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class RuleHour(_Shown):
    """The hits of a rule in the hour starting at ``hour`` (UTC)."""

    hour: datetime
    hits: int

    _shown = ("hour", "hits")


@dataclass(frozen=True, slots=True)
class NotFoundSource(_Shown):
    """A referrer or user agent of a path's 404s, and how many of them it sent."""

    value: str
    hits: int

    _shown = ("value", "hits")


@dataclass(frozen=True, slots=True)
class NotFoundStats(_Shown):
    """One path answered 404, over every instance.

    ``hits`` counts every request, bots included; ``bot_hits`` those from bots. ``status`` is
    ``open``, ``dismissed`` (someone decided it does not matter) or ``resolved`` (a rule now
    answers it: ``resolved_rule_id``), set at ``status_at``. Hits keep adding up whatever the
    status, so a resolved path whose ``last_at`` is well after ``status_at`` still answers 404
    somewhere. ``referrers`` and ``user_agents`` are the heaviest, heaviest first.
    """

    id: str
    path: str
    hits: int
    bot_hits: int
    first_at: datetime
    last_at: datetime
    status: NotFoundStatus
    resolved_rule_id: str | None = None
    status_at: datetime | None = None
    referrers: tuple[NotFoundSource, ...] = ()
    user_agents: tuple[NotFoundSource, ...] = ()

    _shown = (
        "id",
        "path",
        "hits",
        "bot_hits",
        "first_at",
        "last_at",
        "status",
        "resolved_rule_id",
        "status_at",
        "referrers",
        "user_agents",
    )

    @property
    def people_hits(self) -> int:
        """The hits that did not come from bots."""
        return self.hits - self.bot_hits


@dataclass(frozen=True, slots=True)
class NotFoundPage:
    """One page of :class:`NotFoundStats`; ``next_cursor`` fetches the next (None on the last)."""

    rows: tuple[NotFoundStats, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class VisitRow(_Shown):
    """One logged redirect (see :mod:`waypost.stats.visits`): its id, when (UTC), the rule's
    key, where the visitor was sent, the referrer, the user agent, the country (an ISO code,
    with a GeoLite2 file) and the client address as kept (anonymized by default)."""

    id: str
    at: datetime
    rule_key: str
    location: str | None
    referrer: str | None
    user_agent: str | None
    country: str | None
    client: str | None

    _shown = (
        "id",
        "at",
        "rule_key",
        "location",
        "referrer",
        "user_agent",
        "country",
        "client",
    )


@dataclass(frozen=True, slots=True)
class VisitPage:
    """One page of :class:`VisitRow`, newest first; ``next_cursor`` fetches the next."""

    rows: tuple[VisitRow, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class UnusedRule(_Shown):
    """A rule in the store with no hits since the moment asked about: its id, name and
    ``from``, when it was created (its first revision) and its last hit (None: never hit, or its
    counts were purged)."""

    rule_id: str
    name: str | None
    from_path: str
    created_at: datetime | None
    last_hit_at: datetime | None

    _shown = ("rule_id", "name", "from_path", "created_at", "last_hit_at")


@dataclass(frozen=True, slots=True)
class UnusedRulePage:
    """One page of :class:`UnusedRule` in priority order; ``next_cursor`` as for rules."""

    rules: tuple[UnusedRule, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class StatsPurge(_Shown):
    """The rows one purge deleted, per table."""

    rule_hits: int = 0
    rule_hours: int = 0
    not_found: int = 0
    other_hours: int = 0
    visits: int = 0

    _shown = ("rule_hits", "rule_hours", "not_found", "other_hours", "visits")
