"""The Django page (docs/django.md), run in the test project: its settings, its rules file, the
check error it shows and its manage.py commands (tests/test_readme.py runs the other examples)."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django import Settings

from waypost.contrib.django.checks import check_waypost

SECTION = (Path(__file__).parents[3] / "docs" / "django.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", SECTION, re.S)


def block(lang: str) -> str:
    (body,) = [body for found, body in BLOCKS if found == lang]
    return body


@pytest.fixture
def readme_project(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The README's settings (its MIDDLEWARE and WAYPOST) with its rules file in the current
    folder, as the README's relative path has it."""
    namespace: dict[str, Any] = {}
    exec(block("python"), namespace)
    (tmp_path / "redirects.yaml").write_text(block("yaml"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings.MIDDLEWARE = namespace["MIDDLEWARE"]
    settings.WAYPOST = namespace["WAYPOST"]
    return tmp_path


def test_the_readme_settings_serve_its_rules(readme_project: Path) -> None:
    client = Client()
    assert client.get("/old")["Location"] == "/live/"
    assert client.get("/blog/hi").json()["view"] == "article"
    assert client.get("/u/7")["Location"] == "/users/7/dashboard/"
    assert client.get("/missing/")["Location"] == "/live/"


def test_the_readme_check_error(readme_project: Path) -> None:
    rules = readme_project / "redirects.yaml"
    rules.write_text(block("yaml").replace("dashboard", "dashbord"), encoding="utf-8")
    (error,) = check_waypost()
    assert str(error) + "\n" == block("text")


def _commands() -> list[tuple[str, str]]:
    text = block("console")
    found = re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", text, re.M)
    return [(command, output) for command, output in found]


@pytest.mark.parametrize(("command", "expected"), _commands(), ids=[c for c, _ in _commands()])
def test_the_readme_commands(readme_project: Path, command: str, expected: str) -> None:
    argv = shlex.split(command)
    assert argv[:3] == ["python", "manage.py", "waypost"]
    out = io.StringIO()
    call_command("waypost", *argv[3:], stdout=out, stderr=io.StringIO())
    assert out.getvalue() == expected
