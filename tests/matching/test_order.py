"""Where file order and specificity disagree (matching/_order.py)."""

from __future__ import annotations

from typing import Any

from waypost.matching._order import order_conflicts
from waypost.rules.load import rules_from_mappings


def _conflicts(*rules: dict[str, Any]) -> list[str]:
    ruleset, errors = rules_from_mappings(
        list(rules), defaults={"order": "first_match"}, pack_rules=False
    )
    assert not errors
    return [conflict.describe() for conflict in order_conflicts(ruleset.rules)]


def test_a_wide_pattern_before_a_narrow_one_is_a_conflict() -> None:
    assert _conflicts(
        {"from": "/splat/<path:a>", "to": "/x"},
        {"from": "/splat/foo/<path:b>", "to": "/y"},
    ) == [
        "'/splat/foo/wp/sample': rules[0] ('/splat/<path:a>') in file order, "
        "rules[1] ('/splat/foo/<path:b>') by specificity"
    ]


def test_a_pattern_before_an_exact_path_it_matches_is_a_conflict() -> None:
    assert len(_conflicts({"from": "/a/<x>", "to": "/x"}, {"from": "/a/b", "to": "/y"})) == 1


def test_rules_in_priority_order_or_apart_are_not() -> None:
    assert not _conflicts(
        {"from": "/splat/foo/<path:b>", "to": "/y"},
        {"from": "/splat/<path:a>", "to": "/x"},
        {"from": "/other", "to": "/z"},
    )


def test_a_rule_with_conditions_does_not_decide_alone() -> None:
    # In file order the pattern (for ?v=1) is tried before the exact rule; by specificity the
    # exact rule comes first and decides alone: with ?v=1 the orders disagree.
    found = _conflicts(
        {"from": "/a/<x>", "to": "/p", "when": {"query": {"v": "1"}}},
        {"from": "/a/b", "to": "/y"},
    )
    assert len(found) == 1
    # Same rule tried first in both orders, conditions or not: no conflict.
    assert not _conflicts(
        {"from": "/a/b", "to": "/p", "when": {"query": {"v": "1"}}},
        {"from": "/a/<x>", "to": "/y"},
    )
