"""Guards on the command line: ``waypost check``, ``waypost explain`` and ``waypost export``."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml
from click.testing import CliRunner

from tests.guards.conftest import htpasswd_line
from waypost.cli import main
from waypost.engine import Engine
from waypost.rules.load import read_rules
from waypost.tools.check import check_rules

RULES = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  spare:
    basic: {htpasswd: staff.htpasswd}
rules:
  - from: /admin/<path:rest>
    require: staff
  - from: /admin/secret
    to: /treasure
"""


def write(tmp_path: Path) -> Path:
    (tmp_path / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return rules


def test_check_reports_a_guard_no_rule_requires(tmp_path: Path) -> None:
    rules = write(tmp_path)
    findings = check_rules(Engine.from_file(rules))
    findings = [f for f in findings if f.kind == "unused-guard"]
    assert [(f.kind, f.line) for f in findings] == [("unused-guard", 4)]
    assert "guard 'spare' (basic) is declared but no rule requires it" in findings[0].message
    result = CliRunner().invoke(main, ["check", str(rules)])
    assert f"{rules}:4: warning [unused-guard]" in result.output


def test_check_reports_a_login_url_inside_its_own_guard(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "guards:\n  login: {session: {secret_env: HOME}, login_url: /account/login}\n"
        "rules:\n  - from: /account/<path:rest>\n    require: login\n"
    )
    result = CliRunner().invoke(main, ["check", str(rules)])
    assert result.exit_code != 0
    assert "login_url '/account/login' is inside the area guard 'login' protects" in result.output


def test_explain_shows_which_guards_ran_and_why_without_a_secret(tmp_path: Path) -> None:
    rules = write(tmp_path)
    token = base64.b64encode(b"ann:wrong-password").decode()
    result = CliRunner().invoke(
        main, ["explain", str(rules), "/admin/secret", "-H", f"Authorization: Basic {token}"]
    )
    assert "guard 'staff' (basic) failed: unknown user or wrong password" in result.output
    assert "=> respond 401" in result.output
    assert "wrong-password" not in result.output and token not in result.output
    good = base64.b64encode(b"ann:s3cret").decode()
    result = CliRunner().invoke(
        main, ["explain", str(rules), "/admin/secret", "-H", f"Authorization: Basic {good}"]
    )
    assert "guard 'staff' (basic) passed: user 'ann'" in result.output
    assert "=> redirect 301 /treasure" in result.output


def test_export_refuses_rules_with_guards_but_to_yaml(tmp_path: Path) -> None:
    rules = write(tmp_path)
    for fmt in ("nginx", "netlify", "csv"):
        result = CliRunner().invoke(main, ["export", str(rules), "--format", fmt])
        assert result.exit_code == 1
        assert f"{rules}:7: not exported: it requires a guard" in result.output
        assert f"cannot be exported as {fmt}" in result.output
        assert "export --format yaml, which keeps the guards" in result.output
    # Waypost's own format keeps them: the export loads as the same guarded rule set.
    out = tmp_path / "elsewhere" / "exported.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["export", str(rules), "--format", "yaml", "-o", str(out)])
    assert result.exit_code == 0, result.output
    exported = yaml.safe_load(out.read_text())
    assert exported["guards"]["staff"]["basic"]["htpasswd"] == str(tmp_path / "staff.htpasswd")
    original, _ = read_rules(rules)
    again, errors = read_rules(out)
    assert not errors
    assert [r.to_mapping() for r in again.rules] == [r.to_mapping() for r in original.rules]
    assert [(g.name, g.kind, g.options, g.login_url) for g in again.guards] == [
        (g.name, g.kind, g.options, g.login_url) for g in original.guards
    ]
