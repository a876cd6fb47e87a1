"""check, trace, explain, resolve and test on proxy rules (a rewrite to another origin)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from waypost.cli import main
from waypost.engine import Engine
from waypost.tools.casetest import parse_cases, run_cases
from waypost.tools.check import check_rules
from waypost.tools.trace import follow

RULES = """\
proxy_hosts: [api.example.com]
rules:
  - from: /api/<path:rest>
    rewrite: https://api.example.com/v1/{rest}
  - from: /old-api/<path:rest>
    to: /api/{rest}
"""


def _file(tmp_path: Path, text: str = RULES) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_listed_proxy_rules(tmp_path: Path) -> None:
    rules = _file(tmp_path)
    assert run("check", rules) == (0, f"{rules}: ok, 2 rules\n", "")


def test_check_refuses_a_host_not_in_proxy_hosts(tmp_path: Path) -> None:
    rules = _file(tmp_path, RULES.replace("[api.example.com]", "[other.example.com]"))
    code, stdout, stderr = run("check", rules)
    assert code == 1
    said = stdout + stderr
    assert f"{rules}:4:22: rewrite target 'https://api.example.com/v1/{{rest}}'" in said
    assert "proxy_hosts: [api.example.com]" in said


def test_trace_stops_at_a_proxy(tmp_path: Path) -> None:
    code, stdout, _ = run("trace", _file(tmp_path), "/old-api/x?q=1")
    assert code == 0
    assert stdout.splitlines()[-2:] == [
        "    proxy https://api.example.com/v1/x?q=1  [" + str(tmp_path / "rules.yaml") + ":3]",
        "final: /api/x?q=1 after 1 redirect; proxied to https://api.example.com/v1/x?q=1 "
        "(another origin; not followed)",
    ]


def test_a_loop_through_a_proxy_is_not_followed() -> None:
    # /a proxies to the origin, whose /a would redirect back here: Waypost cannot know that,
    # and neither the walk nor check reports a loop of its own making.
    rules = [
        {"from": "/a", "rewrite": "https://api.example.com/a"},
        {"from": "/b", "to": "https://api.example.com/a"},
        {"from": "/c", "to": "/a"},
    ]
    engine = Engine(rules, proxy_hosts=["api.example.com"], allowed_hosts=["api.example.com"])
    walk = follow(engine, "GET", "/c", site_hosts=["api.example.com"])
    assert walk.outcome == "final"
    assert walk.final is not None and walk.final.action == "proxy"
    assert "loop" not in [f.kind for f in check_rules(engine, site_hosts=["api.example.com"])]


def test_explain_and_resolve_say_proxy(tmp_path: Path) -> None:
    rules = _file(tmp_path)
    code, stdout, _ = run("explain", rules, "/api/x?q=1")
    assert code == 0 and stdout.splitlines()[-1] == "=> proxy https://api.example.com/v1/x?q=1"
    code, stdout, _ = run("resolve", rules, "/api/x?q=1")
    assert stdout.startswith("proxy https://api.example.com/v1/x?q=1  [")


def test_cases_can_expect_a_proxy() -> None:
    engine = Engine(
        [{"from": "/api/<rest>", "rewrite": "https://api.example.com/{rest}"}],
        proxy_hosts=["api.example.com"],
    )
    cases, errors = parse_cases(
        "url,action,location,status\n/api/x?q=1,proxy,https://api.example.com/x?q=1,200\n",
        format="csv",
    )
    assert errors == []
    (result,) = run_cases(engine, cases)
    assert result.problems == ()


def test_export_keeps_proxy_rules_where_the_format_can_proxy(tmp_path: Path) -> None:
    rules = _file(tmp_path)
    code, stdout, _ = run("export", rules, "--format", "yaml")
    assert code == 0 and stdout.startswith("proxy_hosts:\n- api.example.com\nrules:\n")
    back = tmp_path / "back.yaml"
    back.write_text(stdout, encoding="utf-8")
    decision = Engine.from_file(back).resolve("GET", "/api/x?q=1")
    assert decision.describe(detail=False) == "proxy https://api.example.com/v1/x?q=1"
    assert (
        "/api/* https://api.example.com/v1/:splat 200!"
        in run("export", rules, "--format", "netlify")[1]
    )
    # Vercel applies rewrites only where no file answers: a proxy that always applies is
    # refused, one that waits for the app's 404 is written.
    code, _, err = run("export", rules, "--format", "vercel")
    assert code == 1 and "only_if_missing" in err
    waiting = _file(
        tmp_path, RULES.replace("    rewrite:", "    only_if_missing: true\n    rewrite:")
    )
    assert (
        '"destination": "https://api.example.com/v1/:rest"'
        in run("export", waiting, "--format", "vercel")[1]
    )


def test_export_refuses_a_proxy_rule_where_it_would_become_a_redirect(tmp_path: Path) -> None:
    rules = _file(tmp_path)
    for fmt, words in (("nginx", "proxy_pass"), ("apache", "ProxyPass")):
        code, stdout, stderr = run("export", rules, "--format", fmt, "--strict")
        assert code == 1
        assert f"{rules}:3: not exported: a rewrite to another origin (a proxy)" in stderr
        assert words in stderr
        assert "api.example.com" not in stdout
