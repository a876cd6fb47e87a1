"""``enabled: false`` keeps a rule but switches it off, and ``note`` is for people: what the
engine, the checker and the exporters make of them."""

from __future__ import annotations

import pytest

from waypost import Engine
from waypost.exceptions import RulesError
from waypost.tools.check import check_rules
from waypost.tools.formats import export_rules


def test_a_rule_switched_off_answers_nothing_and_shadows_nothing() -> None:
    engine = Engine(
        [
            {"from": "/a", "to": "/off", "enabled": False},
            {"from": "/a", "to": "/on"},  # no duplicate of the rule that is off
            {"from": "/b/<path:rest>", "to": "/x/{rest}", "enabled": False},
            {"from": "/c", "to": "/d", "enabled": True, "note": "moved in 2024"},
        ]
    )
    assert len(engine.rules) == 4  # kept, in place
    assert [r.enabled for r in engine.rules] == [False, True, False, True]
    assert engine.resolve("GET", "/a").location == "/on"
    assert engine.resolve("GET", "/b/1").action == "pass"
    assert engine.resolve("GET", "/c").location == "/d"
    assert all(step.rule.enabled for step in engine.explain("GET", "/a").steps)


def test_a_guard_switched_off_guards_nothing() -> None:
    rules = [{"from": "/admin/<path:rest>", "require": "staff", "enabled": False}]
    engine = Engine(rules, guards={"staff": lambda request: None})
    assert engine.resolve("GET", "/admin/x").action == "pass"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("enabled", "no", "enabled must be true or false"),
        ("note", 3, "a note is text"),
        ("note", "x" * 2001, "a note is text of at most 2000 characters"),
    ],
    ids=["enabled-text", "note-number", "note-long"],
)
def test_bad_values_are_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        Engine([{"from": "/a", "to": "/b", key: value}])


def test_check_skips_a_rule_switched_off() -> None:
    loop = [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a", "enabled": False}]
    assert not [f for f in check_rules(Engine(loop)) if f.kind == "loop"]
    on = [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}]
    assert [f for f in check_rules(Engine(on)) if f.kind == "loop"]


@pytest.mark.parametrize("format", ["netlify", "nginx", "apache", "vercel", "cloudflare", "csv"])
def test_a_peer_export_leaves_a_rule_switched_off_out_and_says_so(format: str) -> None:
    rules = [
        {"from": "/a", "to": "/b", "note": "kept for old links"},
        {"from": "/c", "to": "/d", "enabled": False},
        {"from": "/e", "to": "/f"},
    ]
    result = export_rules(format, rules, host="example.com")
    assert "/d" not in result.text and "/b" in result.text and "/f" in result.text
    assert "kept for old links" not in result.text
    assert [(u.index, u.reason) for u in result.unsupported] == [
        (1, "switched off (enabled: false): left out")
    ]
    assert result.exported == 2


def test_waypost_yaml_keeps_both() -> None:
    rules = [{"from": "/c", "to": "/d", "enabled": False, "note": "why"}]
    text = export_rules("yaml", rules).text
    assert "enabled: false" in text and "note: why" in text


def test_a_peer_export_says_how_it_writes_trailing_slash_redirect() -> None:
    rules = [{"from": "/docs/", "to": "/manual/", "trailing_slash": "redirect"}]
    result = export_rules("netlify", rules)
    assert result.exported == 1
    assert [n.index for n in result.notes] == [0]
    assert "written as ignore" in result.notes[0].message
