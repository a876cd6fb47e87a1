"""waypost.decision: a Decision, made by the fast make_decision() or by the constructor alike; its
dictionary form; and the trace explain() gives, rendered for people."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from typing import Any

import pytest

from waypost.decision import Decision, make_decision
from waypost.rules.model import Pass, Rule


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": "pass"},
        {"action": "redirect", "status": 301, "location": "/x"},
        {"action": "rewrite", "path": "/p", "query": "a=1", "headers": (("X-A", "1"),)},
        {"action": "respond", "status": 410, "headers": (("A", "b"),), "body": "gone"},
    ],
    ids=["pass", "redirect", "rewrite", "respond"],
)
def test_make_decision_is_a_plain_decision(kwargs: dict[str, Any]) -> None:
    rule = Rule("/a", Pass(), 0)
    slow = Decision(**kwargs, rule=rule)
    fast = make_decision(
        slow.action,
        slow.status,
        slow.location,
        slow.path,
        slow.query,
        slow.headers,
        slow.body,
        rule,
    )
    assert type(fast) is Decision
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert [getattr(fast, f.name) for f in fields(Decision)] == [
        getattr(slow, f.name) for f in fields(Decision)
    ]
    with pytest.raises(FrozenInstanceError):
        fast.location = "/elsewhere"  # type: ignore[misc]


def test_a_lazy_decision_reads_its_rule_when_asked() -> None:
    rules = (Rule("/a", Pass(), 0), Rule("/b", Pass(), 1))
    lazy = make_decision("redirect", 302, "/x", None, None, (), None, None, (rules, 1, None))
    assert lazy.rule is rules[1]
    assert lazy == Decision("redirect", 302, location="/x", rule=rules[1])
