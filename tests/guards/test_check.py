"""``waypost check`` on guarded areas: the pages a guard's pattern leaves open."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from waypost.cli import main
from waypost.engine import Engine
from waypost.rules.load import parse_rules
from waypost.rules.request import Request
from waypost.tools.check import Finding, check_rules


def nobody(request: Request) -> None:
    return None


def guard_findings(rules: str) -> list[Finding]:
    text = "guards:\n  staff: {python: {}}\nrules:\n" + rules
    ruleset, errors = parse_rules(text, format="yaml", file="r.yaml", guard_names={"staff"})
    assert errors == []
    engine = Engine(ruleset, guards={"staff": nobody})
    return [f for f in check_rules(engine) if f.kind in ("unguarded-prefix", "guard-gap")]


# Each case: the rules (after 'rules:', the 4th line of the file), then (kind, line) of every
# guard finding.
CASES = [
    (
        "bare-prefix-open",
        """
  - from: /admin/<path:rest>
    require: staff
  - from: /admin
    to: /admin/dashboard
""",
        [("unguarded-prefix", 7)],
    ),
    (
        "bare-prefix-guarded",
        """
  - from: /admin/<path:rest>
    require: staff
  - from: /admin
    require: staff
  - from: /admin
    to: /admin/dashboard
""",
        [],
    ),
    (
        "prefix-with-slash-open",
        """
  - from: /admin/<path:rest>
    require: staff
  - from: /admin/
    respond: 200
""",
        [("unguarded-prefix", 7)],
    ),
    (
        "no-rule-answers-the-prefix",
        """
  - from: /admin/<path:rest>
    require: staff
  - from: /admin/x
    to: /y
""",
        [],
    ),
    (
        "guard-with-a-host-condition",
        """
  - from: /admin/<path:rest>
    require: staff
    when: {host: admin.example.com}
  - from: /admin/report
    to: /admin/reports
""",
        [("guard-gap", 8)],
    ),
    (
        "rule-with-the-same-condition",
        """
  - from: /admin/<path:rest>
    require: staff
    when: {host: admin.example.com}
  - from: /admin/report
    to: /admin/reports
    when: {host: admin.example.com}
""",
        [],
    ),
    (
        "case-insensitive-rule-under-a-case-sensitive-guard",
        """
  - from: /admin/<path:rest>
    require: staff
  - from: /admin/report
    to: /admin/reports
    case: insensitive
""",
        [("guard-gap", 7)],
    ),
    (
        "both-case-insensitive",
        """
  - from: /admin/<path:rest>
    require: staff
    case: insensitive
  - from: /admin/report
    to: /admin/reports
    case: insensitive
""",
        [],
    ),
]


@pytest.mark.parametrize(("rules", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_guard_findings(rules: str, expected: list[tuple[str, int]]) -> None:
    assert [(f.kind, f.line) for f in guard_findings(rules)] == expected


def test_unguarded_prefix_message_says_why_and_how_to_fix() -> None:
    (finding,) = guard_findings(
        "  - from: /admin/<path:rest>\n    require: staff\n  - from: /admin\n    to: /x\n"
    )
    assert finding.severity == "warning"
    assert finding.render().startswith("r.yaml:6: warning [unguarded-prefix] answers '/admin'")
    assert "the guard rule at r.yaml:4 (from '/admin/<path:rest>')" in finding.message
    assert "add a rule 'from: /admin' with 'require: staff'" in finding.message
    assert [r.line for r in finding.related] == [4]


def test_guard_gap_case_message_names_the_open_path() -> None:
    (finding,) = guard_findings(
        "  - from: /admin/<path:rest>\n    require: staff\n"
        "  - from: /admin/report\n    to: /x\n    case: insensitive\n"
    )
    assert "'/ADMIN/REPORT' reaches this rule without the guard" in finding.message
    assert "'case: insensitive'" in finding.message


def test_the_cli_reports_an_open_prefix_at_the_rule_that_answers_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "guards:\n  login: {session: {secret_env: HOME}, login_url: /login}\n"
        "rules:\n  - from: /account/<path:rest>\n    require: login\n"
        "  - from: /account\n    to: /account/home\n"
    )
    result = CliRunner().invoke(main, ["check", str(rules)])
    assert f"{rules}:6: warning [unguarded-prefix] answers '/account' without the guard" in (
        result.output
    )
