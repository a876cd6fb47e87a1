"""``waypost resolve`` and ``waypost explain`` (cli/resolve.py): outputs, JSON shapes, and the
request mistakes they name (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from waypost.cli import main

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "rules.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_resolve_json_has_every_decision_field() -> None:
    code, out = run("resolve", EXAMPLE, "/2024/05/hello?x=1", "--json")
    assert code == 0
    data = json.loads(out)
    assert data == {
        "action": "redirect",
        "status": 308,
        "location": "/articles/hello?year=2024&x=1",
        "path": None,
        "query": None,
        "headers": {},
        "body": None,
        "rule": {"name": "article", "source": f"{EXAMPLE}:11"},
        "vary": [],
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-X", "POST", "/second"], "redirect 307 /third"),
        (["/second"], "pass (no rule applies)"),
        (["-X", "head", "/old-page"], "redirect 301 /new-page"),
        (["/gone"], "respond 410"),
        (["/docs/a/b"], "redirect 301 https://docs.example.com/a/b"),
        (["--ip", "10.1.2.3", "/old-page"], "redirect 301 /new-page"),
    ],
    ids=["post-307", "get-not-matched", "head-lowercase", "respond", "absolute", "ip-flag"],
)
def test_resolve_text(args: list[str], expected: str) -> None:
    code, out = run("resolve", EXAMPLE, *args)
    assert code == 0
    assert out.startswith(expected)


def test_explain_lists_skipped_candidates() -> None:
    code, out = run("explain", EXAMPLE, "/promo", "-H", "Host: shop.example.com")
    assert code == 0
    assert "skipped: condition failed: language" in out
    assert out.rstrip().endswith("=> pass (no rule applies)")


def test_explain_json() -> None:
    code, out = run("explain", EXAMPLE, "/old/x", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["decision"]["action"] == "rewrite"
    assert data["steps"][0]["outcome"] == "applied"
    assert data["steps"][0]["values"] == {"rest": "x"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/x", "--ip", "not-an-ip"], "'not-an-ip' is not an IP address, like 203.0.113.7"),
        (["/x", "-X", "GE T"], "'GE T' is not an HTTP method, like GET or POST"),
        (["old-page"], "'old-page' is not a path or an http(s) URL; did you mean '/old-page'?"),
        (["ftp://example.com/x"], "is not a path or an http(s) URL; use http:// or https://"),
    ],
    ids=["ip", "method", "relative-url", "scheme"],
)
@pytest.mark.parametrize("command", ["resolve", "explain"])
def test_request_mistakes_are_named(command: str, args: list[str], message: str) -> None:
    code, out = run(command, EXAMPLE, *args)
    assert code == 2
    assert message in out


def test_request_options_that_are_fine_pass() -> None:
    code, out = run("resolve", EXAMPLE, "/old-page", "--ip", " 10.0.0.1", "-X", "PATCH")
    assert code == 0, out
    code, out = run("resolve", EXAMPLE, "HTTPS://example.com/old-page", "--ip", "2001:db8::1")
    assert code == 0, out


def test_pack_rules_comes_from_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """WAYPOST_PACK_RULES is read by the configuration and reaches the loader as a parameter:
    the answer is the same either way; a value that is not yes/no is a usage mistake."""
    for value in ("0", "1", "no"):
        monkeypatch.setenv("WAYPOST_PACK_RULES", value)
        assert run("resolve", EXAMPLE, "/old-page")[1].startswith("redirect 301 /new-page")
    monkeypatch.setenv("WAYPOST_PACK_RULES", "maybe")
    code, out = run("resolve", EXAMPLE, "/old-page")
    assert code == 2 and "WAYPOST_PACK_RULES='maybe' is not a yes/no value" in out
