"""Analytics of real servers: rule hits and 404s counted by each worker and added to the store
(two instances, one with two workers, on one PostgreSQL; and SQLite), and the recorder's
flush keeping what the store could not take."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._servers import Server, stored_rules
from waypost import Engine
from waypost.exceptions import StoreUnavailable
from waypost.store import open_store
from waypost.store.recorder import BUDGET, StatsRecorder

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
RULES = [
    {"from": "/old-page", "to": "/new-page"},
    {"from": "/blog/<int:year>/<slug>", "to": "/posts/{year}/{slug}"},
    {"from": "/gone", "respond": 410},
]


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    running: list[Server] = []
    yield running
    for server in running:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'waypost.db'}"
    else:
        schema = request.getfixturevalue("postgres_schema")
        assert POSTGRES_URL is not None  # postgres_schema skipped otherwise
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    stored_rules(url, RULES)
    return url


def test_two_instances_add_up_to_exactly_the_requests_sent(db: str, servers: list[Server]) -> None:
    first = Server(db, "--stats", "--stats-interval", "0.5")
    second = Server(db, "--stats", "--stats-interval", "0.5", "--workers", "2")
    servers += [first, second]
    sent = {"/old-page": 0, "/blog/2024/hello": 0, "/gone": 0}
    missing = {"/no/such/page": 0, "/wp-login.php": 0}
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
    with httpx.Client() as client:
        for round_number in range(30):
            for server in (first, second):
                for path in sent:
                    if round_number % 3 or path == "/old-page":
                        client.get(server.base + path, headers=browser)
                        sent[path] += 1
                for path in missing:
                    if round_number % 2 or path == "/no/such/page":
                        response = client.get(
                            server.base + path,
                            headers={**browser, "Referer": "https://example.org/links"},
                        )
                        assert response.status_code == 404
                        missing[path] += 1
    for server in servers:
        server.stop()  # the graceful shutdown's last flush
    servers.clear()
    store = open_store(db)
    try:
        ids = dict(zip((r["from"] for r in RULES), store.load_snapshot().rule_ids, strict=True))
        counted = {row.rule_key: row.hits for row in store.rule_stats(limit=100).rows}
        assert counted == {
            ids["/old-page"]: sent["/old-page"],
            ids["/blog/<int:year>/<slug>"]: sent["/blog/2024/hello"],
            ids["/gone"]: sent["/gone"],
        }
        hours = store.rule_hours(ids["/old-page"])
        assert sum(hour.hits for hour in hours) == sent["/old-page"]
        rows = {row.path: row for row in store.not_found_stats(status=None, limit=100).rows}
        assert {path: row.hits for path, row in rows.items()} == missing
        assert store.stats_other() == 0
        top = rows["/no/such/page"].to_dict()
        assert "https://example.org/links" in str(top)
    finally:
        store.close()


def test_the_busiest_rules_have_a_metrics_series(tmp_path: Path, servers: list[Server]) -> None:
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    ids = dict(zip((r["from"] for r in RULES), stored_rules(url, RULES), strict=True))
    server = Server(url, "--stats", "--stats-interval", "0.3", "--stats-top-rules", "1")
    servers.append(server)
    with httpx.Client() as client:
        for _ in range(4):
            client.get(server.base + "/old-page")
        client.get(server.base + "/gone")
        wanted = f'waypost_rule_hits_total{{rule="{ids["/old-page"]}"}} 4.0'
        deadline = time.monotonic() + 15
        while True:
            text = client.get(server.base + "/_waypost/metrics").text
            if wanted in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert wanted in text
    assert ids["/gone"] not in text  # not among the busiest 1


def test_without_stats_nothing_is_counted(db: str, servers: list[Server]) -> None:
    server = Server(db, "--no-stats")
    servers.append(server)
    httpx.get(server.base + "/old-page")
    httpx.get(server.base + "/nothing")
    server.stop()
    servers.clear()
    store = open_store(db)
    try:
        assert store.rule_stats(limit=10).rows == ()
        assert store.not_found_stats(status=None, limit=10).rows == ()
    finally:
        store.close()


# -- the recorder, in process ------------------------------------------------------------


class _FlakyStore:
    """A store that is down for the first ``down`` flushes, then takes what it is given."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.rule_hits: list[Any] = []
        self.not_found: list[tuple[Any, int]] = []

    def add_rule_hits(self, deltas: Any) -> None:
        if self.down:
            self.down -= 1
            raise StoreUnavailable("the database is down")
        self.rule_hits.extend(deltas)

    def add_not_found(self, deltas: Any, other: int = 0) -> None:
        self.not_found.append((list(deltas), other))

    def purge_stats(self, older_than: Any) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_flush_the_store_refused_is_added_at_the_next_one_once() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}])
    recorder = StatsRecorder("sqlite:///unused.db", rules=engine.rules, rule_ids=("r1",))
    store = _FlakyStore(down=1)
    recorder._store = store
    decision = engine.resolve("GET", "/a")
    for _ in range(3):
        recorder.hit(decision, 1_700_000_000.0)
    recorder.missing("/nope?x=1", None, "curl/8", 1_700_000_000.0)
    recorder.flush()  # the store is down: kept
    assert store.rule_hits == []
    recorder.hit(decision, 1_700_000_100.0)
    recorder.flush()
    assert sorted((d.rule_key, d.hits) for d in store.rule_hits) == [("r1", 1), ("r1", 3)]
    assert sum(d.hits for deltas, _ in store.not_found for d in deltas) == 1
    recorder.flush()  # nothing new: nothing written twice
    assert sum(d.hits for d in store.rule_hits) == 4


class _SlowRecorder(StatsRecorder):
    """A recorder whose flushes take 50 ms of CPU (a store receiving a large batch)."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        self.rules.drain()
        started = time.thread_time()
        while time.thread_time() - started < 0.05:
            pass


def test_flushes_expected_to_be_slow_space_themselves_out_within_the_budget() -> None:
    recorder = _SlowRecorder("sqlite:///unused.db", interval=0.1)
    assert recorder.report() == {"flushed_at": None, "interval": 0.1, "held": 0, "dropped": 0}
    for k in range(10):
        recorder.rules.record(f"rule-{k}", 1_700_000_000.0)
    recorder.start()
    try:
        deadline = time.monotonic() + 10
        while recorder.flushes == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.flushes == 1
        for k in range(10):
            recorder.rules.record(f"rule-{k}", 1_700_000_001.0)
        time.sleep(1.0)
        # 10 rows cost 50 ms: 10 more are expected to cost as much, which the 1% budget
        # spreads over 5 s.
        assert recorder.flushes == 1
        assert recorder.effective_interval >= 10 * 0.005 / BUDGET * 0.99
        assert recorder.report()["interval"] >= 4.9
    finally:
        recorder._stop.set()


def test_the_busiest_rules_since_start_are_kept_for_the_metrics() -> None:
    recorder = StatsRecorder("sqlite:///unused.db", top_rules=2)
    recorder._store = _FlakyStore(down=0)
    for round_number in range(3):
        for key, hits in (("a", 5), ("b", 1), ("c", 3)):
            for _ in range(hits):
                recorder.rules.record(key, 1_700_000_000.0)
        for k in range(20):  # many rules hit once: forgotten, the busiest kept
            recorder.rules.record(f"once-{round_number}-{k}", 1_700_000_000.0)
        recorder.flush()
    assert recorder.top_rules() == [("a", 15), ("c", 9)]
    assert len(recorder._totals) <= 8
    assert StatsRecorder("sqlite:///unused.db", top_rules=0).top_rules() == []


def test_a_reload_binds_the_new_rules_and_the_raced_requests_keep_their_ids() -> None:
    rules = [{"from": f"/p/{i}", "to": f"/n/{i}"} for i in range(3)] + [
        {"from": "/c/<int:n>", "to": "/d/{n}"}
    ]
    first, second, third = Engine(rules), Engine(rules[::-1]), Engine(rules)
    recorder = StatsRecorder(
        "sqlite:///unused.db", rules=first.rules, rule_ids=("a0", "a1", "a2", "a3")
    )
    recorder._store = store = _FlakyStore(down=0)
    recorder.hit(first.resolve("GET", "/p/1"), 1_700_000_000.0)
    recorder.bind(second.rules, ("b0", "b1", "b2", "b3"))
    # A request the old rules decided, counted after the reload: still its old id.
    recorder.hit(first.resolve("GET", "/c/7"), 1_700_000_001.0)
    recorder.hit(second.resolve("GET", "/p/1"), 1_700_000_002.0)
    recorder.bind(third.rules, ())  # rules from a file: by file:line
    recorder.hit(third.resolve("GET", "/p/2"), 1_700_000_003.0)
    # Two reloads back: no longer bound, counted by its rule's source.
    recorder.hit(first.resolve("GET", "/p/0"), 1_700_000_004.0)
    recorder.flush()
    assert sorted((d.rule_key, d.hits) for d in store.rule_hits) == [
        ("<rules>#1", 1),
        ("<rules>#3", 1),
        ("a1", 1),
        ("a3", 1),
        ("b2", 1),
    ]
    assert recorder.pending() == 0


def test_the_404s_written_add_up_to_those_recorded_when_paths_were_evicted() -> None:
    recorder = StatsRecorder("sqlite:///unused.db", capacity=10)
    recorder._store = store = _FlakyStore(down=0)
    for n in range(500):
        recorder.missing(f"/scan/{n}", None, None, 1_700_000_000.0)
        if n % 5 == 0:
            recorder.missing("/real", None, None, 1_700_000_000.0)
    recorder.flush()
    ((deltas, other),) = store.not_found
    assert sum(d.hits for d in deltas) + other == 600
    assert max(deltas, key=lambda d: d.hits).path == "/real"


def test_hits_of_rules_not_from_the_store_are_counted_by_source() -> None:
    recorder = StatsRecorder("sqlite:///unused.db", rule_ids=())
    engine = Engine([{"from": "/a", "to": "/b"}, {"from": "/c/<int:n>", "to": "/d/{n}"}])
    recorder.hit(engine.resolve("GET", "/a"), 1_700_000_000.0)
    recorder.hit(engine.resolve("GET", "/c/4"), 1_700_000_000.0)
    recorder.hit(engine.resolve("GET", "/nothing"), 1_700_000_000.0)
    assert sorted((d.key, d.hits) for d in recorder.rules.drain()) == [
        ("<rules>#1", 1),
        ("<rules>#2", 1),
    ]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"stats": True, "db": "sqlite:///x.db", "stats_interval": 0}, "more than 0 seconds"),
        ({"stats_retention": -1}, "a number of days, 0 or more"),
        ({"stats_top_rules": -1}, "a number of rules, 0 or more"),
    ],
    ids=["zero-interval", "negative-retention", "negative-top"],
)
def test_stats_settings_that_cannot_work_are_refused(flags: dict[str, Any], message: str) -> None:
    from waypost.exceptions import SettingsError
    from waypost.server.config import Settings
    from waypost.server.run import check_serve_settings

    with pytest.raises(SettingsError, match=message):
        check_serve_settings(Settings(**flags))


def test_sampled_redirects_are_written_as_visits_with_their_country(tmp_path: Path) -> None:
    from tests._mmdb import mmdb

    geoip = tmp_path / "GeoLite2-Country.mmdb"
    geoip.write_bytes(mmdb("203.0.113.0/24", {"country": {"iso_code": "DE"}}))
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    engine = Engine([{"from": "/a", "to": "/b"}])
    recorder = StatsRecorder(
        url, rules=engine.rules, rule_ids=("r1",), visits=1.0, geoip=str(geoip)
    )
    decision = engine.resolve("GET", "/a")
    recorder.visit(decision, 1_800_000_000.0, "203.0.113.77", "https://a.example/", "Firefox")
    recorder.visit(decision, 1_800_000_001.0, "198.51.100.9", None, None)
    recorder.visit(engine.resolve("GET", "/none"), 1_800_000_002.0, "198.51.100.9", None, None)
    recorder.flush()
    store = open_store(url)
    try:
        rows = [row.to_dict() for row in store.visits().rows]
    finally:
        store.close()
    assert [(r["rule_key"], r["location"], r["client"], r["country"]) for r in rows] == [
        ("r1", "/b", "198.51.100.0", None),
        ("r1", "/b", "203.0.113.0", "DE"),
    ]
    assert rows[1]["referrer"] == "https://a.example/" and rows[1]["user_agent"] == "Firefox"


def test_a_server_logs_each_sampled_redirect(tmp_path: Path, servers: list[Server]) -> None:
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    stored_rules(url, RULES)
    server = Server(url, "--stats", "--stats-visits", "1", "--stats-visit-addresses", "full")
    servers.append(server)
    with httpx.Client() as client:
        for _ in range(3):
            client.get(server.base + "/old-page", headers={"Referer": "https://b.example/"})
        client.get(server.base + "/gone")  # a respond: no visit
    server.stop()
    servers.clear()
    store = open_store(url)
    try:
        rows = store.visits().rows
    finally:
        store.close()
    assert [(row.location, row.client, row.referrer) for row in rows] == [
        ("/new-page", "127.0.0.1", "https://b.example/")
    ] * 3


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"stats": True, "db": "sqlite:///x.db", "stats_visits": 2}, "from 0 to 1"),
        (
            {"stats": True, "db": "sqlite:///x.db", "stats_visit_addresses": "half"},
            "anonymized, full, none",
        ),
        ({"db": "sqlite:///x.db", "stats_visits": 0.5}, "give --stats too"),
        (
            {"stats": True, "db": "sqlite:///x.db", "stats_visits": 1, "geoip": "/no/such.mmdb"},
            "not a readable MaxMind database",
        ),
        ({"stats": True, "db": "sqlite:///x.db", "geoip": "/no/such.mmdb"}, "--stats-visits"),
    ],
    ids=["rate", "addresses", "without-stats", "geoip-missing", "geoip-without-visits"],
)
def test_visit_settings_that_cannot_work_are_refused(flags: dict[str, Any], message: str) -> None:
    from waypost.exceptions import SettingsError
    from waypost.server.config import Settings
    from waypost.server.run import check_serve_settings

    with pytest.raises(SettingsError, match=message):
        check_serve_settings(Settings(**flags))
