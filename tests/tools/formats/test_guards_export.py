"""Guards in the format converters: Waypost's YAML reads and writes ``guards:`` (with each rule's
``require`` and ``login_url``) so a guarded file round-trips; no other format carries a guarded
rule, and none drops one silently."""

from __future__ import annotations

import pytest
import yaml

from waypost.rules.load import parse_rules
from waypost.tools.formats import EXPORTERS, export_rules, guarded_rules, parse_yaml

GUARDS = {
    "staff": {"basic": {"htpasswd": "/etc/waypost/staff.htpasswd", "realm": "Staff"}},
    "login": {"session": {"secret_env": "FLASK_SECRET_KEY"}, "login_url": "/login"},
}
RULES = [
    {"from": "/admin/<path:rest>", "require": "staff"},
    {"from": "/reports/<path:rest>", "require": ["staff", "login"], "rewrite": "/r/{rest}"},
    {"from": "/account", "to": "/me", "require": "login", "login_url": "/account-login"},
    {"from": "/old", "to": "/new"},
]


def test_yaml_writes_and_reads_guards() -> None:
    result = export_rules("yaml", RULES, None, guards=GUARDS)
    assert (result.exported, result.unsupported) == (4, [])
    document = yaml.safe_load(result.text)
    assert list(document) == ["guards", "rules"]
    assert (document["guards"], document["rules"]) == (GUARDS, RULES)
    ruleset, errors = parse_rules(result.text, format="yaml")
    assert not errors
    assert [g.name for g in ruleset.guards] == ["staff", "login"]
    assert [r.to_mapping() for r in ruleset.rules][2]["login_url"] == "/account-login"

    again = parse_yaml(result.text)
    assert (again.guards, again.rules) == (GUARDS, RULES)


def test_guarded_rules_are_found() -> None:
    assert guarded_rules(RULES) == [0, 1, 2]
    assert guarded_rules([{"from": "/a", "to": "/b"}]) == []


@pytest.mark.parametrize("fmt", sorted(set(EXPORTERS) - {"yaml"}))
def test_no_other_format_writes_a_guarded_rule(fmt: str) -> None:
    result = export_rules(fmt, RULES, None, guards=GUARDS, host="example.com")
    unsupported = {item.index for item in result.unsupported}
    assert {0, 1, 2} <= unsupported
    assert "/reports" not in result.text and "/account" not in result.text
