"""waypost.decision: a Decision, made by the fast make_decision() or by the constructor alike; its
dictionary form; and the trace explain() gives, rendered for people."""

from __future__ import annotations

import copy
from dataclasses import FrozenInstanceError, fields
from typing import Any

import pytest

from waypost.decision import NO_MATCH, Decision, Step, Trace, make_decision, rule_options
from waypost.rules.model import Pass, Rule, RuleOptions


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


RULE = Rule("/a/<x>", Pass(), 0, name="first", file="rules.yaml", line=3)


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            Decision("redirect", 301, location="/b", rule=RULE, vary=("Accept",)),
            {"action": "redirect", "status": 301, "location": "/b", "path": None, "query": None,
             "headers": {}, "body": None, "rule": {"name": "first", "source": "rules.yaml:3"},
             "vary": ["Accept"]},
        ),
        (
            Decision("rewrite", path="/p", query="a=1", headers=(("X-A", "1"),)),
            {"action": "rewrite", "status": None, "location": None, "path": "/p", "query": "a=1",
             "headers": {"X-A": "1"}, "body": None, "rule": None, "vary": []},
        ),
        (
            Decision("respond", 410, body="gone"),
            {"action": "respond", "status": 410, "location": None, "path": None, "query": None,
             "headers": {}, "body": "gone", "rule": None, "vary": []},
        ),
    ],
    ids=["redirect-with-rule", "rewrite", "respond"],
)  # fmt: skip
def test_to_dict(decision: Decision, expected: dict[str, Any]) -> None:
    assert decision.to_dict() == expected


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            Decision("redirect", 301, location="/b", rule=RULE),
            "redirect 301 /b  [rules.yaml:3 first]",
        ),
        (Decision("rewrite", path="/p", query="a=1"), "rewrite /p?a=1"),
        (
            Decision("respond", 503, headers=(("R", "1"),), body="soon"),
            "respond 503\n  R: 1\n\nsoon",
        ),
        (Decision("pass"), "pass (no rule applies)"),
    ],
    ids=["redirect", "rewrite", "respond", "pass"],
)
def test_describe(decision: Decision, expected: str) -> None:
    assert decision.describe() == expected


def test_trace_render_lists_every_step_then_the_decision() -> None:
    other = Rule("/a/<int:n>", Pass(), 1, file="rules.yaml", line=9)
    decision = Decision("redirect", 302, location="/b/5", rule=other)
    trace = Trace(
        "GET",
        "/a/5",
        decision,
        (
            Step(RULE, {"x": "5"}, "skipped", "condition failed: host"),
            Step(other, {"n": 5}, "applied"),
        ),
        rule_count=2,
    )
    assert trace.render() == (
        "GET /a/5  (2 rules loaded)\n"
        "  1. rules.yaml:3  from '/a/<x>'  [first]  (x='5')\n"
        "     skipped: condition failed: host\n"
        "  2. rules.yaml:9  from '/a/<int:n>'  (n=5)\n"
        "     applied\n"
        "=> redirect 302 /b/5"
    )
    assert trace.to_dict()["steps"][1] == {
        "rule": {"name": None, "source": "rules.yaml:9", "from": "/a/<int:n>"},
        "values": {"n": "5"},
        "outcome": "applied",
        "reason": "",
    }


@pytest.mark.parametrize(
    ("decision", "last_line"),
    [
        (Decision("rewrite", path="/p", query="q=1"), "=> rewrite /p?q=1"),
        (Decision("respond", 410), "=> respond 410"),
        (NO_MATCH, "=> pass (no rule applies)"),
    ],
    ids=["rewrite", "respond", "no-match"],
)
def test_trace_render_without_steps(decision: Decision, last_line: str) -> None:
    assert Trace("GET", "/x", decision).render().splitlines() == [
        "GET /x  (0 rules loaded)",
        "  no rule matches this path",
        last_line,
    ]


def test_rule_options_reads_a_packed_rule_without_looking_it_up() -> None:
    rules = (Rule("/a", Pass(), 0), Rule("/b", Pass(), 1, options=RuleOptions(query="drop")))
    meta = rules[1].meta
    lazy = make_decision("redirect", 301, "/x", None, None, (), None, None, (rules, 1, meta))
    assert rule_options(lazy) is meta.options
    assert rule_options(Decision("redirect", 301, location="/x", rule=rules[1])) == meta.options
    assert rule_options(NO_MATCH) is None


def test_a_copy_holds_the_rule_not_the_rule_set() -> None:
    rules = (Rule("/a", Pass(), 0), Rule("/b", Pass(), 1))
    lazy = make_decision("redirect", 301, "/x", None, None, (), None, None, (rules, 1, None))
    copied = copy.copy(lazy)
    assert copied == lazy and copied.rule is rules[1] and copied._lazy is None
