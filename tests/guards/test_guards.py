"""The guard layer in the rule language: ``guards:``, ``require:``, ``login_url:`` and their
load errors (file:line:col, the text quoted, how to fix it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.rules.load import parse_rules

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")


def errors_of(text: str, **kwargs: object) -> list[str]:
    _, errors = parse_rules(text, format="yaml", file="rules.yaml", **kwargs)  # type: ignore[arg-type]
    return [str(e) for e in errors]


GOOD = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  login:
    session: {cookie: session, secret_env: FLASK_SECRET_KEY, key: _user_id}
    login_url: /login
rules:
  - from: /admin/<path:rest>
    require: [staff, login]
  - from: /account/<path:rest>
    require: login
    login_url: /signin
    rewrite: /app/account/{rest}
"""


def test_a_file_declares_guards_and_rules_require_them() -> None:
    ruleset, errors = parse_rules(GOOD, format="yaml", file="/srv/site/rules.yaml")
    assert errors == []
    staff, login = ruleset.guards
    assert (staff.name, staff.kind, staff.line) == ("staff", "basic", 2)
    # The htpasswd path is relative to the rules file.
    assert staff.options == {
        "htpasswd": "/srv/site/staff.htpasswd",
        "realm": "Staff",
        "max_failures": 10,
        "window": 60,
    }
    assert login.options["max_age"] == 31 * 24 * 3600
    assert login.login_url == "/login"
    admin, account = ruleset.guard_rules
    assert admin.requirement is not None and admin.requirement.guards == ("staff", "login")
    assert admin.requirement.guard_only
    assert account.requirement is not None and not account.requirement.guard_only
    assert account.requirement.login_url == "/signin"
    assert account.action.kind == "rewrite"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "guards: {staff: {basic: {htpasswd: x}}}\nrules: [{from: /a, require: staf}]",
            "rules.yaml:2:29: unknown guard 'staf'; did you mean 'staff'?",
        ),
        (
            "rules: [{from: /a, require: staff}]",
            "rules.yaml:1:29: unknown guard 'staff'; declare it under 'guards:'",
        ),
        (
            "guards: {staff: {basik: {htpasswd: x}}}\nrules: []",
            "rules.yaml:1:18: unknown guard kind 'basik'; did you mean 'basic'?",
        ),
        (
            "guards: {k: {jwt: {issuer: x}}}\nrules: []",
            "a 'jwt' guard takes exactly one of 'jwks_url', 'public_key' and 'secret_env'",
        ),
        (
            "guards: {k: {api_key: {}}}\nrules: []",
            "an 'api_key' guard needs 'audience'",
        ),
        (
            "guards: {k: {forward_auth: {}}}\nrules: []",
            "a 'forward_auth' guard needs 'url', like forward_auth: {url: ...}",
        ),
        (
            "guards: {staff: {basic: {realm: x}}}\nrules: []",
            "a 'basic' guard needs 'htpasswd'",
        ),
        (
            "guards: {staff: {basic: {htpasswd: x, relm: y}}}\nrules: []",
            "unknown option 'relm'; did you mean 'realm'?",
        ),
        (
            "guards: {s: {session: {secret_env: K, max_age: -1}}}\nrules: []",
            "'max_age' is a positive number, got -1",
        ),
        (
            "guards: {s: {session: {secret_env: K}}}\n"
            "rules: [{from: /a, require: s, login_url: 'https://evil.example/login'}]",
            "a login_url is a path on this site like '/login', got 'https://evil.example/login'",
        ),
        (
            "guards: {s: {session: {secret_env: K}, login_url: //evil.example}}\nrules: []",
            "a login_url is a path on this site",
        ),
        (
            "rules: [{from: /a, to: /b, login_url: /login}]",
            "'login_url' goes with 'require'",
        ),
        (
            "guards: {s: {session: {secret_env: K}, basic: {htpasswd: x}}}\nrules: []",
            "guard 's' has exactly one kind",
        ),
    ],
    ids=[
        "misspelt-name",
        "undeclared-name",
        "unknown-kind",
        "jwt-without-key",
        "api_key-without-audience",
        "forward_auth-without-url",
        "missing-option",
        "unknown-option",
        "bad-option",
        "offsite-login_url",
        "protocol-relative-login_url",
        "login_url-without-require",
        "two-kinds",
    ],
)
def test_load_errors_say_where_and_how_to_fix(text: str, message: str) -> None:
    assert any(message in e for e in errors_of(text)), errors_of(text)


def test_a_require_only_rule_guards_but_does_not_decide() -> None:
    engine = Engine(
        [
            {"from": "/area/<path:rest>", "require": "ok"},
            {"from": "/area/<path:rest>", "to": "/moved/{rest}"},
        ],
        guards={"ok": lambda r: {"user": "ann"}},
    )
    # No duplicate-rule error, and the redirect decides once the guard passed.
    assert engine.resolve("GET", "/area/x").location == "/moved/x"


def test_a_login_url_inside_its_own_guard_is_refused_at_load() -> None:
    with pytest.raises(RulesError) as caught:
        Engine(
            [{"from": "/<path:rest>", "require": "login", "login_url": "/login"}],
            guards={"login": lambda r: None},
        )
    assert "login_url '/login' is inside the area guard 'login' protects" in str(caught.value)


def test_a_guards_own_login_url_inside_its_area_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "guards:\n  app: {python: {}, login_url: /account/login}\n"
        "rules:\n  - from: /account/<path:rest>\n    require: app\n"
    )
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules, guards={"app": lambda r: None})
    assert f"{rules}:4" in str(caught.value)
    assert "inside the area guard 'app' protects" in str(caught.value)


def test_a_python_guard_declared_but_not_given_is_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("guards:\n  app: {python: {}}\nrules:\n  - {from: /a, require: app}\n")
    with pytest.raises(RulesError, match=r"guards=\{'app': check\}"):
        Engine.from_file(rules)


def test_a_require_rule_reads_back_as_written() -> None:
    ruleset, errors = parse_rules(GOOD, format="yaml", file="rules.yaml")
    assert errors == []
    admin, account = ruleset.guard_rules
    assert admin.to_mapping()["require"] == ["staff", "login"]
    assert "pass" not in admin.to_mapping()
    assert account.to_mapping()["login_url"] == "/signin"
