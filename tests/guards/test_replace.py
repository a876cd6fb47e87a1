"""``Engine.replace(..., guards=)``: a reload keeps the application's guards, or swaps them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.rules.load import parse_rules
from waypost.rules.request import Request

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

RULES = [{"from": "/admin/<path:rest>", "require": "staff"}, {"from": "/admin/a", "to": "/b"}]
NEW_RULES = [{"from": "/admin/<path:rest>", "require": "staff"}, {"from": "/admin/a", "to": "/c"}]


def token_check(token: str) -> Any:
    def check(request: Request) -> Any:
        return {"user": token} if request.headers.get("x-token") == token else None

    return check


def status(engine: Engine, headers: list[tuple[str, str]] | None = None) -> tuple[int | None, str]:
    decision = engine.resolve("GET", "/admin/a", headers or [])
    return decision.status, decision.location or ""


def test_replace_keeps_the_python_checks() -> None:
    engine = Engine(RULES, guards={"staff": token_check("one")})
    engine.replace(NEW_RULES)
    assert status(engine) == (401, "")
    assert status(engine, [("X-Token", "one")]) == (301, "/c")
    assert engine.guard_names == frozenset({"staff"})


def test_replace_swaps_the_guards_with_the_rules() -> None:
    engine = Engine(RULES, guards={"staff": token_check("one")})
    engine.replace(NEW_RULES, guards={"staff": token_check("two")})
    assert status(engine, [("X-Token", "one")]) == (401, "")
    assert status(engine, [("X-Token", "two")]) == (301, "/c")
    engine.replace(RULES)  # and keeps the new ones from then on
    assert status(engine, [("X-Token", "two")]) == (301, "/b")


def test_a_failed_replace_keeps_the_rules_and_the_guards() -> None:
    engine = Engine(RULES, guards={"staff": token_check("one")})
    with pytest.raises(RulesError, match="unknown guard 'staff'"):
        engine.replace(NEW_RULES, guards={"editors": token_check("two")})
    assert status(engine, [("X-Token", "one")]) == (301, "/b")
    engine.replace(NEW_RULES)
    assert status(engine, [("X-Token", "one")]) == (301, "/c")


def test_replace_with_no_guards_drops_them() -> None:
    engine = Engine(RULES, guards={"staff": token_check("one")})
    engine.replace([{"from": "/admin/a", "to": "/c"}], guards={})
    assert engine.guard_names == frozenset()
    assert not engine.has_guards
    assert status(engine) == (301, "/c")


def test_replace_keeps_guards_declared_as_mappings(htpasswd: Path) -> None:
    engine = Engine(RULES, guards={"staff": {"basic": {"htpasswd": str(htpasswd)}}})
    engine.replace(NEW_RULES)
    basic = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert status(engine)[0] == 401
    assert status(engine, [("Authorization", basic)]) == (301, "/c")


def test_a_reload_of_the_rules_file_keeps_the_python_checks(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    text = (
        "rules:\n  - from: /admin/<path:rest>\n    require: staff\n  - {from: /admin/a, to: /b}\n"
    )
    rules.write_text(text)
    engine = Engine.from_file(rules, guards={"staff": token_check("one")})
    rules.write_text(text.replace("/b", "/c"))
    engine.reload(rules)
    assert status(engine) == (401, "")
    assert status(engine, [("X-Token", "one")]) == (301, "/c")
    # As the server's watcher reads the file the other workers accepted: with the engine's names.
    ruleset, errors = parse_rules(
        text.replace("/b", "/d"), format="yaml", file=str(rules), guard_names=engine.guard_names
    )
    assert errors == []
    engine.replace(ruleset)
    assert status(engine) == (401, "")
    assert status(engine, [("X-Token", "one")]) == (301, "/d")
