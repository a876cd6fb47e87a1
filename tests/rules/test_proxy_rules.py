"""Rewrites to another origin (proxying): the rule language, its load errors and the decision.

A ``rewrite`` whose target is an absolute http(s) URL proxies the request there; its host is
written out in the file and listed under the top-level ``proxy_hosts``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.rules.load import load_rules, parse_rules, rules_from_mappings
from waypost.rules.model import Rewrite

YAML = """\
proxy_hosts: [api.example.com, "*.backend.example.org"]
rules:
  - from: /api/<path:rest>
    rewrite: https://api.example.com/v1/{rest}
"""


def engine(rules: list[dict[str, object]], hosts: list[str]) -> Engine:
    return Engine(rules, proxy_hosts=hosts)


def test_the_example_from_the_docs_proxies() -> None:
    ruleset, errors = parse_rules(YAML, format="yaml", file="rules.yaml")
    assert errors == []
    assert ruleset.proxy_hosts == ("api.example.com", "*.backend.example.org")
    decision = Engine(ruleset).resolve("GET", "/api/x?q=1")
    assert decision.describe(detail=False) == "proxy https://api.example.com/v1/x?q=1"
    assert (decision.action, decision.location) == ("proxy", "https://api.example.com/v1/x?q=1")
    assert (decision.path, decision.query) == ("/v1/x", "q=1")


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        (
            "toml",
            'proxy_hosts = ["api.example.com"]\n[[rules]]\nfrom = "/a"\n'
            'rewrite = "https://api.example.com/b"\n',
        ),
        (
            "json",
            '{"proxy_hosts": ["api.example.com"], "rules": '
            '[{"from": "/a", "rewrite": "https://api.example.com/b"}]}',
        ),
    ],
    ids=["toml", "json"],
)
def test_proxy_hosts_in_every_file_format(fmt: str, text: str) -> None:
    ruleset, errors = parse_rules(text, format=fmt)
    assert errors == []
    assert ruleset.proxy_hosts == ("api.example.com",)
    assert Engine(ruleset).resolve("GET", "/a").location == "https://api.example.com/b"


@pytest.mark.parametrize(
    ("target", "decided"),
    [
        ("https://api.example.com/v1/{rest}", "proxy https://api.example.com/v1/x/y?q=1"),
        ("https://API.example.com/v1/{rest}", "proxy https://API.example.com/v1/x/y?q=1"),
        (
            "https://a.backend.example.org:8443/{rest}",
            "proxy https://a.backend.example.org:8443/x/y?q=1",
        ),
        ("http://api.example.com/v1/{rest}?k=1", "proxy http://api.example.com/v1/x/y?k=1&q=1"),
        ("https://api.example.com/v1/{rest}?q=9", "proxy https://api.example.com/v1/x/y?q=9"),
        ("https://api.example.com", "proxy https://api.example.com/?q=1"),
    ],
    ids=["path", "host-case", "wildcard-port", "own-query-merged", "own-param-wins", "bare-host"],
)
def test_a_proxy_decision_says_where(target: str, decided: str) -> None:
    rules = [{"from": "/api/<path:rest>", "rewrite": target}]
    decision = engine(rules, ["api.example.com", "*.backend.example.org"]).resolve(
        "GET", "/api/x/y?q=1"
    )
    assert decision.describe(detail=False) == decided


def test_query_drop_and_set_headers_apply_to_a_proxy() -> None:
    rules = [
        {
            "from": "/api/<rest>",
            "rewrite": "https://api.example.com/{rest}",
            "query": "drop",
            "set_headers": {"X-Api": "1"},
        }
    ]
    decision = engine(rules, ["api.example.com"]).resolve("GET", "/api/x?q=1")
    assert decision.describe() == "proxy https://api.example.com/x  [<rules>#1]\n  X-Api: 1"


def test_an_ordinary_rewrite_is_still_a_rewrite() -> None:
    decision = engine([{"from": "/a", "rewrite": "/b"}], ["api.example.com"]).resolve("GET", "/a")
    assert decision.describe(detail=False) == "rewrite /b"
    (rule,) = engine([{"from": "/a", "rewrite": "/b"}], []).rules
    assert isinstance(rule.action, Rewrite) and not rule.action.proxy


@pytest.mark.parametrize(
    "path",
    ["/api/a%5C..%5Cb", "/api/a%5C..", "/api/..%5Cb"],
    ids=["backslash", "backslash-trailing", "backslash-leading"],
)
def test_a_dot_segment_cannot_climb_out_of_the_proxied_path(path: str) -> None:
    rules = [{"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}]
    e = engine(rules, ["api.example.com"])
    assert e.resolve("GET", path).status == 400
    trace = e.explain("GET", path)
    assert "dot segment" in trace.steps[0].reason


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/api/../admin", "/admin"),
        ("/api/%2e%2e/admin", "/admin"),
        ("/api/a/..", "/api/"),
        ("/api/./x", "/api/x"),
    ],
)
def test_a_path_with_dot_segments_is_sent_to_its_normal_form_first(path: str, normal: str) -> None:
    rules = [{"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}]
    decision = engine(rules, ["api.example.com"]).resolve("GET", path)
    assert (decision.status, decision.location) == (308, normal)


def test_dots_inside_a_segment_are_fine() -> None:
    rules = [{"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}]
    decision = engine(rules, ["api.example.com"]).resolve("GET", "/api/a..b/.well-known")
    assert decision.location == "https://api.example.com/v1/a..b/.well-known"


# -- load errors ----------------------------------------------------------------------------


def errors_of(text: str) -> list[str]:
    _, errors = parse_rules(text, format="yaml", file="rules.yaml")
    return [str(error) for error in errors]


def test_a_host_not_listed_is_a_load_error_with_where_and_how() -> None:
    (error,) = errors_of(
        "proxy_hosts: [api.example.com]\n"
        "rules:\n"
        "  - from: /a\n"
        "    rewrite: https://evil.example.net/x\n"
    )
    assert error.startswith("rules.yaml:4:22: rewrite target 'https://evil.example.net/x'")
    assert "'evil.example.net'" in error and "['api.example.com']" in error
    assert "proxy_hosts: [evil.example.net]" in error


def test_without_proxy_hosts_every_proxy_rule_is_refused() -> None:
    (error,) = errors_of("rules:\n  - from: /a\n    rewrite: https://api.example.com/x\n")
    assert "lists no proxy_hosts" in error and "add the host" in error


def test_allowed_hosts_do_not_allow_proxying() -> None:
    (error,) = errors_of(
        "allowed_hosts: [api.example.com]\n"
        "rules:\n  - from: /a\n    rewrite: https://api.example.com/x\n"
    )
    assert "lists no proxy_hosts" in error


@pytest.mark.parametrize(
    ("target", "col", "words"),
    [
        ("https://{sub}.backend.example.org/", 22, "host or port from {sub}"),
        ("https://api.example.com:{port}/", 38, "host or port from {port}"),
        ("https://{host}/x", 22, "host or port from {host}"),
        ("https://api.example.com{sub}/x", 37, "host or port from {sub}"),
        ("https://api.example.com/x#top", 39, "has a fragment"),
        ("https://api.example.com:99999/x", 22, "no valid host and port"),
        ("https://api.example.com.evil.net/x", 22, "'api.example.com.evil.net'"),
        ("https://backend.example.org/x", 22, "'backend.example.org'"),
    ],
    ids=["host-var", "port-var", "whole-host", "host-suffix", "fragment", "port", "suffix", "apex"],
)
def test_a_proxy_origin_that_could_leave_the_list_is_refused(
    target: str, col: int, words: str
) -> None:
    text = (
        'proxy_hosts: [api.example.com, "*.backend.example.org"]\n'
        f"rules:\n  - from: /a/<sub>/<int:port>/<host>\n    rewrite: {target}\n"
    )
    (error,) = errors_of(text)
    assert words in error
    assert error.startswith(f"rules.yaml:4:{col}: rewrite target {target!r}")


@pytest.mark.parametrize(
    ("hosts", "words"),
    [
        ("[api.example.com:8443]", "has a port"),
        ("['*']", "wildcard host is written"),
        ("['a/b']", "proxy host must be a host name"),
        ("[3]", "proxy host must be a host name"),
    ],
    ids=["port", "star", "slash", "number"],
)
def test_bad_proxy_hosts_are_load_errors(hosts: str, words: str) -> None:
    (error,) = errors_of(f"proxy_hosts: {hosts}\nrules: []\n")
    assert error.startswith("rules.yaml:1:")
    assert words in error


def test_ipv6_and_ip_proxy_hosts() -> None:
    rules = [
        {"from": "/a", "rewrite": "http://[::1]:8080/a"},
        {"from": "/b", "rewrite": "http://127.0.0.1:8080/b"},
    ]
    ruleset, errors = rules_from_mappings(rules, proxy_hosts=["[::1]", "127.0.0.1"])
    assert errors == []
    assert Engine(ruleset).resolve("GET", "/a").location == "http://[::1]:8080/a"


def test_a_rules_file_with_proxy_rules_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML)
    assert load_rules(path).proxy_hosts == ("api.example.com", "*.backend.example.org")
    with pytest.raises(RulesError):
        load_rules(_write(tmp_path, YAML.replace("api.example.com,", "")))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "other.yaml"
    path.write_text(text)
    return path
