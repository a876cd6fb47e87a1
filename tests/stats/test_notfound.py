"""waypost.stats.notfound: 404s aggregated by path in bounded memory, drained as increments."""

from __future__ import annotations

import random
import sys
import threading
import time
import tracemalloc
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.exceptions import SettingsError
from waypost.stats.notfound import NotFoundDelta, NotFoundDrain, NotFoundLog, merge_not_found

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def paths_of(drain: NotFoundDrain) -> dict[str, NotFoundDelta]:
    keyed = {delta.path: delta for delta in drain.paths}
    assert len(keyed) == len(drain.paths)
    return keyed


def test_a_scanner_leaves_the_table_bounded_and_the_real_broken_url_on_top() -> None:
    log = NotFoundLog(capacity=1000)
    bits = random.Random(16).getrandbits
    real, sent = "/old/pricing.html", 0
    for n in range(1_000_000):
        log.record(f"/{bits(64):x}", "", None, "masscan/1.3", 1e9 + n)
        if n % 200 == 0:
            log.record(real, "utm=x", "https://example.org/blog", CHROME, 1e9 + n)
            sent += 1
    drain = log.drain()
    assert len(drain.paths) <= 1000
    top = drain.paths[0]
    assert (top.path, sent) == (real, 5000)
    assert top.guaranteed <= sent <= top.count
    assert (top.first, top.last) == (1e9, 1e9 + 999_800)
    assert top.referrers == (("https://example.org/blog", sent),)
    assert drain.recorded == 1_000_000 + sent
    assert drain.other >= 1_000_000 - 1000


def test_the_memory_bound_holds_under_worst_case_traffic() -> None:
    # Every path, referrer and user agent new and past its full length, in four-byte characters;
    # drains judge bot verdicts and fill the verdict caches as they go.
    wide = "\U0001f600"
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        log = NotFoundLog(
            capacity=200,
            max_path_length=512,
            max_value_length=64,
            bot_cache_size=64,
            bot_checks_per_drain=300,
        )
        used = []
        for n in range(1_200):
            path = f"/{n}/" + wide * 600
            for v in range(log.top_values + 1):
                value = f"{v}.{n}" + wide * 100
                log.record(path, "", value, value, float(n))
            if n % 300 == 299:
                used.append(tracemalloc.get_traced_memory()[0] - start)
                log.drain()
        used.append(tracemalloc.get_traced_memory()[0] - start)
    finally:
        tracemalloc.stop()
    assert max(used) <= log.memory_bound


def test_the_memory_bound_is_not_loose() -> None:
    # The figure documented is the table's real worst case, not a number far above it.
    wide = "\U0001f600"
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        log = NotFoundLog(capacity=300)
        for n in range(300):
            for v in range(log.top_values):
                value = f"{v}.{n}" + wide * 300
                log.record(f"/{n}/" + wide * 600, "", value, value, float(n))
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert log.memory_bound / 2 < used <= log.memory_bound


@pytest.mark.parametrize(
    ("capacity", "figure"),
    [(1000, 17_886_592), (100, 4_192_192)],
    ids=["default", "small"],
)
def test_the_documented_figure(capacity: int, figure: int) -> None:
    pytest.importorskip("crawlerdetect")
    assert NotFoundLog(capacity).memory_bound == figure


hits = st.tuples(
    st.one_of(st.sampled_from(["/a", "/b", "/c"]), st.integers(0, 40).map(lambda n: f"/x/{n}")),
    st.sampled_from(["", "q=1", "q=2"]),
    st.sampled_from([None, "https://a.example/", "https://b.example/"]),
    st.sampled_from([None, CHROME, GOOGLEBOT, "curl/8.5.0"]),
    st.floats(0, 1e6),
)
streams = st.lists(hits, max_size=300)
Hit = tuple[str, str, str | None, str | None, float]


@given(streams, st.integers(1, 15))
def test_counts_bound_the_true_counts_and_add_up(stream: list[Hit], capacity: int) -> None:
    log = NotFoundLog(capacity)
    for hit in stream:
        log.record(*hit)
    drain = log.drain()
    true = Counter(path for path, *_ in stream)
    assert len(drain.paths) <= capacity
    for delta in drain.paths:
        assert delta.guaranteed <= true[delta.path] <= delta.count
    assert drain.recorded == len(stream)
    assert log.drain() == NotFoundDrain()


def exact(stream: list[Hit], keep_query: bool = False) -> dict[str, tuple[int, float, float]]:
    out: dict[str, list[float]] = {}
    for path, query, _, _, when in stream:
        out.setdefault(f"{path}?{query}" if keep_query and query else path, []).append(when)
    return {path: (len(times), min(times), max(times)) for path, times in out.items()}


@given(streams, st.booleans())
def test_with_room_for_every_path_the_counts_are_exact(stream: list[Hit], keep_query: bool) -> None:
    log = NotFoundLog(200, keep_query=keep_query)
    for hit in stream:
        log.record(*hit)
    drain = log.drain()
    got = {d.path: (d.count, d.first, d.last) for d in drain.paths}
    assert got == exact(stream, keep_query)
    assert all(delta.error == 0 for delta in drain.paths)


@settings(max_examples=50)
@given(streams, st.lists(st.booleans(), min_size=300, max_size=300))
def test_two_logs_merged_equal_one(stream: list[Hit], sides: list[bool]) -> None:
    one, left, right = NotFoundLog(200), NotFoundLog(200), NotFoundLog(200)
    for hit, side in zip(stream, sides, strict=False):
        one.record(*hit)
        (left if side else right).record(*hit)
    merged = paths_of(merge_not_found(left.drain(), right.drain()))
    whole = paths_of(one.drain())
    assert merged.keys() == whole.keys()
    for path, delta in whole.items():
        other = merged[path]
        assert (other.count, other.error, other.first, other.last) == (
            delta.count,
            delta.error,
            delta.first,
            delta.last,
        )
        # With at most three distinct values each, the top fives are exact on both sides.
        assert dict(other.referrers) == dict(delta.referrers)
        assert dict(other.user_agents) == dict(delta.user_agents)
        assert (other.bot_hits, other.human_hits) == (delta.bot_hits, delta.human_hits)


@pytest.mark.parametrize(
    ("keep_query", "path", "query", "key"),
    [
        (False, "/a", "x=1", "/a"),
        (True, "/a", "x=1", "/a?x=1"),
        (True, "/a", "", "/a"),
    ],
    ids=["dropped", "kept", "kept-empty"],
)
def test_the_query(keep_query: bool, path: str, query: str, key: str) -> None:
    log = NotFoundLog(keep_query=keep_query)
    log.record(path, query, None, None, 0.0)
    assert [delta.path for delta in log.drain().paths] == [key]


def test_long_values_are_cut() -> None:
    log = NotFoundLog(max_path_length=10, max_value_length=8)
    for suffix in "xy":
        log.record("/0123456789" + suffix, "", "https://long.example/", "curl/8.5.0 long", 1.0)
    (delta,) = log.drain().paths
    assert (delta.path, delta.count) == ("/012345678", 2)
    assert delta.referrers == (("https://", 2),)
    assert delta.user_agents == (("curl/8.5", 2),)


def test_noise_is_counted_as_ignored_and_nothing_else() -> None:
    log = NotFoundLog(noise=["/favicon.ico", "*.map"])
    for path in ["/favicon.ico", "/a.js.map", "/real", "/favicon.ico"]:
        log.record(path, "", None, None, 0.0)
    drain = log.drain()
    assert ([d.path for d in drain.paths], drain.other, drain.ignored) == (["/real"], 0, 3)


def test_top_referrers_and_user_agents() -> None:
    log = NotFoundLog(top_values=2)
    for referrer, count in [("https://a/", 5), ("https://b/", 3), ("https://c/", 1)]:
        for _ in range(count):
            log.record("/p", "", referrer, CHROME, 0.0)
    log.record("/p", "", None, None, 0.0)
    (delta,) = log.drain().paths
    # c came last and took b's counter: Space-Saving's upper bound, 3 + 1.
    assert delta.referrers == (("https://a/", 5), ("https://c/", 4))
    assert delta.user_agents == ((CHROME, 9),)


@pytest.mark.parametrize(
    ("agents", "bot_hits", "human_hits", "is_bot"),
    [
        ([GOOGLEBOT] * 3 + [CHROME], 3, 1, True),
        ([GOOGLEBOT] + [CHROME] * 3, 1, 3, False),
        ([GOOGLEBOT, CHROME], 1, 1, False),
        (["curl/8.5.0", None, None], 1, 0, True),
        ([None, ""], 0, 0, None),
    ],
    ids=["mostly-bots", "mostly-people", "even", "curl-and-no-agent", "no-agent"],
)
def test_the_bot_flag(
    agents: list[str | None], bot_hits: int, human_hits: int, is_bot: bool | None
) -> None:
    pytest.importorskip("crawlerdetect")
    log = NotFoundLog()
    assert log.bots_known
    for agent in agents:
        log.record("/p", "", None, agent, 0.0)
    (delta,) = log.drain().paths
    assert (delta.bot_hits, delta.human_hits, delta.is_bot) == (bot_hits, human_hits, is_bot)


def test_without_crawlerdetect_the_bot_flag_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crawlerdetect", None)  # makes the import fail
    log = NotFoundLog()
    assert not log.bots_known
    log.record("/p", "", None, GOOGLEBOT, 0.0)
    (delta,) = log.drain().paths
    assert (delta.bot_hits, delta.human_hits, delta.is_bot) == (0, 0, None)
    assert delta.user_agents == ((GOOGLEBOT, 1),)


def test_a_drain_judges_a_bounded_number_of_new_user_agents() -> None:
    pytest.importorskip("crawlerdetect")
    log = NotFoundLog(bot_checks_per_drain=2)
    for n in range(5):
        log.record(f"/{n}", "", None, f"{GOOGLEBOT} build/{n}", float(n))
    assert sum(delta.bot_hits for delta in log.drain().paths) == 2
    for n in range(5):
        log.record(f"/{n}", "", None, f"{GOOGLEBOT} build/{n}", float(n))
    # The two judged before come from the cache, two more are judged now.
    assert sum(delta.bot_hits for delta in log.drain().paths) == 4


def test_the_request_path_runs_no_bot_pattern() -> None:
    # crawlerdetect takes milliseconds on a long unknown user agent; recording must not.
    log = NotFoundLog()
    agents = ["".join(random.choices("abcdefghij", k=256)) for _ in range(200)]
    started = time.perf_counter()
    for n, agent in enumerate(agents):
        log.record(f"/{n}", "", None, agent, 0.0)
    assert time.perf_counter() - started < 0.1


def test_recording_in_two_threads_while_a_third_drains_loses_nothing() -> None:
    log = NotFoundLog(capacity=50)
    per_thread = 50_000
    start = threading.Barrier(3)

    def work(seed: int) -> None:
        bits = random.Random(seed).getrandbits
        start.wait()
        for n in range(per_thread):
            log.record(f"/{bits(6)}", "", None, CHROME, float(n))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    start.wait()
    drains = []
    while any(thread.is_alive() for thread in threads):
        drains.append(log.drain())
        time.sleep(0.001)
    for thread in threads:
        thread.join()
    drains.append(log.drain())
    assert merge_not_found(*drains).recorded == 2 * per_thread


def test_deltas_of_different_paths_do_not_merge() -> None:
    a, b = NotFoundDelta("/a", 1, 0, 0.0, 0.0), NotFoundDelta("/b", 1, 0, 0.0, 0.0)
    with pytest.raises(ValueError, match="cannot merge the 404s of '/a' with those of '/b'"):
        a.merge(b)


def test_merged_top_values_keep_the_largest() -> None:
    a = NotFoundDelta("/a", 9, 1, 5.0, 6.0, (("r1", 5), ("r2", 4)), (("u", 9),), 0, 9)
    b = NotFoundDelta("/a", 4, 0, 1.0, 3.0, (("r3", 3), ("r2", 1)), (("v", 4),), 4, 0)
    assert a.merge(b, top_values=2) == NotFoundDelta(
        "/a", 13, 1, 1.0, 6.0, (("r1", 5), ("r2", 5)), (("u", 9), ("v", 4)), 4, 9
    )
    assert a.merge(b).referrers == (("r1", 5), ("r2", 5), ("r3", 3))
    drain = merge_not_found(NotFoundDrain((a,), 2, 1), NotFoundDrain((b,), 3, 0))
    assert (drain.other, drain.ignored, drain.recorded) == (5, 1, 5 + 12)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("capacity", 0, "capacity must be at least 1, not 0"),
        ("top_values", 0, "top_values must be at least 1, not 0"),
        ("max_path_length", 0, "max_path_length must be at least 1, not 0"),
        ("max_value_length", -1, "max_value_length must be at least 1, not -1"),
        ("bot_cache_size", -1, "bot_cache_size cannot be negative, not -1"),
        ("bot_checks_per_drain", -5, "bot_checks_per_drain cannot be negative, not -5"),
    ],
    ids=lambda value: str(value),
)
def test_unusable_settings_are_refused(option: str, value: int, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        NotFoundLog(**{option: value})  # type: ignore[arg-type]


def test_repr_reads_like_the_constructor() -> None:
    assert repr(NotFoundLog(10, noise=["/x"])) == (
        "NotFoundLog(10, keep_query=False, noise=['/x'], top_values=5, max_path_length=512, "
        "max_value_length=256, bot_cache_size=1024, bot_checks_per_drain=50)"
    )
