"""Analytics through a real Redis (``WAYPOST_TEST_REDIS_URL``; skipped without it): flushes add
up in Redis, folds move them into the store exactly once (two folding at once included), a store
that fails keeps the batch in Redis, and a Redis that is down costs flushes, never requests."""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._servers import Server, stored_rules
from waypost import Engine
from waypost.exceptions import SettingsError, StoreUnavailable
from waypost.store import open_store
from waypost.store._sql import SqlStore
from waypost.store.recorder import MAX_HELD, StatsRecorder
from waypost.store.redis_stats import RedisCounters, open_redis_counters
from waypost.store.stats import NotFoundDelta, RuleHitsDelta

REDIS_URL = os.environ.get("WAYPOST_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    REDIS_URL is None, reason="set WAYPOST_TEST_REDIS_URL=redis://... to run against Redis"
)
T0 = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'waypost.db'}")
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def counters(store: SqlStore) -> Iterator[RedisCounters]:
    assert REDIS_URL is not None
    prefix = f"waypost:test:{secrets.token_hex(6)}:"
    made = open_redis_counters(REDIS_URL, store.location, prefix)
    try:
        yield made
    finally:
        for key in made._client.scan_iter(match=prefix + "*"):
            made._client.delete(key)
        made.close()


def _flush_known(counters: RedisCounters) -> None:
    counters.add_rule_hits([RuleHitsDelta("r1", 3, T0 + 10, T0 + 20, {int(T0): 3})])
    counters.add_rule_hits(
        [
            RuleHitsDelta("r1", 2, T0 + 5, T0 + 3700, {int(T0): 1, int(T0) + 3600: 1}),
            RuleHitsDelta("file.yaml:4", 1, T0, T0, {int(T0): 1}),
        ]
    )
    counters.add_not_found(
        [NotFoundDelta("/old", 4, 1, T0, T0 + 9, {"https://a.example/": 3}, {"Firefox": 3})],
        other=7,
        when=T0,
    )
    counters.add_not_found([NotFoundDelta("/old", 1, 0, T0 - 5, T0 + 2, {}, {"curl": 1})])


@needs_redis
def test_flushes_add_up_in_redis_and_fold_into_the_store_once(
    counters: RedisCounters, store: SqlStore
) -> None:
    _flush_known(counters)
    assert counters.fold_into(store) == 1
    r1 = store.get_rule_stats("r1")
    assert (r1.hits, r1.first_at.timestamp(), r1.last_at.timestamp()) == (5, T0 + 5, T0 + 3700)
    assert [(h.hits) for h in store.rule_hours("r1")] == [4, 1]
    assert store.get_rule_stats("file.yaml:4").hits == 1
    old = store.not_found_stats(include_bots=True).rows[0]
    assert (old.path, old.hits, old.bot_hits) == ("/old", 5, 1)
    assert old.first_at.timestamp() == T0 - 5 and old.last_at.timestamp() == T0 + 9
    assert [(s.value, s.hits) for s in old.referrers] == [("https://a.example/", 3)]
    assert store.stats_other() == 7
    # Nothing left: a second fold adds nothing.
    assert counters.fold_into(store) == 0
    assert store.get_rule_stats("r1").hits == 5
    assert list(counters._client.scan_iter(match=counters.prefix + "*")) == []


@needs_redis
def test_two_folding_at_once_take_each_count_once(
    counters: RedisCounters, store: SqlStore, tmp_path: Path
) -> None:
    assert REDIS_URL is not None
    other = open_redis_counters(REDIS_URL, store.location, counters.prefix)
    second_store = open_store(f"sqlite:///{tmp_path / 'waypost.db'}")
    try:
        for _ in range(20):
            counters.add_rule_hits([RuleHitsDelta("r", 1, T0, T0, {int(T0): 1})])
            start = threading.Barrier(2)
            folds: list[int] = []

            def fold(
                which: RedisCounters,
                into: SqlStore,
                start: threading.Barrier = start,
                folds: list[int] = folds,
            ) -> None:
                start.wait()
                folds.append(which.fold_into(into))

            threads = [
                threading.Thread(target=fold, args=(counters, store)),
                threading.Thread(target=fold, args=(other, second_store)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(folds) == [0, 1]
        assert store.get_rule_stats("r").hits == 20
    finally:
        other.close()
        second_store.close()


@needs_redis
def test_a_batch_folded_while_another_folder_looked_is_not_folded_again(
    counters: RedisCounters, store: SqlStore
) -> None:
    # The race of the test above, made certain: another folder lists the batch this one has
    # just taken, this one folds it (its hashes and lock deleted at once), then the other tries
    # to lock it. It must find nothing to fold (it used to lock the empty batch and count it).
    assert REDIS_URL is not None
    other = open_redis_counters(REDIS_URL, store.location, counters.prefix)
    try:
        counters.add_rule_hits([RuleHitsDelta("r", 1, T0, T0, {int(T0): 1})])
        token = secrets.token_hex(8)
        keys = [*counters._keys(), *counters._keys(token), counters._lock(token)]
        assert counters._call(counters._take, keys, [60]) > 0
        seen = list(other._client.scan_iter(match=f"{counters.prefix}batch:*"))
        assert seen
        counters._fold_batch(store, token)
        other._client.scan_iter = lambda **_: iter(seen)
        assert other.fold_into(store) == 0
        assert not list(counters._client.scan_iter(match=f"{counters.prefix}*"))
        assert store.get_rule_stats("r").hits == 1
    finally:
        other.close()


class _DownStore:
    """A store that refuses the not-found part of a fold once."""

    def __init__(self, real: SqlStore) -> None:
        self.real = real
        self.refusals = 1

    def add_rule_hits(self, deltas: Any) -> None:
        self.real.add_rule_hits(deltas)

    def add_not_found(self, deltas: Any, other: int = 0, when: float | None = None) -> None:
        if self.refusals:
            self.refusals -= 1
            raise StoreUnavailable("the database is down")
        self.real.add_not_found(deltas, other=other, when=when)


@needs_redis
def test_a_batch_the_store_refused_stays_in_redis_and_is_folded_once_later(
    counters: RedisCounters, store: SqlStore
) -> None:
    _flush_known(counters)
    flaky = _DownStore(store)
    with pytest.raises(StoreUnavailable):
        counters.fold_into(flaky)  # type: ignore[arg-type]
    assert store.get_rule_stats("r1").hits == 5  # the rule part went in, and left Redis
    assert store.not_found_stats(include_bots=True).rows == ()
    counters.add_rule_hits([RuleHitsDelta("r1", 1, T0, T0, {int(T0): 1})])
    assert counters.fold_into(flaky) == 2  # the batch left over, and the new one
    assert store.get_rule_stats("r1").hits == 6
    assert store.not_found_stats(include_bots=True).rows[0].hits == 5
    assert store.stats_other() == 7


def test_a_redis_that_is_down_costs_flushes_not_requests(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    engine = Engine([{"from": "/a", "to": "/b"}])
    # Nothing listens on port 1.
    recorder = StatsRecorder(url, rules=engine.rules, redis="redis://127.0.0.1:1/0")
    decision = engine.resolve("GET", "/a")
    for flush in range(MAX_HELD + 3):
        recorder.hit(decision, T0 + flush)
        recorder.flush()
    report = recorder.report()
    assert (report["held"], report["dropped"]) == (MAX_HELD, 3)
    assert report["folded_at"] is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"redis": "redis://127.0.0.1:6379/0", "db": "sqlite:///x.db"}, "give --stats too"),
        ({"redis": "http://127.0.0.1:6379", "stats": True, "db": "sqlite:///x.db"}, "not a Redis"),
        (
            {"redis": "redis://h", "stats": True, "db": "sqlite:///x.db", "stats_fold_interval": 0},
            "more than 0 seconds",
        ),
    ],
    ids=["without-stats", "not-a-redis-url", "zero-fold-interval"],
)
def test_redis_settings_that_cannot_work_are_refused(flags: dict[str, Any], message: str) -> None:
    from waypost.server.config import Settings
    from waypost.server.run import check_serve_settings

    with pytest.raises(SettingsError, match=message):
        check_serve_settings(Settings(**flags))


@needs_redis
def test_two_servers_through_redis_add_up_in_the_store(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    (rule_id,) = stored_rules(url, [{"from": "/old-page", "to": "/new-page"}])
    flags = ("--stats", "--stats-interval", "0.3", "--redis", REDIS_URL)
    servers = [Server(url, *flags), Server(url, *flags, "--workers", "2")]
    try:
        with httpx.Client() as client:
            for server in servers:
                for _ in range(7):
                    assert client.get(server.base + "/old-page").status_code == 301
                assert client.get(server.base + "/missing").status_code == 404
    finally:
        for server in servers:
            server.stop()  # each flushes to Redis, then folds what Redis holds
    store = open_store(url)
    try:
        assert store.get_rule_stats(rule_id).hits == 14
        assert store.not_found_stats(include_bots=True).rows[0].hits == 2
    finally:
        prefix = open_redis_counters(REDIS_URL, store.location)
        assert list(prefix._client.scan_iter(match=prefix.prefix + "*")) == []
        prefix.close()
        store.close()


def test_a_server_whose_redis_is_down_answers_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'waypost.db'}"
    stored_rules(url, [{"from": "/old-page", "to": "/new-page"}])
    server = Server(url, "--stats", "--stats-interval", "0.2", "--redis", "redis://127.0.0.1:1/0")
    try:
        with httpx.Client() as client:
            for _ in range(5):
                assert client.get(server.base + "/old-page").status_code == 301
            held = "0"
            for _ in range(50):
                metrics = client.get(server.base + "/_waypost/metrics").text
                found = re.search(r"^waypost_stats_batches_held (\S+)$", metrics, re.M)
                held = found[1] if found else "0"
                if float(held) >= 1:
                    break
                time.sleep(0.1)
            assert float(held) >= 1
            assert client.get(server.base + "/old-page").status_code == 301
    finally:
        server.stop()
