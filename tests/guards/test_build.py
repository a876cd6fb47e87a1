"""Guards built from their declarations: what each needs is read at load, and a problem is a
load error at the guard's file:line that says how to fix it (never a secret)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest

from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.guards import build_guards
from waypost.guards.basic import BasicGuard
from waypost.guards.session import SessionGuard
from waypost.rules.load import load_rules


def write(tmp_path: Path, guards: str) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"guards:\n{guards}\nrules:\n  - from: /a\n    require: g\n")
    return rules


def test_the_declared_kinds_are_built(tmp_path: Path, htpasswd: Path, flask_secret: str) -> None:
    rules = write(
        tmp_path,
        f"  g: {{basic: {{htpasswd: {htpasswd.name}, realm: Staff}}}}\n"
        "  s: {session: {secret_env: FLASK_SECRET_KEY}}",
    )
    guards, errors = build_guards(load_rules(rules).guards)
    assert errors == []
    assert isinstance(guards["g"], BasicGuard)
    assert isinstance(guards["s"], SessionGuard)


@pytest.mark.parametrize(
    ("guards", "message"),
    [
        ("  g: {basic: {htpasswd: missing.htpasswd}}", "cannot read the htpasswd file"),
        ("  g: {session: {secret_env: WAYPOST_TEST_UNSET}}", "'WAYPOST_TEST_UNSET'"),
    ],
    ids=["no-htpasswd", "no-secret"],
)
def test_what_a_guard_needs_is_a_load_error_when_missing(
    tmp_path: Path, guards: str, message: str
) -> None:
    rules = write(tmp_path, guards)
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules)
    assert f"{rules}:2" in str(caught.value)
    assert message in str(caught.value)


def test_the_secret_is_never_in_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", "very-secret-value")
    rules = write(tmp_path, "  g: {session: {secret_env: FLASK_SECRET_KEY}}\n  h: {python: {}}")
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules)
    assert "very-secret-value" not in str(caught.value)


def test_a_missing_library_says_which_extra_to_install(
    tmp_path: Path, htpasswd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_bcrypt(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "bcrypt":
            raise ImportError("No module named 'bcrypt'", name="bcrypt")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "waypost.guards.basic", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_bcrypt)
    rules = write(tmp_path, f"  g: {{basic: {{htpasswd: {htpasswd}}}}}")
    with pytest.raises(
        RulesError, match=r"needs the 'bcrypt' library; pip install 'waypost\[guards\]'"
    ):
        Engine.from_file(rules)
