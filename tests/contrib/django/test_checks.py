"""manage.py check reports Waypost's problems as errors located by the rule's file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pytest_django import Settings

from waypost.contrib.django.checks import check_waypost


def test_the_projects_rules_pass() -> None:
    assert check_waypost() == []
    call_command("check")  # raises SystemCheckError on an error


def test_a_missing_route_name_is_E001_with_its_file_line_and_a_hint(
    use_rules: Callable[[str], Path],
) -> None:
    path = use_rules(
        "rules:\n"
        "  - from: /u/<int:id>\n"
        '    to: {route: dashbord, user_id: "{id}"}\n'
        "  - from: /a\n"
        "    to: {route: live}\n"
    )
    (error,) = check_waypost()
    assert (error.id, error.obj) == ("waypost.E001", f"{path}:2")
    assert error.msg == "'to: {route: dashbord}': no URL pattern is named 'dashbord'"
    assert error.hint.startswith("Did you mean 'dashboard'?")
    with pytest.raises(SystemCheckError, match=r"waypost\.E001.*'dashbord'"):
        call_command("check")


def test_a_route_with_the_wrong_parameters_is_E001(use_rules: Callable[[str], Path]) -> None:
    path = use_rules("rules:\n  - from: /u\n    to: {route: dashboard, user: x}\n")
    (error,) = check_waypost()
    assert (error.id, error.obj) == ("waypost.E001", f"{path}:2")
    assert "'dashboard'" in error.msg and "NoReverseMatch" in error.msg


def test_every_load_error_is_an_E002(use_rules: Callable[[str], Path]) -> None:
    path = use_rules(
        "rules:\n  - from: /a\n    to: /b\n    stauts: 302\n  - from: /c/<nope:x>\n    to: /d\n"
    )
    errors = check_waypost()
    assert [e.id for e in errors] == ["waypost.E002", "waypost.E002"]
    assert all(str(e.obj).startswith(f"{path}:") for e in errors)
    assert "stauts" in errors[0].msg and "nope" in errors[1].msg


def test_a_rules_file_that_is_not_there_is_E002(settings: Settings, tmp_path: Path) -> None:
    settings.WAYPOST = {"RULES": str(tmp_path / "nope.yaml")}
    (error,) = check_waypost()
    assert error.id == "waypost.E002" and "nope.yaml" in (error.msg + str(error.obj))


def test_a_settings_mistake_is_E003(settings: Settings) -> None:
    settings.WAYPOST = {"RULSE": "x.yaml"}
    (error,) = check_waypost()
    assert error.id == "waypost.E003" and "did you mean 'RULES'?" in error.msg


def test_rules_that_proxy_are_E004(use_rules: Callable[[str], Path]) -> None:
    use_rules(
        "proxy_hosts: [api.example.com]\n"
        "rules:\n  - from: /api/<path:rest>\n    rewrite: https://api.example.com/{rest}\n"
    )
    (error,) = check_waypost()
    assert error.id == "waypost.E004" and "proxy" in error.msg


def test_the_check_runs_only_for_its_app(use_rules: Callable[[str], Path]) -> None:
    use_rules("rules:\n  - from: /a\n    to: {route: nowhere}\n")
    from django.apps import apps

    assert check_waypost([apps.get_app_config("sites")]) == []
    assert check_waypost([apps.get_app_config("waypost")]) != []
