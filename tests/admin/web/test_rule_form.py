"""The rule form's fields and the rule mapping they stand for, both ways, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from waypost.admin.web._rule_form import RuleForm


@pytest.mark.parametrize(
    "rule",
    [
        {"from": "/a", "to": "/b"},
        {"name": "n", "from": "/a/<int:x>", "to": "/b/{x}", "status": 308, "note": "why"},
        {"from": "/a", "rewrite": "/b", "set_headers": {"x-a": "1"}},
        {"from": "/gone", "respond": 410},
        {"from": "/m", "respond": {"status": 503, "body": "soon"}},
        {"from": "/p", "pass": True, "methods": ["GET"]},
        {"from": "/w", "to": "/de", "when": {"language": ["de"]}, "status": 302},
    ],
    ids=["plain", "named", "rewrite", "respond", "respond-body", "pass", "when"],
)
def test_the_form_gives_back_the_rule_it_shows(rule: dict[str, Any]) -> None:
    back, problems = RuleForm.of_rule(rule).to_rule()
    assert problems == []
    assert back == rule


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"from": "/a", "status": "30x"}, "status", "must be a number"),
        ({"from": "/a", "more": "when: [unclosed"}, "more", "not valid YAML (line 1)"),
        ({"from": "/a", "more": "- a list"}, "more", "must be YAML mapping keys"),
        ({"from": "/a", "more": "from: /b"}, "more", "'from' has its own field"),
        ({"from": "/a", "action": "teleport"}, "action", "must be one of"),
    ],
    ids=["status", "yaml", "not-mapping", "own-field", "action"],
)
def test_what_only_the_form_can_get_wrong(fields: dict[str, str], where: str, message: str) -> None:
    _, problems = RuleForm.of_fields(fields).to_rule()
    assert [path for path, text in problems if message in text] == [where]


def test_an_unticked_on_box_switches_the_rule_off_only_when_the_form_had_it() -> None:
    assert RuleForm.of_fields({"from": "/a", "target": "/b"}).to_rule()[0] == {
        "from": "/a",
        "to": "/b",
    }
    off = RuleForm.of_fields({"from": "/a", "target": "/b", "has_enabled": "1"})
    assert off.to_rule()[0]["enabled"] is False
    on = RuleForm.of_fields({"from": "/a", "target": "/b", "has_enabled": "1", "enabled": "on"})
    assert "enabled" not in on.to_rule()[0]
