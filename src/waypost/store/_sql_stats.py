"""The analytics half of :class:`~waypost.store._sql.SqlStore`: flushes of the servers' in-memory
counters add to the tables of migration 6, and the admin API and command line read them back.

Every flush is one transaction of upserts that add (``INSERT ... ON CONFLICT DO UPDATE SET hits =
hits + excluded.hits``, first and last by least and greatest), never read-modify-write, so N
instances flushing into one database see exactly the sum. Rows are written in key order, and on
PostgreSQL every analytics write first takes one transaction-scoped advisory lock: the
source-pruning deletes and retention touch rows in an order of the database's choosing, and
flushes taking turns (each a few milliseconds, every few seconds) cost less than deadlocks that
lose a flush. SQLite's ``BEGIN IMMEDIATE`` already makes writers take turns.

Pages are keyset pages, as for rules: the cursor holds the sort value and key of the last row.
Counts move while someone pages, so a row whose count changed in between may show twice or not
at all; for the lists these are, that is fine.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, get_args

from waypost.exceptions import NotFoundError, ValidationError
from waypost.stats.visits import Visit
from waypost.store._sql_base import MAX_PAGE, Conn, SqlMixin
from waypost.store._sql_rules import _after, _cursor
from waypost.store.migrations import Dialect
from waypost.store.stats import (
    MAX_NOT_FOUND_PATHS,
    MAX_SOURCES,
    NOT_FOUND_STATUSES,
    SOURCE_VALUE_MAX,
    NotFoundDelta,
    NotFoundPage,
    NotFoundSort,
    NotFoundSource,
    NotFoundStats,
    NotFoundStatus,
    RuleHitsDelta,
    RuleHour,
    RuleStats,
    RuleStatsPage,
    RuleStatsSort,
    StatsPurge,
    UnusedRule,
    UnusedRulePage,
    VisitPage,
    VisitRow,
    hour_start,
    not_found_id,
)

__all__ = ["StatsMethods"]

_RULE_COLUMNS = "rule_key, hits, first_at, last_at"
_NOT_FOUND_COLUMNS = (
    "id, path, hits, bot_hits, first_at, last_at, status, resolved_rule_id, status_at"
)
# Ids per IN list: well under SQLite's and PostgreSQL's limits on parameters.
_CHUNK = 500


_VISIT_COLUMNS = "id, at, rule_key, location, referrer, user_agent, country, client"


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:SOURCE_VALUE_MAX]


def _page_cursor(kind: str, value: object, key: str) -> str:
    text = json.dumps([kind, value, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _page_after(kind: str, cursor: str) -> tuple[Any, str]:
    """The sort value and key a cursor of ``kind`` holds; ValidationError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_for, value, key = json.loads(text)
        if made_for != kind or not isinstance(key, str):
            raise ValueError(text)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            [
                (
                    "cursor",
                    f"{cursor!r} is not a cursor from a previous page of this list and sort; "
                    "start without one",
                )
            ]
        ) from None
    return value, key


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError([("limit", f"must be 1 to {MAX_PAGE}, got {limit}")])


def _choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValidationError(
            [(name, f"{value!r} is not one of {', '.join(repr(a) for a in allowed)}")]
        )


class StatsMethods(SqlMixin):
    """Rule hits, hourly series, not-found paths and their retention (mixed into SqlStore)."""

    dialect: ClassVar[Dialect]

    # -- helpers -------------------------------------------------------------------------------

    def _stats_lock(self, conn: Conn) -> None:
        """Make analytics writers take turns (PostgreSQL; SQLite writers already do)."""
        if self.dialect == "postgres":
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('waypost-stats:' || current_schema()))"
            )

    @property
    def _least(self) -> str:
        return "min" if self.dialect == "sqlite" else "LEAST"

    @property
    def _greatest(self) -> str:
        return "max" if self.dialect == "sqlite" else "GREATEST"

    def _unix(self, moment: float) -> object:
        """The parameter for the Unix time ``moment``, to the second (first and last hits are
        kept to the second). One flush holds a few seconds' worth, so each second is
        converted once: a flush of a million rules made two million conversions otherwise."""
        second = int(moment // 1)
        stamps = self._stamps
        stamp = stamps.get(second)
        if stamp is None:
            if len(stamps) >= 4096:
                stamps.clear()
            stamp = stamps[second] = self._time_param(datetime.fromtimestamp(second, UTC))
        return stamp

    def _after(
        self, kind: str, cursor: str, column: str, key: str, descending: bool, moment: bool
    ) -> tuple[str, list[object]]:
        """The condition (and its parameters) for the rows after ``cursor`` of a list of
        ``kind`` sorted by ``column`` (a time when ``moment``), ties broken by ``key``."""
        value, last = _page_after(kind, cursor)
        if moment:
            value = self._time_param(datetime.fromisoformat(str(value)))
        beyond = "<" if descending else ">"
        return f"({column} {beyond} ? OR ({column} = ? AND {key} > ?))", [value, value, last]

    def _stat_at(self, value: object) -> datetime:
        moment = self._time_value(value)
        assert moment is not None  # the columns read through here are NOT NULL
        return moment

    # -- flushing ------------------------------------------------------------------------------

    def add_rule_hits(self, deltas: Sequence[RuleHitsDelta]) -> None:
        """Add one flush of rule hits, in one transaction: each rule's hits add to what every
        instance flushed before, its first hit is the earliest and its last the latest, and its
        hours add likewise. Deltas of one rule key within a flush add up too."""
        totals: dict[str, list[Any]] = {}
        hours: dict[tuple[str, int], int] = {}
        for delta in deltas:
            seen = totals.get(delta.rule_key)
            if seen is None:
                totals[delta.rule_key] = [delta.hits, delta.first, delta.last]
            else:
                seen[0] += delta.hits
                seen[1] = min(seen[1], delta.first)
                seen[2] = max(seen[2], delta.last)
            for hour, hits in delta.hours.items():
                slot = (delta.rule_key, int(hour // 3600) * 3600)
                hours[slot] = hours.get(slot, 0) + hits
        if not totals:
            return
        rule_rows = [
            (key, hits, self._unix(first), self._unix(last))
            for key, (hits, first, last) in sorted(totals.items())
        ]
        hour_rows = [
            (key, self._unix(hour), hits) for (key, hour), hits in sorted(hours.items()) if hits
        ]
        with self._transaction(write=True) as conn:
            self._stats_lock(conn)
            conn.executemany(
                f"INSERT INTO waypost_rule_hits ({_RULE_COLUMNS}) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (rule_key) DO UPDATE SET "
                "hits = waypost_rule_hits.hits + excluded.hits, "
                f"first_at = {self._least}(waypost_rule_hits.first_at, excluded.first_at), "
                f"last_at = {self._greatest}(waypost_rule_hits.last_at, excluded.last_at)",
                rule_rows,
            )
            if hour_rows:
                conn.executemany(
                    "INSERT INTO waypost_rule_hours (rule_key, hour, hits) VALUES (?, ?, ?) "
                    "ON CONFLICT (rule_key, hour) DO UPDATE SET "
                    "hits = waypost_rule_hours.hits + excluded.hits",
                    hour_rows,
                )

    def add_not_found(
        self,
        deltas: Sequence[NotFoundDelta],
        other: int = 0,
        when: float | None = None,
    ) -> None:
        """Add one flush of 404s, in one transaction: per path, hits and bot hits add, first and
        last seen widen, and referrers and user agents add, after which only the
        :data:`~waypost.store.stats.MAX_SOURCES` heaviest of each are kept (the rest of the
        paths flushed are pruned; other paths are not touched). Past
        :data:`~waypost.store.stats.MAX_NOT_FOUND_PATHS` open paths (and a tenth), the lightest
        are cut and their hits added to ``other``. ``other`` (the 404s of paths too
        light for the counters' bounded log) adds to the hour of ``when`` (a Unix time; None:
        now).

        A path keeps its status: one dismissed or resolved stays so while its counts add up
        (its ``last_at`` after ``status_at`` shows it is still asked for). Sources longer than
        :data:`~waypost.store.stats.SOURCE_VALUE_MAX` are cut; a source that misses the cut
        loses its count, so the kept ones are the heaviest of each flush's survivors, an
        approximation that favours sources present from the start."""
        paths: dict[str, list[Any]] = {}
        sources: dict[tuple[str, str, str], int] = {}
        for delta in deltas:
            row_id = not_found_id(delta.path)
            seen = paths.get(row_id)
            if seen is None:
                paths[row_id] = [delta.path, delta.hits, delta.bot_hits, delta.first, delta.last]
            else:
                seen[1] += delta.hits
                seen[2] += delta.bot_hits
                seen[3] = min(seen[3], delta.first)
                seen[4] = max(seen[4], delta.last)
            for kind, counts in (("referrer", delta.referrers), ("user_agent", delta.user_agents)):
                for value, hits in counts.items():
                    slot = (row_id, kind, value[:SOURCE_VALUE_MAX])
                    sources[slot] = sources.get(slot, 0) + hits
        if not paths and not other:
            return
        path_rows = [
            (row_id, path, hits, bot_hits, self._unix(first), self._unix(last))
            for row_id, (path, hits, bot_hits, first, last) in sorted(paths.items())
        ]
        source_rows = [(*slot, hits) for slot, hits in sorted(sources.items()) if hits]
        touched = sorted({row_id for row_id, _, _ in sources})
        with self._transaction(write=True) as conn:
            self._stats_lock(conn)
            if path_rows:
                conn.executemany(
                    "INSERT INTO waypost_not_found "
                    "(id, path, hits, bot_hits, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET "
                    "hits = waypost_not_found.hits + excluded.hits, "
                    "bot_hits = waypost_not_found.bot_hits + excluded.bot_hits, "
                    f"first_at = {self._least}(waypost_not_found.first_at, excluded.first_at), "
                    f"last_at = {self._greatest}(waypost_not_found.last_at, excluded.last_at)",
                    path_rows,
                )
            if source_rows:
                conn.executemany(
                    "INSERT INTO waypost_not_found_sources (not_found_id, kind, value, hits) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (not_found_id, kind, value) DO UPDATE SET "
                    "hits = waypost_not_found_sources.hits + excluded.hits",
                    source_rows,
                )
                self._prune_sources(conn, touched)
            # Bounded under a scanner: past MAX_NOT_FOUND_PATHS open rows (and a tenth more, so
            # that the cut is rare), the lightest go and their hits count as 'other'.
            other += self._prune_paths(conn)
            if other:
                hour = hour_start(time.time() if when is None else when)
                conn.execute(
                    "INSERT INTO waypost_stats_other (hour, hits) VALUES (?, ?) "
                    "ON CONFLICT (hour) DO UPDATE SET "
                    "hits = waypost_stats_other.hits + excluded.hits",
                    (self._time_param(hour), other),
                )

    @staticmethod
    def _prune_paths(conn: Conn) -> int:
        """Cut the open rows down to :data:`~waypost.store.stats.MAX_NOT_FOUND_PATHS`, the
        lightest (then the oldest) first, when they are more than a tenth over; their hits."""
        count = conn.execute("SELECT count(*) FROM waypost_not_found WHERE status = 'open'")
        excess = int(count[0][0]) - MAX_NOT_FOUND_PATHS
        if excess <= MAX_NOT_FOUND_PATHS // 10:
            return 0
        lightest = conn.execute(
            "SELECT id, hits FROM waypost_not_found WHERE status = 'open' "
            "ORDER BY hits, last_at, id LIMIT ?",
            (excess,),
        )
        ids = [(row_id,) for row_id, _ in lightest]
        # The sources first: ON DELETE CASCADE needs SQLite's foreign keys on.
        conn.executemany("DELETE FROM waypost_not_found_sources WHERE not_found_id = ?", ids)
        conn.executemany("DELETE FROM waypost_not_found WHERE id = ?", ids)
        return sum(int(hits) for _, hits in lightest)

    @staticmethod
    def _prune_sources(conn: Conn, touched: Sequence[str]) -> None:
        """Keep the :data:`MAX_SOURCES` heaviest referrers and user agents of the paths
        ``touched`` (only those can have grown past the cap): find the few over it with one
        grouped read per chunk of ids, then cut each of those."""
        over: list[tuple[str, str]] = []
        for start in range(0, len(touched), _CHUNK):
            chunk = touched[start : start + _CHUNK]
            over += conn.execute(
                "SELECT not_found_id, kind FROM waypost_not_found_sources "
                f"WHERE not_found_id IN ({', '.join('?' * len(chunk))}) "
                "GROUP BY not_found_id, kind HAVING count(*) > ?",
                (*chunk, MAX_SOURCES),
            )
        if over:
            conn.executemany(
                "DELETE FROM waypost_not_found_sources "
                "WHERE not_found_id = ? AND kind = ? AND value NOT IN ("
                "SELECT value FROM waypost_not_found_sources "
                "WHERE not_found_id = ? AND kind = ? ORDER BY hits DESC, value LIMIT ?)",
                [(row_id, kind, row_id, kind, MAX_SOURCES) for row_id, kind in sorted(over)],
            )

    # -- rules ---------------------------------------------------------------------------------

    def rule_stats(
        self,
        *,
        sort: RuleStatsSort = "hits",
        descending: bool = True,
        unused_since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RuleStatsPage:
        """Rules with hits, sorted by ``sort`` (``hits`` or ``last_at``; ties by key), most
        first unless ``descending`` is False; with ``unused_since``, only those whose last hit
        is before it (rules never hit have no row here: see :meth:`unused_rules`). At most
        ``limit`` (1 to 1000) a page; pass ``next_cursor`` as ``cursor`` for the next one."""
        _choice("sort", sort, get_args(RuleStatsSort))
        _check_limit(limit)
        where: list[str] = []
        params: list[object] = []
        if unused_since is not None:
            where.append("last_at < ?")
            params.append(self._time_param(unused_since))
        kind = f"rules:{sort}:{'desc' if descending else 'asc'}"
        if cursor:
            after, values = self._after(
                kind, cursor, sort, "rule_key", descending, sort == "last_at"
            )
            where.append(after)
            params += values
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._read(
            f"SELECT {_RULE_COLUMNS} FROM waypost_rule_hits {clause}"
            f"ORDER BY {sort} {'DESC' if descending else 'ASC'}, rule_key LIMIT ?",
            (*params, limit + 1),
        )
        stats = self._named(rows[:limit])
        if len(rows) <= limit:
            return RuleStatsPage(stats)
        last = stats[-1]
        value = last.hits if sort == "hits" else last.last_at.isoformat()
        return RuleStatsPage(stats, _page_cursor(kind, value, last.rule_key))

    def get_rule_stats(self, rule_key: str) -> RuleStats:
        """The hits of ``rule_key``; NotFoundError when it has none recorded."""
        rows = self._read(
            f"SELECT {_RULE_COLUMNS} FROM waypost_rule_hits WHERE rule_key = ?", (rule_key,)
        )
        if not rows:
            raise NotFoundError(f"rule {rule_key!r} has no hits recorded")
        return self._named(rows)[0]

    def rule_stats_of(self, rule_keys: Sequence[str]) -> dict[str, RuleStats]:
        """The hits of each of ``rule_keys`` that has some recorded, by key (one read per 500
        keys: for the rules a page lists)."""
        rows: list[tuple[Any, ...]] = []
        keys = list(dict.fromkeys(rule_keys))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows += self._read(
                f"SELECT {_RULE_COLUMNS} FROM waypost_rule_hits "
                f"WHERE rule_key IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        return {stats.rule_key: stats for stats in self._named(rows)}

    def hours_total(self, since: datetime) -> tuple[RuleHour, ...]:
        """The hits of every rule together per hour, oldest first, from the hour holding
        ``since``; hours without hits are left out."""
        rows = self._read(
            "SELECT hour, sum(hits) FROM waypost_rule_hours WHERE hour >= ? "
            "GROUP BY hour ORDER BY hour",
            (self._time_param(hour_start(since.timestamp())),),
        )
        return tuple(RuleHour(self._stat_at(row[0]), int(row[1])) for row in rows)

    def _named(self, rows: Sequence[tuple[Any, ...]]) -> tuple[RuleStats, ...]:
        """The hit rows as RuleStats, each with its stored rule's name and from (one read for
        the page, by id: the ordered read of the hits stays on its index)."""
        keys = [row[0] for row in rows]
        names: dict[str, tuple[str | None, str]] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            for rule_id, name, from_path in self._read(
                "SELECT id, name, from_path FROM waypost_rules "
                f"WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                names[rule_id] = (name, from_path)
        return tuple(
            RuleStats(
                key,
                int(hits),
                self._stat_at(first),
                self._stat_at(last),
                *names.get(key, (None, None)),
            )
            for key, hits, first, last in rows
        )

    def rule_hours(
        self, rule_key: str, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[RuleHour, ...]:
        """The hits of ``rule_key`` per hour, oldest first: the hours starting at or after
        ``since`` and before ``until`` (None: no bound). Hours without hits are left out."""
        where = ["rule_key = ?"]
        params: list[object] = [rule_key]
        if since is not None:
            where.append("hour >= ?")
            params.append(self._time_param(hour_start(since.timestamp())))
        if until is not None:
            where.append("hour < ?")
            params.append(self._time_param(until))
        rows = self._read(
            f"SELECT hour, hits FROM waypost_rule_hours WHERE {' AND '.join(where)} ORDER BY hour",
            params,
        )
        return tuple(RuleHour(self._stat_at(row[0]), int(row[1])) for row in rows)

    def unused_rules(
        self, since: datetime | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> UnusedRulePage:
        """Rules in the store, in priority order, with no hits since ``since`` (None: never a
        hit, as far as the kept counts go). A rule created after ``since`` is listed too; its
        ``created_at`` says so. Pages as :meth:`list_rules`."""
        _check_limit(limit)
        where = ["h.rule_key IS NULL"]
        params: list[object] = []
        if since is not None:
            where = ["(h.rule_key IS NULL OR h.last_at < ?)"]
            params.append(self._time_param(since))
        if cursor:
            where.append("r.sort_key > ?")
            params.append(_after(cursor))
        rows = self._read(
            "SELECT r.id, r.name, r.from_path, v.created_at, h.last_at, r.sort_key "
            "FROM waypost_rules AS r "
            "LEFT JOIN waypost_rule_hits AS h ON h.rule_key = r.id "
            "LEFT JOIN waypost_revisions AS v ON v.number = r.created_revision "
            f"WHERE {' AND '.join(where)} ORDER BY r.sort_key LIMIT ?",
            (*params, limit + 1),
        )
        rules = tuple(
            UnusedRule(row[0], row[1], row[2], self._time_value(row[3]), self._time_value(row[4]))
            for row in rows[:limit]
        )
        more = len(rows) > limit
        return UnusedRulePage(rules, _cursor(int(rows[limit - 1][5])) if more else None)

    # -- not found -----------------------------------------------------------------------------

    def not_found_stats(
        self,
        *,
        status: NotFoundStatus | None = "open",
        include_bots: bool = False,
        sort: NotFoundSort = "hits",
        descending: bool = True,
        limit: int = 100,
        cursor: str | None = None,
    ) -> NotFoundPage:
        """Paths answered 404 with ``status`` (None: any), sorted by ``sort`` (``hits`` or
        ``last_at``; ties by id), most first unless ``descending`` is False, each with its
        heaviest referrers and user agents. Without ``include_bots`` the hits that count are
        people's (``hits - bot_hits``): paths only bots asked for are left out and ``hits``
        sorts by people's hits. Pages as :meth:`rule_stats`."""
        _choice("sort", sort, get_args(NotFoundSort))
        if status is not None:
            _choice("status", status, NOT_FOUND_STATUSES)
        _check_limit(limit)
        where: list[str] = []
        params: list[object] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if not include_bots:
            where.append("hits - bot_hits > 0")
        column = sort if sort == "last_at" or include_bots else "(hits - bot_hits)"
        kind = f"not-found:{sort}:{'bots' if include_bots else 'people'}:" + (
            "desc" if descending else "asc"
        )
        if cursor:
            after, values = self._after(kind, cursor, column, "id", descending, sort == "last_at")
            where.append(after)
            params += values
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_NOT_FOUND_COLUMNS} FROM waypost_not_found {clause}"
                f"ORDER BY {column} {'DESC' if descending else 'ASC'}, id LIMIT ?",
                (*params, limit + 1),
            )
            found = self._with_sources(conn, rows[:limit])
        if len(rows) <= limit:
            return NotFoundPage(found)
        last = found[-1]
        value = (
            last.last_at.isoformat()
            if sort == "last_at"
            else (last.hits if include_bots else last.people_hits)
        )
        return NotFoundPage(found, _page_cursor(kind, value, last.id))

    # -- visits --------------------------------------------------------------------------------

    def add_visits(self, visits: Sequence[tuple[Visit, str | None]]) -> None:
        """Add logged redirects, each with its country (None: unknown), in one transaction;
        referrers and user agents longer than :data:`SOURCE_VALUE_MAX` are cut."""
        if not visits:
            return
        rows = [
            (
                secrets.token_hex(8),
                self._time_param(datetime.fromtimestamp(visit.at, UTC)),
                visit.rule_key,
                _cut(visit.location),
                _cut(visit.referrer),
                _cut(visit.user_agent),
                country,
                visit.client,
            )
            for visit, country in visits
        ]
        with self._transaction(write=True) as conn:
            conn.executemany(
                f"INSERT INTO waypost_visits ({_VISIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def visits(
        self, *, rule_key: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> VisitPage:
        """Logged redirects, newest first (of ``rule_key`` only, if given); pages as
        :meth:`rule_stats`."""
        _check_limit(limit)
        where: list[str] = []
        params: list[object] = []
        if rule_key is not None:
            where.append("rule_key = ?")
            params.append(rule_key)
        kind = f"visits:{rule_key or ''}"
        if cursor:
            after, values = self._after(kind, cursor, "at", "id", True, True)
            where.append(after)
            params += values
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._read(
            f"SELECT {_VISIT_COLUMNS} FROM waypost_visits {clause}ORDER BY at DESC, id LIMIT ?",
            (*params, limit + 1),
        )
        found = tuple(
            VisitRow(row_id, self._stat_at(at), *rest) for row_id, at, *rest in rows[:limit]
        )
        if len(rows) <= limit:
            return VisitPage(found)
        last = found[-1]
        return VisitPage(found, _page_cursor(kind, last.at.isoformat(), last.id))

    def get_not_found(self, row_id: str) -> NotFoundStats:
        """The not-found row ``row_id`` with its sources; NotFoundError when there is none."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_NOT_FOUND_COLUMNS} FROM waypost_not_found WHERE id = ?", (row_id,)
            )
            if not rows:
                raise NotFoundError(f"there is no not-found path with id {row_id!r}")
            return self._with_sources(conn, rows)[0]

    def set_not_found_status(
        self,
        row_id: str,
        status: NotFoundStatus,
        resolved_rule_id: str | None = None,
    ) -> NotFoundStats:
        """Mark the not-found row ``row_id`` ``open``, ``dismissed`` or ``resolved`` (by the
        rule ``resolved_rule_id``, kept only for ``resolved``), now; the row as it is then.
        NotFoundError for an unknown id."""
        _choice("status", status, NOT_FOUND_STATUSES)
        rule_id = resolved_rule_id if status == "resolved" else None
        with self._transaction(write=True) as conn:
            self._stats_lock(conn)
            if not conn.execute("SELECT 1 FROM waypost_not_found WHERE id = ?", (row_id,)):
                raise NotFoundError(f"there is no not-found path with id {row_id!r}")
            conn.execute(
                "UPDATE waypost_not_found SET status = ?, resolved_rule_id = ?, status_at = ? "
                "WHERE id = ?",
                (status, rule_id, self._time_param(datetime.now(UTC)), row_id),
            )
        return self.get_not_found(row_id)

    def _with_sources(self, conn: Conn, rows: Sequence[Sequence[Any]]) -> tuple[NotFoundStats, ...]:
        """``rows`` of ``_NOT_FOUND_COLUMNS`` as values, with their sources read in ``conn``."""
        if not rows:
            return ()
        ids = [row[0] for row in rows]
        found: dict[tuple[str, str], list[NotFoundSource]] = {}
        for row_id, kind, value, hits in conn.execute(
            "SELECT not_found_id, kind, value, hits FROM waypost_not_found_sources "
            f"WHERE not_found_id IN ({', '.join('?' * len(ids))}) ORDER BY hits DESC, value",
            ids,
        ):
            found.setdefault((row_id, kind), []).append(NotFoundSource(value, int(hits)))
        return tuple(
            NotFoundStats(
                row[0],
                row[1],
                int(row[2]),
                int(row[3]),
                self._stat_at(row[4]),
                self._stat_at(row[5]),
                row[6],
                row[7],
                self._time_value(row[8]),
                tuple(found.get((row[0], "referrer"), ())),
                tuple(found.get((row[0], "user_agent"), ())),
            )
            for row in rows
        )

    def stats_other(self, since: datetime | None = None) -> int:
        """The 404s of paths too light for the bounded not-found log, in the hours starting at
        or after the hour ``since`` falls in (None: all kept)."""
        if since is None:
            rows = self._read("SELECT coalesce(sum(hits), 0) FROM waypost_stats_other")
        else:
            rows = self._read(
                "SELECT coalesce(sum(hits), 0) FROM waypost_stats_other WHERE hour >= ?",
                (self._time_param(hour_start(since.timestamp())),),
            )
        return int(rows[0][0])

    # -- retention -----------------------------------------------------------------------------

    def purge_stats(self, older_than: datetime) -> StatsPurge:
        """Delete, in one transaction, what is older than ``older_than``: hour rows (of rules
        and of "other") of hours that ended by then, and rule and not-found rows last hit
        before then (whatever their status: a dismissed path asked for again later comes back
        open). The counts deleted."""
        cutoff = self._time_param(older_than)
        hour = self._time_param(hour_start(older_than.timestamp()))
        # An hour starting before the hour older_than falls in has ended by older_than.
        deletes = (
            ("rule_hits", "waypost_rule_hits", "last_at", cutoff),
            ("rule_hours", "waypost_rule_hours", "hour", hour),
            ("not_found", "waypost_not_found", "last_at", cutoff),
            ("other_hours", "waypost_stats_other", "hour", hour),
            ("visits", "waypost_visits", "at", cutoff),
        )
        counts: dict[str, int] = {}
        with self._transaction(write=True) as conn:
            self._stats_lock(conn)
            for name, table, column, bound in deletes:
                counts[name] = int(
                    conn.execute(f"SELECT count(*) FROM {table} WHERE {column} < ?", (bound,))[0][0]
                )
                conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (bound,))
        return StatsPurge(**counts)
