"""waypost.stats._spacesaving: Space-Saving's guarantees, checked against exact counts."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.stats._spacesaving import SmallTop, SpaceSaving

# Skewed streams: a few heavy keys among many light ones, as 404s come.
keys = st.one_of(st.sampled_from(["/a", "/b", "/c"]), st.integers(0, 60).map(lambda n: f"/{n}"))
streams = st.lists(keys, max_size=400)


@given(streams, st.integers(1, 20))
def test_counts_bound_the_true_counts(stream: list[str], capacity: int) -> None:
    table = SpaceSaving(capacity)
    for key in stream:
        table.add(key)
    true = Counter(stream)
    items = list(table.items())
    assert len(items) == len(table) <= capacity
    for key, count, error in items:
        assert count - error <= true[key] <= count
        assert table.count(key) == (count, error)
    # Hits add up: every one is counted once, by a tracked key or as unattributed.
    assert table.unattributed + sum(count - error for _, count, error in items) == len(stream)
    assert sum(count for _, count, _ in items) == len(stream)
    # Any key seen more than once in `capacity` hits is tracked.
    for key, n in true.items():
        if n > len(stream) / capacity:
            assert key in table
    assert [count for _, count, _ in items] == sorted((c for _, c, _ in items), reverse=True)


@given(streams)
def test_with_room_for_every_key_the_counts_are_exact(stream: list[str]) -> None:
    table = SpaceSaving(100)
    for key in stream:
        assert table.add(key) is None
    assert {key: (count, error) for key, count, error in table.items()} == {
        key: (n, 0) for key, n in Counter(stream).items()
    }
    assert table.unattributed == 0


@pytest.mark.parametrize(
    ("stream", "capacity", "evicted", "expected"),
    [
        (["/a", "/b"], 1, [None, "/a"], [("/b", 2, 1)]),
        (["/a", "/a", "/b", "/c"], 2, [None, None, None, "/b"], [("/a", 2, 0), ("/c", 2, 1)]),
        (
            ["/a", "/b", "/a", "/c", "/a"],
            2,
            [None, None, None, "/b", None],
            [("/a", 3, 0), ("/c", 2, 1)],
        ),
    ],
    ids=["one-counter", "the-least-goes", "the-heavy-stays"],
)
def test_a_new_key_replaces_a_least_counted_one(
    stream: list[str],
    capacity: int,
    evicted: list[str | None],
    expected: list[tuple[str, int, int]],
) -> None:
    table = SpaceSaving(capacity)
    assert [table.add(key) for key in stream] == evicted
    assert list(table.items()) == expected


def test_a_table_needs_a_counter() -> None:
    with pytest.raises(ValueError, match="at least one counter, not 0"):
        SpaceSaving(0)


def test_scanning_distinct_keys_stays_linear() -> None:
    # Every key new: each add replaces a least-counted key. popitem() keeps that O(1); taking the
    # oldest key of a bucket would make this quadratic and time out.
    table = SpaceSaving(5000)
    for n in range(200_000):
        table.add(str(n))
    assert len(table) == 5000
    assert table.unattributed + sum(c - e for _, c, e in table.items()) == 200_000


@given(st.lists(st.sampled_from("abcdefgh"), max_size=100), st.integers(1, 5))
def test_small_top_counts_are_upper_bounds(stream: list[str], capacity: int) -> None:
    top = SmallTop()
    for value in stream:
        top.add(value, capacity)
    true = Counter(stream)
    pairs = top.top()
    assert len(pairs) <= capacity
    assert sum(n for _, n in pairs) == len(stream)
    for value, n in pairs:
        assert n >= true[value]
    assert [n for _, n in pairs] == sorted((n for _, n in pairs), reverse=True)


def test_reprs() -> None:
    table = SpaceSaving(3)
    table.add("/a")
    assert repr(table) == "SpaceSaving(3)  # 1 keys tracked"
    top = SmallTop()
    top.add("x", 2)
    assert repr(top) == "SmallTop()  # {'x': 1}"
