"""The store's analytics, against SQLite and PostgreSQL: flushes add up across instances (two
store objects on one database, and two threads flushing at once), first and last hits widen,
hourly series add, not-found paths keep their status and their heaviest sources, lists sort and
page, retention purges, rules with no hits are found, a flush of 10,000 rules is quick, and a
database made before migration 6 upgrades in place."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from waypost.exceptions import NotFoundError, ValidationError
from waypost.store import _sql
from waypost.store._sql import SqlStore
from waypost.store.migrations import LATEST, MIGRATIONS
from waypost.store.stats import (
    MAX_SOURCES,
    SOURCE_VALUE_MAX,
    NotFoundDelta,
    RuleHitsDelta,
    RuleHour,
    StatsPurge,
    hour_start,
    not_found_id,
    parse_since,
)

StoreFactory = Callable[..., SqlStore]
T0 = 1_800_000_000.0  # on the hour: 2027-01-15 08:00 UTC
HOUR = 3600


def at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def two_instances(make_store: StoreFactory) -> tuple[SqlStore, SqlStore]:
    first = make_store()
    first.upgrade()
    return first, make_store()


def hits(key: str, count: int, first: float = T0, last: float | None = None) -> RuleHitsDelta:
    return RuleHitsDelta(key, count, first, first if last is None else last, {int(first): count})


def missing(
    path: str,
    count: int,
    *,
    bot_hits: int = 0,
    first: float = T0,
    last: float = T0,
    referrers: Mapping[str, int] | None = None,
    user_agents: Mapping[str, int] | None = None,
) -> NotFoundDelta:
    return NotFoundDelta(
        path, count, bot_hits, first, last, dict(referrers or {}), dict(user_agents or {})
    )


# -- rule hits ------------------------------------------------------------------------------------


def test_rule_hits_add_up_across_two_instances(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    one.add_rule_hits([hits("r1", 3), hits("site.yaml:4", 1)])
    two.add_rule_hits([hits("r1", 4)])
    one.add_rule_hits([hits("r1", 5)])
    assert one.get_rule_stats("r1").hits == 12 == two.get_rule_stats("r1").hits
    assert two.get_rule_stats("site.yaml:4").hits == 1


def test_first_and_last_hit_widen_and_never_narrow(store: SqlStore) -> None:
    store.add_rule_hits([hits("r", 1, T0 + 100, T0 + 200)])
    store.add_rule_hits([hits("r", 1, T0 + 150, T0 + 160)])  # inside: changes neither
    assert (store.get_rule_stats("r").first_at, store.get_rule_stats("r").last_at) == (
        at(T0 + 100),
        at(T0 + 200),
    )
    store.add_rule_hits([hits("r", 1, T0 + 50.25, T0 + 201.5)])
    stats = store.get_rule_stats("r")
    # Kept to the second.
    assert (stats.hits, stats.first_at, stats.last_at) == (3, at(T0 + 50), at(T0 + 201))


def test_deltas_of_one_rule_in_one_flush_add_up(store: SqlStore) -> None:
    store.add_rule_hits([hits("r", 2, T0 + 10), hits("r", 3, T0 + 5, T0 + 7)])
    stats = store.get_rule_stats("r")
    assert (stats.hits, stats.first_at, stats.last_at) == (5, at(T0 + 5), at(T0 + 10))
    assert store.rule_hours("r") == (RuleHour(at(T0), 5),)


def test_an_empty_flush_writes_nothing(store: SqlStore) -> None:
    store.add_rule_hits([])
    store.add_not_found([])
    assert store.rule_stats().rows == () and store.not_found_stats().rows == ()
    assert store.stats_other() == 0


def test_a_rule_without_hits_has_no_stats(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="'nope' has no hits"):
        store.get_rule_stats("nope")
    assert store.rule_hours("nope") == ()


def test_the_hourly_series_adds_per_hour_within_bounds(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    one.add_rule_hits(
        [RuleHitsDelta("r", 6, T0, T0 + 2 * HOUR, {int(T0): 1, int(T0) + 2 * HOUR: 5})]
    )
    # An hour key inside the hour counts for the hour it falls in.
    two.add_rule_hits([RuleHitsDelta("r", 4, T0, T0 + HOUR, {int(T0) + 59: 3, int(T0) + HOUR: 1})])
    assert one.rule_hours("r") == (
        RuleHour(at(T0), 4),
        RuleHour(at(T0 + HOUR), 1),
        RuleHour(at(T0 + 2 * HOUR), 5),
    )
    # since: from the hour it falls in; until: hours starting before it.
    assert two.rule_hours("r", since=at(T0 + HOUR + 30), until=at(T0 + 2 * HOUR)) == (
        RuleHour(at(T0 + HOUR), 1),
    )
    assert one.get_rule_stats("r").hits == 10


def test_hour_start_is_the_utc_hour() -> None:
    assert hour_start(T0 + HOUR - 0.5) == at(T0)
    assert hour_start(T0 + HOUR) == at(T0 + HOUR)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", at(T0) - timedelta(days=90)),
        ("12h", at(T0) - timedelta(hours=12)),
        (" 2W ", at(T0) - timedelta(weeks=2)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T12:00:00+02:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
    ],
    ids=["days", "hours", "weeks-spaced-upper", "date", "time-with-zone"],
)
def test_since_is_a_duration_ago_or_a_past_moment(text: str, expected: datetime) -> None:
    assert parse_since(text, now=at(T0)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "'soon' is not a duration or a date"),
        ("90", "'90' is not a duration or a date"),
        ("-5d", "'-5d' is not a duration or a date"),
        ("2099-01-01", "'2099-01-01' is in the future"),
    ],
    ids=["word", "no-unit", "negative", "future"],
)
def test_since_refuses_what_is_not_a_past_moment(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_since(text, now=at(T0))


def test_concurrent_flushes_from_two_instances_add_exactly(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    rounds, keys = 15, 40
    failures: list[BaseException] = []

    def flush(store: SqlStore, offset: int) -> None:
        try:
            for n in range(rounds):
                moment = T0 + offset + n
                # Keys in another order in each instance: the store orders its writes itself.
                order = list(range(keys)) if offset else list(reversed(range(keys)))
                store.add_rule_hits([hits(f"r{k:02d}", k + 1, moment) for k in order])
                store.add_not_found(
                    [
                        missing(f"/gone/{k}", 2, referrers={"https://a.example/": 1}, last=moment)
                        for k in order
                    ],
                    other=1,
                    when=moment,
                )
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=flush, args=(s, o)) for s, o in ((one, 0), (two, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    page = one.rule_stats(limit=keys)
    assert {row.rule_key: row.hits for row in page.rows} == {
        f"r{k:02d}": 2 * rounds * (k + 1) for k in range(keys)
    }
    assert sum(hour.hits for hour in one.rule_hours("r07")) == 2 * rounds * 8
    assert one.get_rule_stats("r00").first_at == at(T0)
    assert one.get_rule_stats("r00").last_at == at(T0 + rounds)
    found = one.not_found_stats(limit=keys).rows
    assert {row.path: (row.hits, row.referrers[0].hits) for row in found} == {
        f"/gone/{k}": (4 * rounds, 2 * rounds) for k in range(keys)
    }
    assert one.stats_other() == 2 * rounds


def test_a_flush_of_ten_thousand_rules_is_quick(store: SqlStore) -> None:
    deltas = [
        RuleHitsDelta(f"r{n}", 2, T0, T0 + 1, {int(T0): 1, int(T0) + HOUR: 1})
        for n in range(10_000)
    ]
    store.add_rule_hits(deltas[:1])  # the schema check and the first connection, out of the timing
    started = time.perf_counter()
    store.add_rule_hits(deltas)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"10,000 rule deltas took {elapsed:.2f} s"
    assert store.get_rule_stats("r9999").hits == 2 and store.get_rule_stats("r0").hits == 4


# -- listing rules --------------------------------------------------------------------------------


def flush_rules(store: SqlStore) -> None:
    # r-a: 5 hits, last at +50; r-b: 5 hits, last at +10; r-c: 9 hits, last at +30; r-d: 1, +40
    store.add_rule_hits(
        [
            hits("r-a", 5, T0, T0 + 50),
            hits("r-b", 5, T0, T0 + 10),
            hits("r-c", 9, T0, T0 + 30),
            hits("r-d", 1, T0, T0 + 40),
        ]
    )


def every_page(fetch: Callable[[str | None], tuple[tuple[str, ...], str | None]]) -> list[str]:
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = fetch(cursor)
        keys += page
        if cursor is None:
            return keys


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("hits", True, ["r-c", "r-a", "r-b", "r-d"]),
        ("hits", False, ["r-d", "r-a", "r-b", "r-c"]),
        ("last_at", True, ["r-a", "r-d", "r-c", "r-b"]),
        ("last_at", False, ["r-b", "r-c", "r-d", "r-a"]),
    ],
    ids=["most-hits", "fewest-hits", "latest", "earliest"],
)
def test_rule_stats_sort_and_page(
    store: SqlStore, sort: str, descending: bool, expected: list[str]
) -> None:
    flush_rules(store)

    def fetch(cursor: str | None) -> tuple[tuple[str, ...], str | None]:
        page = store.rule_stats(sort=sort, descending=descending, limit=1, cursor=cursor)  # type: ignore[arg-type]
        return tuple(row.rule_key for row in page.rows), page.next_cursor

    assert every_page(fetch) == expected
    assert [row.rule_key for row in store.rule_stats(sort=sort, descending=descending).rows] == (  # type: ignore[arg-type]
        expected
    )


def test_rule_stats_unused_since(store: SqlStore) -> None:
    flush_rules(store)
    page = store.rule_stats(unused_since=at(T0 + 35), sort="last_at")
    assert [row.rule_key for row in page.rows] == ["r-c", "r-b"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"sort": "name"}, "sort"),
        ({"cursor": "garbage"}, "cursor"),
    ],
    ids=["limit-0", "limit-too-big", "unknown-sort", "bad-cursor"],
)
def test_rule_stats_refuse_bad_arguments(
    store: SqlStore, options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.rule_stats(**options)  # type: ignore[arg-type]
    assert caught.value.problems[0][0] == field


def test_a_cursor_of_another_sort_is_refused(store: SqlStore) -> None:
    flush_rules(store)
    cursor = store.rule_stats(limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(ValidationError, match="not a cursor from a previous page"):
        store.rule_stats(sort="last_at", cursor=cursor)
    with pytest.raises(ValidationError):
        store.not_found_stats(cursor=cursor)


# -- not found ------------------------------------------------------------------------------------


def test_not_found_paths_add_up_across_instances(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    one.add_not_found([missing("/old/page", 3, bot_hits=1, first=T0 + 5, last=T0 + 9)])
    two.add_not_found([missing("/old/page", 4, bot_hits=2, first=T0 + 1, last=T0 + 7)])
    row = one.get_not_found(not_found_id("/old/page"))
    assert (row.path, row.hits, row.bot_hits, row.people_hits) == ("/old/page", 7, 3, 4)
    assert (row.first_at, row.last_at, row.status) == (at(T0 + 1), at(T0 + 9), "open")
    assert row.id == not_found_id("/old/page") and len(row.id) == 16


def test_not_found_ids_are_stable_and_distinct() -> None:
    assert not_found_id("/a") == not_found_id("/a") != not_found_id("/b")
    assert not_found_id("/a") == "6a50dc8584134c7d"  # sha256("/a")[:16], the same everywhere


def test_sources_add_up_and_only_the_heaviest_are_kept(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    many = {f"https://site{n:02d}.example/": n + 1 for n in range(MAX_SOURCES + 5)}
    one.add_not_found([missing("/x", 100, referrers=many, user_agents={"curl/8": 2, "Bot/1": 1})])
    two.add_not_found(
        [missing("/x", 10, referrers={"https://site00.example/": 100}, user_agents={"curl/8": 5})]
    )
    row = two.get_not_found(not_found_id("/x"))
    assert len(row.referrers) == MAX_SOURCES
    assert row.referrers[0].value == "https://site00.example/" and row.referrers[0].hits == 100
    # The rest are the heaviest of the first flush, heaviest first.
    assert [source.hits for source in row.referrers[1:]] == list(
        range(15, 15 - MAX_SOURCES + 1, -1)
    )
    assert [(s.value, s.hits) for s in row.user_agents] == [("curl/8", 7), ("Bot/1", 1)]
    with one._transaction() as conn:
        kept = conn.execute("SELECT count(*) FROM waypost_not_found_sources")[0][0]
    assert kept == MAX_SOURCES + 2


def test_a_long_source_is_cut(store: SqlStore) -> None:
    store.add_not_found([missing("/y", 1, user_agents={"A" * 5000: 1})])
    agent = store.get_not_found(not_found_id("/y")).user_agents[0]
    assert agent.value == "A" * SOURCE_VALUE_MAX


def test_a_dismissed_path_stays_dismissed_while_its_counts_add(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    one.add_not_found([missing("/wp-login.php", 5)])
    row_id = not_found_id("/wp-login.php")
    dismissed = two.set_not_found_status(row_id, "dismissed", resolved_rule_id="ignored")
    assert (dismissed.status, dismissed.resolved_rule_id) == ("dismissed", None)
    assert dismissed.status_at is not None
    one.add_not_found([missing("/wp-login.php", 2, last=T0 + 60)])
    row = one.get_not_found(row_id)
    assert (row.status, row.hits, row.last_at) == ("dismissed", 7, at(T0 + 60))
    assert one.not_found_stats().rows == ()
    assert [r.path for r in one.not_found_stats(status="dismissed").rows] == ["/wp-login.php"]
    assert [r.path for r in one.not_found_stats(status=None).rows] == ["/wp-login.php"]


def test_a_path_resolved_by_a_rule_remembers_the_rule(store: SqlStore) -> None:
    store.add_not_found([missing("/old", 5)])
    row = store.set_not_found_status(not_found_id("/old"), "resolved", resolved_rule_id="r1")
    assert (row.status, row.resolved_rule_id) == ("resolved", "r1")
    store.add_not_found([missing("/old", 1)])
    assert store.get_not_found(row.id).status == "resolved"
    reopened = store.set_not_found_status(row.id, "open")
    assert (reopened.status, reopened.resolved_rule_id, reopened.hits) == ("open", None, 6)


def test_status_changes_refuse_unknown_rows_and_statuses(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="'0123456789abcdef'"):
        store.set_not_found_status("0123456789abcdef", "dismissed")
    with pytest.raises(NotFoundError):
        store.get_not_found("0123456789abcdef")
    store.add_not_found([missing("/z", 1)])
    with pytest.raises(ValidationError):
        store.set_not_found_status(not_found_id("/z"), "gone")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.not_found_stats(status="gone")  # type: ignore[arg-type]


def flush_paths(store: SqlStore) -> None:
    store.add_not_found(
        [
            missing("/people", 5, bot_hits=0, last=T0 + 10),
            missing("/mixed", 9, bot_hits=6, last=T0 + 30),  # 3 from people
            missing("/bots", 8, bot_hits=8, last=T0 + 20),
            missing("/tie", 5, bot_hits=2, last=T0 + 40),  # 3 from people
        ]
    )


@pytest.mark.parametrize(
    ("include_bots", "sort", "descending", "expected"),
    [
        (False, "hits", True, ["/people", "/mixed", "/tie"]),
        (True, "hits", True, ["/mixed", "/bots", "/people", "/tie"]),
        (False, "hits", False, ["/mixed", "/tie", "/people"]),
        (True, "last_at", True, ["/tie", "/mixed", "/bots", "/people"]),
        (False, "last_at", False, ["/people", "/mixed", "/tie"]),
    ],
    ids=["people", "everyone", "people-fewest", "everyone-latest", "people-earliest"],
)
def test_not_found_lists_sort_page_and_leave_bots_out(
    store: SqlStore, include_bots: bool, sort: str, descending: bool, expected: list[str]
) -> None:
    flush_paths(store)
    # Ties go by id, whatever it is: order the expected ties the same way.
    tie = sorted(["/mixed", "/tie"], key=not_found_id)
    if sort == "hits" and not include_bots:
        expected = [path for path in expected if path not in tie]
        expected[1 if descending else 0 : 1 if descending else 0] = tie

    def fetch(cursor: str | None) -> tuple[tuple[str, ...], str | None]:
        page = store.not_found_stats(
            include_bots=include_bots,
            sort=sort,  # type: ignore[arg-type]
            descending=descending,
            limit=1,
            cursor=cursor,
        )
        return tuple(row.path for row in page.rows), page.next_cursor

    assert every_page(fetch) == expected


def test_not_found_rows_are_ready_for_json(store: SqlStore) -> None:
    store.add_not_found([missing("/j", 2, referrers={"https://r.example/": 2})])
    shown = store.get_not_found(not_found_id("/j")).to_dict()
    assert json.loads(json.dumps(shown))["referrers"] == [
        {"value": "https://r.example/", "hits": 2}
    ]
    assert shown["first_at"] == at(T0).isoformat() and shown["status"] == "open"


def test_other_404s_add_per_hour(make_store: StoreFactory) -> None:
    one, two = two_instances(make_store)
    one.add_not_found([], other=3, when=T0 + 10)
    two.add_not_found([missing("/p", 1)], other=4, when=T0 + HOUR + 10)
    one.add_not_found([], other=5, when=T0 + HOUR + 20)
    assert one.stats_other() == 12
    assert two.stats_other(since=at(T0 + HOUR + 30)) == 9  # from the start of that hour
    assert two.stats_other(since=at(T0 + 2 * HOUR)) == 0


# -- retention and unused rules -------------------------------------------------------------------


def test_purge_deletes_what_is_older_in_every_table(store: SqlStore) -> None:
    store.add_rule_hits(
        [
            RuleHitsDelta("old", 2, T0, T0 + 10, {int(T0): 2}),
            RuleHitsDelta("both", 2, T0, T0 + 3 * HOUR, {int(T0): 1, int(T0) + 3 * HOUR: 1}),
        ]
    )
    store.add_not_found(
        [
            missing("/old", 1, last=T0 + 10, referrers={"r": 1}),
            missing("/new", 1, last=T0 + 3 * HOUR),
        ],
        other=1,
        when=T0,
    )
    store.add_not_found([], other=1, when=T0 + 3 * HOUR)
    purged = store.purge_stats(at(T0 + HOUR + 30))
    assert purged == StatsPurge(rule_hits=1, rule_hours=2, not_found=1, other_hours=1)
    assert [row.rule_key for row in store.rule_stats().rows] == ["both"]
    assert store.rule_hours("both") == (RuleHour(at(T0 + 3 * HOUR), 1),)
    assert [row.path for row in store.not_found_stats().rows] == ["/new"]
    assert store.stats_other() == 1
    with store._transaction() as conn:  # the purged path's sources went with it
        assert conn.execute("SELECT count(*) FROM waypost_not_found_sources")[0][0] == 0
    assert store.purge_stats(at(T0 + HOUR + 30)) == StatsPurge()


def test_purge_keeps_the_hour_still_running(store: SqlStore) -> None:
    store.add_rule_hits([RuleHitsDelta("r", 1, T0 + 5, T0 + 5, {int(T0): 1})])
    assert store.purge_stats(at(T0 + 30)).rule_hours == 0
    assert store.purge_stats(at(T0 + HOUR)).rule_hours == 1


def test_unused_rules_are_those_without_hits_since(store: SqlStore) -> None:
    ids = [
        store.create_rule({"from": f"/r{n}", "to": f"/t{n}", "name": f"rule-{n}"}).id
        for n in range(4)
    ]
    store.add_rule_hits([hits(ids[0], 1, T0), hits(ids[1], 1, T0 + 100), hits("file.yaml:3", 1)])
    never = store.unused_rules()
    assert [rule.rule_id for rule in never.rules] == ids[2:]
    assert never.rules[0].last_hit_at is None and never.rules[0].name == "rule-2"
    assert never.rules[0].from_path == "/r2" and never.rules[0].created_at is not None
    since = store.unused_rules(at(T0 + 50))
    assert [rule.rule_id for rule in since.rules] == [ids[0], ids[2], ids[3]]
    assert since.rules[0].last_hit_at == at(T0)

    def fetch(cursor: str | None) -> tuple[tuple[str, ...], str | None]:
        page = store.unused_rules(at(T0 + 50), limit=2, cursor=cursor)
        return tuple(rule.rule_id for rule in page.rules), page.next_cursor

    assert every_page(fetch) == [ids[0], ids[2], ids[3]]
    with pytest.raises(ValidationError):
        store.unused_rules(limit=0)


def test_a_deleted_rule_keeps_its_counts_until_purged(store: SqlStore) -> None:
    rule = store.create_rule({"from": "/a", "to": "/b"})
    store.add_rule_hits([hits(rule.id, 3, T0)])
    store.delete_rule(rule.id)
    assert store.get_rule_stats(rule.id).hits == 3
    assert store.unused_rules().rules == ()
    store.purge_stats(at(T0 + 1))
    with pytest.raises(NotFoundError):
        store.get_rule_stats(rule.id)


# -- migration 6 on a database made before it -----------------------------------------------------


def test_a_database_from_before_migration_6_upgrades_in_place(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LATEST >= 6 and MIGRATIONS[5].number == 6
    with monkeypatch.context() as older:  # the Waypost that knew migrations 1 to 5
        older.setattr(_sql, "MIGRATIONS", MIGRATIONS[:5])
        older.setattr(_sql, "LATEST", 5)
        before = make_store(auto_upgrade=False)
        assert before.upgrade() == (0, 5)
        old_rows(before, ({"from": "/kept", "to": "/there"},))
        before.close()

    after = make_store(auto_upgrade=False)
    assert after.schema_status().pending == tuple(
        f"{m.number:04d} {m.name}" for m in MIGRATIONS[5:]
    )
    assert after.upgrade() == (5, LATEST)
    assert [r.rule_id for r in after.unused_rules().rules] == ["r0"]
    after.add_rule_hits([hits("r0", 2)])
    assert after.get_rule_stats("r0").hits == 2 and after.unused_rules().rules == ()


def old_rows(store: SqlStore, rules: Sequence[dict[str, Any]]) -> None:
    """Rules as a Waypost before migration 8 wrote them (no ``status`` column): ids r0, r1..."""
    from waypost.store._sql_rules import search_text

    with store._transaction(write=True) as conn:
        for n, rule in enumerate(rules):
            action = next(a for a in ("to", "rewrite", "respond", "pass") if a in rule)
            conn.execute(
                "INSERT INTO waypost_rules (id, sort_key, rule, version, created_revision, "
                "name, from_path, action, search) VALUES (?, ?, ?, 1, 1, NULL, ?, ?, ?)",
                (f"r{n}", n + 1, json.dumps(rule), rule["from"],
                 "redirect" if action == "to" else action, search_text(rule)),
            )  # fmt: skip


def test_migration_8_fills_the_status_each_rule_states(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MIGRATIONS[7].number == 8
    rules = (
        {"from": "/a", "to": "/b"},
        {"from": "/c", "to": "/d", "status": 302},
        {"from": "/e", "respond": 410},
        {"from": "/f", "respond": {"status": 503, "body": "soon"}},
        {"from": "/g", "rewrite": "/h"},
    )
    with monkeypatch.context() as older:
        older.setattr(_sql, "MIGRATIONS", MIGRATIONS[:7])
        older.setattr(_sql, "LATEST", 7)
        before = make_store(auto_upgrade=False)
        assert before.upgrade() == (0, 7)
        old_rows(before, rules)
        before.close()
    after = make_store(auto_upgrade=False)
    assert after.upgrade() == (7, LATEST)
    for status, paths in ((301, ["/a"]), (302, ["/c"]), (410, ["/e"]), (503, ["/f"]), (404, [])):
        assert [r.path for r in after.list_rules(status=status).rules] == paths, status


def test_parse_since_says_what_is_wrong_with_a_huge_duration_or_an_old_date() -> None:
    from waypost.store.stats import parse_since

    for text in ("99999999999d", "1969-12-31"):
        with pytest.raises(ValueError, match="from 1970 on"):
            parse_since(text)
    assert parse_since("2999-01-01", allow_future=True).year == 2999


def test_a_scanner_cannot_grow_the_open_paths_past_their_bound(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("waypost.store._sql_stats.MAX_NOT_FOUND_PATHS", 10)
    store.add_not_found([missing("/broken-link", 50, referrers={"https://a.example/": 50})])
    store.set_not_found_status(not_found_id("/broken-link"), "resolved")
    store.add_not_found([missing("/real-broken", 40, referrers={"https://b.example/": 40})])
    # A scanner: each flush a thousand paths asked once, and the real one again.
    for flush in range(3):
        store.add_not_found(
            [missing(f"/scan/{flush}/{n}", 1, user_agents={"scanner": 1}) for n in range(1000)]
            + [missing("/real-broken", 2)],
            when=T0,
        )
    rows = store.not_found_stats(status="open", include_bots=True, limit=100).rows
    assert len(rows) <= 11
    assert rows[0].path == "/real-broken" and rows[0].hits == 46
    # Nothing lost: what was cut counts as other.
    assert store.stats_other() + sum(row.hits for row in rows) == 40 + 3 * 1002
    # A resolved path is history: kept.
    assert store.get_not_found(not_found_id("/broken-link")).hits == 50


# -- visits -----------------------------------------------------------------------------------


def test_visits_are_listed_newest_first_and_paged(store: SqlStore) -> None:
    from waypost.stats.visits import Visit

    long_agent = "Mozilla/5.0 " + "x" * 2000
    store.add_visits(
        [
            (
                Visit(T0 + n, "r1" if n % 2 else "r2", f"/to/{n}", None, long_agent, "203.0.113.0"),
                "DE",
            )
            for n in range(5)
        ]
    )
    assert store.add_visits([]) is None
    page = store.visits(limit=2)
    assert [row.at for row in page.rows] == [at(T0 + 4), at(T0 + 3)]
    rest = store.visits(limit=2, cursor=page.next_cursor)
    last = store.visits(limit=2, cursor=rest.next_cursor)
    assert [row.location for row in (*page.rows, *rest.rows, *last.rows)] == [
        f"/to/{n}" for n in (4, 3, 2, 1, 0)
    ]
    assert last.next_cursor is None
    r1 = store.visits(rule_key="r1")
    assert [row.location for row in r1.rows] == ["/to/3", "/to/1"]
    shown = r1.rows[0].to_dict()
    assert (shown["country"], shown["client"], len(shown["user_agent"])) == (
        "DE",
        "203.0.113.0",
        512,
    )
    with pytest.raises(ValidationError):
        store.visits(rule_key="r2", cursor=page.next_cursor)  # another list's cursor
    assert store.purge_stats(at(T0 + 2)).visits == 2
    assert len(store.visits().rows) == 3
