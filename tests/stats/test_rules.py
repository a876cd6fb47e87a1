"""waypost.stats.rules: per-rule hits counted without a lock, drained as increments that add up."""

from __future__ import annotations

import sys
import threading
import tracemalloc
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.stats.rules import (
    PositionDelta,
    PositionHits,
    RuleHitDelta,
    RuleHits,
    merge_rule_deltas,
)

H = 3600


def exact(stream: list[tuple[str, float]]) -> dict[str, RuleHitDelta]:
    """The deltas the stream should give, counted the obvious way."""
    out: dict[str, RuleHitDelta] = {}
    for key in {key for key, _ in stream}:
        times = [when for k, when in stream if k == key]
        hours = Counter(int(when // H) * H for when in times)
        out[key] = RuleHitDelta(key, len(times), min(times), max(times), dict(hours))
    return out


def by_key(deltas: tuple[RuleHitDelta, ...]) -> dict[str, RuleHitDelta]:
    keyed = {delta.key: delta for delta in deltas}
    assert len(keyed) == len(deltas), "a key appears twice in one drain"
    return keyed


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ([], {}),
        ([("a", 10.0)], {"a": RuleHitDelta("a", 1, 10.0, 10.0, {0: 1})}),
        (
            [("a", 3599.5), ("a", 3600.0), ("a", 7300.0)],
            {"a": RuleHitDelta("a", 3, 3599.5, 7300.0, {0: 1, 3600: 1, 7200: 1})},
        ),
        (
            [("r:1", 5000.0), ("r:1", 4000.0), ("r:1", 6000.0), ("r:1", 4500.0)],
            {"r:1": RuleHitDelta("r:1", 4, 5000.0, 4500.0, {3600: 4})},
        ),
        (
            [("rules.yaml:3", 1.0), ("17", 2.0), ("rules.yaml:3", 3.0)],
            {
                "rules.yaml:3": RuleHitDelta("rules.yaml:3", 2, 1.0, 3.0, {0: 2}),
                "17": RuleHitDelta("17", 1, 2.0, 2.0, {0: 1}),
            },
        ),
        (
            [("a", 1_765_000_000.25)] * 3,
            {"a": RuleHitDelta("a", 3, 1_765_000_000.25, 1_765_000_000.25, {1764997200: 3})},
        ),
    ],
    ids=["nothing", "one-hit", "hour-edges", "times-as-recorded", "two-keys", "real-epoch"],
)
def test_a_drain_counts_hits_first_last_and_hours(
    stream: list[tuple[str, float]], expected: dict[str, RuleHitDelta]
) -> None:
    hits = RuleHits()
    for key, when in stream:
        hits.record(key, when)
    assert by_key(hits.drain()) == expected
    assert hits.drain() == ()


# Times as a clock gives them: in order.
streams = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "file.yaml:12"]), st.floats(0, 10 * H)),
    max_size=200,
).map(lambda stream: sorted(stream, key=lambda hit: hit[1]))


@given(streams, st.lists(st.integers(0, 200), max_size=5))
def test_drains_merged_equal_the_whole_stream(
    stream: list[tuple[str, float]], cuts: list[int]
) -> None:
    hits = RuleHits()
    drains = []
    for i, (key, when) in enumerate(stream):
        if i in cuts:
            drains.append(hits.drain())
        hits.record(key, when)
    drains.append(hits.drain())
    assert by_key(merge_rule_deltas(*drains)) == exact(stream)


@given(streams, st.lists(st.booleans(), min_size=200, max_size=200))
def test_two_recorders_merged_equal_one(stream: list[tuple[str, float]], sides: list[bool]) -> None:
    one, left, right = RuleHits(), RuleHits(), RuleHits()
    for (key, when), side in zip(stream, sides, strict=False):
        one.record(key, when)
        (left if side else right).record(key, when)
    assert by_key(merge_rule_deltas(left.drain(), right.drain())) == by_key(one.drain())


@given(streams, streams, streams)
def test_merging_is_associative_and_commutative(
    a: list[tuple[str, float]], b: list[tuple[str, float]], c: list[tuple[str, float]]
) -> None:
    da, db, dc = (tuple(exact(s).values()) for s in (a, b, c))
    left = merge_rule_deltas(merge_rule_deltas(da, db), dc)
    right = merge_rule_deltas(dc, merge_rule_deltas(db, da))
    assert by_key(left) == by_key(right) == exact(a + b + c)


def test_deltas_of_different_rules_do_not_merge() -> None:
    with pytest.raises(ValueError, match="cannot merge the hits of 'a' with those of 'b'"):
        RuleHitDelta("a", 1, 0.0, 0.0, {0: 1}).merge(RuleHitDelta("b", 1, 0.0, 0.0, {0: 1}))


def test_folded_hits_leave_no_log_behind() -> None:
    # The log holds one fold interval's hits; once folded, a key costs its tallies only.
    hits = RuleHits()
    hits.record("rule", 100.0)
    assert hits.fold() == 1
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            for i in range(10_000):
                hits.record("rule", 100.0 + i % 3000)
            assert hits.fold() == 10_000
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 100,000 hits logged take about 1.6 MB; nothing of them stays.
    assert grown < 5_000
    assert repr(hits) == "RuleHits()  # 0 hits unfolded, 1 keys pending"
    assert by_key(hits.drain())["rule"] == RuleHitDelta(
        "rule", 100_001, 100.0, 100.0 + 9_999 % 3000, {0: 100_001}
    )


@pytest.mark.parametrize("switch", [0.005, 1e-6], ids=["default-switch", "switch-every-bytecode"])
def test_two_threads_recording_while_a_third_drains_lose_no_hit(switch: float) -> None:
    # The shortest switch interval makes the interpreter change threads inside record() as
    # often as it can, so drains land between every two of its steps.
    old = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    try:
        _record_in_two_threads_and_drain()
    finally:
        sys.setswitchinterval(old)


def _record_in_two_threads_and_drain() -> None:
    hits = RuleHits()
    per_thread, keys = 100_000, [f"rule-{i}" for i in range(50)]
    start = threading.Barrier(3)

    def work(offset: int) -> None:
        start.wait()
        for i in range(per_thread):
            hits.record(keys[(i + offset) % len(keys)], float(i))

    threads = [threading.Thread(target=work, args=(n,)) for n in (0, 7)]
    for thread in threads:
        thread.start()
    start.wait()
    drains = []
    while any(thread.is_alive() for thread in threads):
        drains.append(hits.drain())
    for thread in threads:
        thread.join()
    # Two more drains: the last hits, then any counted late into the table retired before.
    drains += [hits.drain(), hits.drain()]
    merged = by_key(merge_rule_deltas(*drains))
    assert sum(delta.hits for delta in merged.values()) == 2 * per_thread
    assert all(delta.hits == sum(delta.hours.values()) for delta in merged.values())
    assert len(drains) > 3, "the drains did not overlap the recording"


def test_hits_appended_to_a_log_being_folded_come_with_a_later_drain() -> None:
    # What a thread inside record() does: it holds the log it read, and appends to it after the
    # fold swapped it out. Here the test holds it.
    hits = RuleHits()
    hits.record("a", 10.0)
    held = hits._log
    assert by_key(hits.drain()) == {"a": RuleHitDelta("a", 1, 10.0, 10.0, {0: 1})}
    for key, when in [("a", 20.0), ("b", 4000.0)]:  # a key the drain read, and a new one
        held.whens.append(when)
        held.keys.append(key)
    hits.record("a", 30.0)
    late = by_key(hits.drain())
    assert late["a"] == RuleHitDelta("a", 2, 20.0, 30.0, {0: 2})
    assert late["b"] == RuleHitDelta("b", 1, 4000.0, 4000.0, {3600: 1})
    assert hits.drain() == ()
    assert len(hits._retired) == 1
    held.whens.append(50.0)
    held.keys.append("c")
    del held
    assert by_key(hits.drain()) == {"c": RuleHitDelta("c", 1, 50.0, 50.0, {0: 1})}
    assert hits._retired == []


def test_a_log_nobody_holds_is_read_once() -> None:
    hits = RuleHits()
    hits.record("a", 10.0)
    hits.drain()
    assert hits._retired == []


def test_repr() -> None:
    hits = RuleHits()
    hits.record("a", 0.0)
    assert repr(hits) == "RuleHits()  # 1 hits unfolded, 0 keys pending"


# -- by position ------------------------------------------------------------------------------


positioned = st.lists(st.tuples(st.integers(0, 9), st.floats(1, 10 * H)), max_size=200).map(
    lambda stream: sorted(stream, key=lambda hit: hit[1])
)


@given(positioned, st.lists(st.integers(0, 200), max_size=5), st.lists(st.integers(0, 200)))
def test_positions_count_as_keys_do(
    stream: list[tuple[int, float]], cuts: list[int], folds: list[int]
) -> None:
    """PositionHits gives what RuleHits gives for the same hits, drains and folds."""
    by_position, keys = PositionHits(10), RuleHits()
    drains: list[tuple[RuleHitDelta, ...]] = []
    keyed: list[tuple[RuleHitDelta, ...]] = []
    for i, (position, when) in enumerate(stream):
        if i in cuts:
            drains.append(_as_keys(by_position.drain()))
            keyed.append(keys.drain())
        if i in folds:
            by_position.fold()
        by_position.record(position, when)
        keys.record(str(position), when)
    drains.append(_as_keys(by_position.drain()))
    keyed.append(keys.drain())
    assert [by_key(d) for d in drains] == [by_key(d) for d in keyed]
    assert by_position.pending() == 0 and by_position.drain() == []


def _as_keys(deltas: list[PositionDelta]) -> tuple[RuleHitDelta, ...]:
    return tuple(RuleHitDelta(str(d.position), d.hits, d.first, d.last, d.hours) for d in deltas)


def test_positions_keep_memory_to_arrays() -> None:
    hits = PositionHits(100_000)
    for position in range(0, 100_000, 7):
        hits.record(position, 1_765_000_000.0 + position)
    assert hits.fold() == len(range(0, 100_000, 7)) and hits.pending() == 14_286
    drained = hits.drain()
    assert drained[0] == PositionDelta(0, 1, 1_765_000_000.0, 1_765_000_000.0, {1764997200: 1})
    assert [d.position for d in drained[:3]] == [0, 7, 14]
    assert repr(hits) == "PositionHits(100000)  # 0 hits unfolded, 0 pending"


@pytest.mark.skipif(
    __import__("waypost.engine._compiled", fromlist=["FastPath"]).FastPath is None,
    reason="built without a C compiler: no compiled road counts hits",
)
def test_hits_counted_on_the_compiled_road_fold_in_with_the_recorded_ones() -> None:
    from waypost import Engine
    from waypost.rules.request import Request

    engine = Engine([{"from": "/a", "to": "/b"}, {"from": "/c/<int:n>", "to": "/d/{n}"}])
    engine.count_hits()
    for path in ("/a", "/c/1", "/c/2", "/a", "/nothing"):
        engine.resolve_counted(Request("GET", path, ""), lambda decision: None)
    hits = PositionHits(2)
    hits.record(1, 7200.0 + 5)  # one the Python road recorded, earlier in the same hour
    ((_, counter),) = engine.hit_counters()
    assert hits.add_counted(counter, 7200.0 + 30) == 4
    deltas = {d.position: d for d in hits.drain()}
    assert (deltas[0].hits, deltas[0].first, deltas[0].last) == (2, 7230.0, 7230.0)
    assert (deltas[1].hits, deltas[1].first, deltas[1].last) == (3, 7205.0, 7230.0)
    assert deltas[1].hours == {7200: 3}
    assert hits.add_counted(counter, 7300.0) == 0  # drained
