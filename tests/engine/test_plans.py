"""How a rule is applied (engine/_plans.py), without an engine: the plan each action gets, the
query a redirect carries over, the prepared fill that gives what the general build gives, the
stored redirects, and the decisions that refuse a target."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.decision import Decision, Step
from waypost.engine._plans import (
    Checked,
    PassOn,
    Plan,
    RespondWith,
    Route,
    Site,
    StoredRedirect,
    Text,
    ToTarget,
    merge_query,
    plan_for,
    prepared_format,
)
from waypost.rules.load import rules_from_mappings
from waypost.rules.model import PackedRule, Rule
from waypost.rules.target import Target

REFUSED_BODY = "Bad Request: the redirect target built from this request is not allowed.\n"
TEXT_PLAIN = (("Content-Type", "text/plain; charset=utf-8"),)
NOWHERE = Site((), None)


def rule_of(mapping: dict[str, Any], **options: Any) -> Rule:
    ruleset, errors = rules_from_mappings([mapping], **options)
    assert errors == []
    return ruleset.rules[0]


#: What fill_of() says of a plan that holds a prepared format itself.
PREPARED = "prepared"


def fill_of(plan: Plan) -> type | str:
    """What builds the plan's target: PREPARED when the plan holds a prepared format itself
    (its fill, the general build, is then the fallback), else the type of its fill."""
    assert isinstance(plan, ToTarget)
    if plan.format is not None:
        assert type(plan.fill) is Checked
        return PREPARED
    return type(plan.fill)


# -- plan_for: one plan per action, one fill per target -------------------------------------


@pytest.mark.parametrize(
    ("mapping", "prepared", "plan_type", "fill_type"),
    [
        ({"from": "/a", "to": "/b"}, True, ToTarget, Text),
        ({"from": "/a/<x>", "to": "/b/{x}"}, True, ToTarget, PREPARED),
        ({"from": "/a/<x>", "to": "/b/{x}"}, False, ToTarget, Checked),
        ({"from": "/a/<h>", "to": "https://{h}/x"}, True, ToTarget, Checked),
        ({"from": "/a/<p>", "to": "/{p}"}, True, ToTarget, Checked),
        ({"from": "/a/<x>", "to": {"route": "user"}}, True, ToTarget, Route),
        ({"from": "/a/<x>", "rewrite": "/b/{x}"}, True, ToTarget, PREPARED),
        ({"from": "/a", "rewrite": "/b"}, True, ToTarget, Text),
        ({"from": "/a", "respond": 410}, True, RespondWith, None),
        ({"from": "/a", "pass": True}, True, PassOn, None),
    ],
    ids=[
        "redirect-literal",
        "redirect-pattern-prepared",
        "redirect-pattern-for-the-trie",
        "redirect-host-from-a-value",
        "redirect-value-leads-the-path",
        "redirect-route",
        "rewrite-pattern",
        "rewrite-literal",
        "respond",
        "pass",
    ],
)
def test_plan_for_each_action_and_target(
    mapping: dict[str, Any], prepared: bool, plan_type: type[Plan], fill_type: type | str | None
) -> None:
    plan = plan_for(rule_of(mapping), prepared=prepared)
    assert type(plan) is plan_type
    if fill_type is not None:
        assert fill_of(plan) is fill_type


@pytest.mark.parametrize(
    ("extra", "conditional", "only_if_missing", "alone"),
    [
        ({}, False, False, {"all", "before"}),
        ({"only_if_missing": True}, False, True, {"all", "missing"}),
        ({"when": {"host": "a.example"}}, True, False, set()),
        ({"when": {"host": "a.example"}, "only_if_missing": True}, True, True, set()),
    ],
    ids=["plain", "waits-for-404", "conditional", "conditional-and-waits"],
)
def test_the_stages_a_rule_decides_alone_in(
    extra: dict[str, Any], conditional: bool, only_if_missing: bool, alone: set[str]
) -> None:
    plan = plan_for(rule_of({"from": "/a", "to": "/b", **extra}))
    assert (plan.conditional, plan.only_if_missing, plan.alone) == (
        conditional,
        only_if_missing,
        alone,
    )


# -- applying a plan -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "values", "query", "expected"),
    [
        ({"from": "/a", "to": "/b"}, (), "x=1", Decision("redirect", 301, location="/b?x=1")),
        (
            {"from": "/a", "to": "/b", "query": "drop"},
            (),
            "x=1",
            Decision("redirect", 301, location="/b"),
        ),
        (
            {"from": "/a/<int:n>", "to": "/b/{n}", "status": 308},
            (5,),
            "",
            Decision("redirect", 308, location="/b/5"),
        ),
        (
            {"from": "/a/<path:p>", "rewrite": "/f/{p}?z=1", "set_headers": {"X-A": "1"}},
            ("x/y",),
            "a=1",
            Decision("rewrite", path="/f/x/y", query="z=1&a=1", headers=(("X-A", "1"),)),
        ),
        (
            {"from": "/a", "respond": {"status": 503, "body": "soon", "headers": {"R": "1"}}},
            (),
            "x=1",
            Decision("respond", 503, headers=(("R", "1"),), body="soon"),
        ),
        ({"from": "/a", "pass": True}, (), "x=1", Decision("pass")),
    ],
    ids=[
        "redirect-keeps-query",
        "redirect-drops-query",
        "redirect-status",
        "rewrite",
        "respond",
        "pass",
    ],
)
def test_apply_gives_the_decision_and_one_applied_step(
    mapping: dict[str, Any], values: tuple[Any, ...], query: str, expected: Decision
) -> None:
    rule = rule_of(mapping, pack_rules=False)
    steps: list[Step] = []
    decision = plan_for(rule).apply(rule, values, query, NOWHERE, steps)
    assert decision == Decision(
        expected.action,
        expected.status,
        expected.location,
        expected.path,
        expected.query,
        expected.headers,
        expected.body,
        rule,
    )
    named = dict(zip(rule.pattern.converters, values, strict=True)) if rule.pattern else {}
    assert steps == [Step(rule, named, "applied")]
    assert plan_for(rule).apply(rule, values, query, NOWHERE, None) == decision


# -- merge_query -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "query", "expected"),
    [
        ("/b", "", "/b"),
        ("/b", "x=1", "/b?x=1"),
        ("/b?", "x=1", "/b?x=1"),
        ("/b?a=1", "x=2", "/b?a=1&x=2"),
        ("/b?a=1", "a=2&x=3", "/b?a=1&x=3"),
        ("/b?a=1", "a=2", "/b?a=1"),
        ("/b?a+b=1", "a%20b=2", "/b?a+b=1"),
        ("/b#top", "x=1", "/b?x=1#top"),
        ("/b?a=1#f", "a=9&y=2", "/b?a=1&y=2#f"),
        ("/b", "q=a b", "/b?q=a%20b"),
        ("/b", 'x="<>', "/b?x=%22%3C%3E"),
        ("/b", "q=%41&r=é", "/b?q=%41&r=%C3%A9"),
        ("/b", "q=\udcff", "/b?q=%FF"),
        ("/b", "q=\ud800", "/b?q=?"),
    ],
    ids=[
        "no-query",
        "carried-over",
        "empty-target-query",
        "appended",
        "target-param-wins",
        "all-params-taken",
        "keys-compared-decoded",
        "before-the-fragment",
        "fragment-and-own-params",
        "space-encoded",
        "quotes-and-brackets-encoded",
        "escapes-kept-non-ascii-encoded",
        "undecodable-byte-back-as-its-escape",
        "lone-surrogate-never-raises",
    ],
)
def test_merge_query(location: str, query: str, expected: str) -> None:
    assert merge_query(location, query) == expected


# -- the prepared fill gives what the general build gives ------------------------------------

PATTERN = "/a/<int:n>/<s>/<path:p>"
SEGMENT = st.text(min_size=1).filter(lambda text: "/" not in text)
PATH = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)


@pytest.mark.parametrize(
    "target",
    [
        "/b/{s}/{n}/{p}",
        "/b?s={s}&n={n}",
        "https://example.com/{p}?n={n}#{s}",
        "/b/{n}-{s}.html",
    ],
    ids=["path", "query", "absolute-with-fragment", "mixed-segment"],
)
@given(n=st.integers(min_value=0, max_value=10**12), s=SEGMENT, p=PATH)
def test_the_prepared_fill_gives_the_general_build(target: str, n: int, s: str, p: str) -> None:
    rule = rule_of({"from": PATTERN, "to": target})
    assert rule.pattern is not None
    built = rule.action.target
    assert isinstance(built, Target) and prepared_format(rule, built) is not None
    values = (n, s, p)
    general = built.build({"n": n, "s": s, "p": p}, rule.pattern.converters)
    plan = plan_for(rule)
    assert isinstance(plan, ToTarget) and plan.format is not None
    prepared = plan.apply(rule, values, "", NOWHERE, None).location
    checked = Checked(built).build(rule, values, NOWHERE, None)
    assert prepared == checked == general


# -- stored redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_mode", "query", "location"),
    [("keep", "x=1", "/new?x=1"), ("keep", "", "/new"), ("drop", "x=1", "/new")],
    ids=["keeps-query", "no-query", "drops-query"],
)
def test_a_stored_redirect_decides_from_the_store_and_looks_the_rule_up_later(
    query_mode: str, query: str, location: str
) -> None:
    ruleset, errors = rules_from_mappings(
        [{"from": "/x", "to": "/y"}, {"from": "/old", "to": "/new", "status": 302}],
        defaults={"query": query_mode},
    )
    assert errors == []
    rules = ruleset.rules
    assert isinstance(rules[1], PackedRule)
    plan = StoredRedirect(rules)
    assert (plan.conditional, plan.only_if_missing, plan.alone) == (False, False, {"all"})
    decision = plan.apply(None, (rules[1].meta, 1, "/new"), query, NOWHERE, None)
    assert decision == Decision("redirect", 302, location=location, rule=rules[1])
    assert decision.rule is rules[1]


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.example", "https://a.example/x"),
        ("evil.example", None),
        ("a.example@evil.example", None),
    ],
    ids=["allowed-host", "other-host", "userinfo-trick"],
)
def test_a_host_from_a_value_must_be_allowed(host: str, expected: str | None) -> None:
    rule = rule_of({"from": "/d/<h>", "to": "https://{h}/x"}, allowed_hosts=["a.example"])
    site = Site(("a.example",), None)
    steps: list[Step] = []
    decision = plan_for(rule).apply(rule, (host,), "", site, steps)
    if expected is not None:
        assert decision == Decision("redirect", 301, location=expected, rule=rule)
        assert [step.outcome for step in steps] == ["applied"]
        return
    assert decision == Decision("respond", 400, headers=TEXT_PLAIN, body=REFUSED_BODY, rule=rule)
    [step] = steps
    assert (step.outcome, step.values) == ("refused", {"h": host})
    assert step.reason.startswith("unsafe target: ")


def _route_to(location: str) -> Callable[[str, Mapping[str, str]], str]:
    return lambda route, values: location.format(**values)


def _broken_router(route: str, values: Mapping[str, str]) -> str:
    raise LookupError(f"no route {route}")


@pytest.mark.parametrize(
    ("routes", "status", "location", "reason"),
    [
        (_route_to("/users/{x}"), 301, "/users/5", ""),
        (None, 500, None, "route targets are resolved by the host app; use the middleware"),
        (_route_to("//evil.example/{x}"), 400, None, "not a path on this site"),
        (_broken_router, 400, None, "the app could not build route 'user': no route user"),
    ],
    ids=["built-by-the-app", "no-app", "off-site", "router-raises"],
)
def test_route_targets_are_built_by_the_app_and_checked(
    routes: Callable[[str, Mapping[str, str]], str] | None,
    status: int,
    location: str | None,
    reason: str,
) -> None:
    rule = rule_of({"from": "/u/<x>", "to": {"route": "user", "x": "{x}"}})
    steps: list[Step] = []
    decision = plan_for(rule).apply(rule, ("5",), "", Site((), routes), steps)
    assert decision.status == status
    if location is not None:
        assert decision == Decision("redirect", 301, location=location, rule=rule)
        return
    assert (decision.action, decision.headers, decision.rule) == ("respond", TEXT_PLAIN, rule)
    assert decision.body == (REFUSED_BODY if status == 400 else f"{reason}\n")
    [step] = steps
    assert step.outcome == "refused" and reason in step.reason
