"""manage.py waypost runs Waypost's command line with the project's rules file, and imports the
project's own django.contrib.redirects rows from its database (SQLite; PostgreSQL when
WAYPOST_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from django.contrib.redirects.models import Redirect
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django import Settings


def waypost(*args: str) -> tuple[str, str]:
    """``manage.py waypost ARGS``: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("waypost", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_resolve_uses_the_rules_file_from_the_settings() -> None:
    out, _ = waypost("resolve", "/old")
    assert out.startswith("redirect 301 /live/  [")


def test_check_of_the_projects_rules_passes() -> None:
    out, _ = waypost("check")
    assert "redirects.yaml" in out


def test_options_are_passed_on_and_rules_can_be_named(write_rules: Callable[..., Path]) -> None:
    other = write_rules("other.yaml", "rules:\n  - from: /x\n    to: /y\n    status: 302\n")
    out, _ = waypost("--rules", str(other), "resolve", "/x", "--json")
    assert '"status": 302' in out


def test_a_failing_command_exits_with_its_status(use_rules: Callable[[str], Path]) -> None:
    use_rules("rules:\n  - from: /a\n    to: /b\n    stauts: 302\n")
    with pytest.raises(CommandError, match="waypost check exited with status 1") as caught:
        waypost("check")
    assert caught.value.returncode == 1


def test_a_usage_mistake_is_status_2() -> None:
    with pytest.raises(CommandError) as caught:
        waypost("resolve")
    assert caught.value.returncode == 2


def test_export_writes_another_format() -> None:
    out, err = waypost("export", "--format", "yaml")
    assert yaml.safe_load(out)["rules"][0]["to"] == "/live/"
    assert "5 exported, 0 not expressible in yaml" in err


def test_an_engine_in_the_settings_needs_rules_named(settings: Settings) -> None:
    from waypost import Engine

    settings.WAYPOST = {"RULES": Engine([])}
    with pytest.raises(CommandError, match="is an Engine, not a file: pass --rules FILE"):
        waypost("check")


def _rows(database: str) -> None:
    Site.objects.using(database).update_or_create(
        pk=1, defaults={"domain": "example.com", "name": "example"}
    )
    shop = Site.objects.using(database).create(domain="shop.example.com", name="shop")
    main = Site.objects.using(database).get(pk=1)
    Redirect.objects.using(database).create(site=main, old_path="/old-page/", new_path="/live/")
    Redirect.objects.using(database).create(site=main, old_path="/gone/", new_path="")
    Redirect.objects.using(database).create(site=shop, old_path="/sale/", new_path="/live/")


EXPECTED = [
    {
        "from": "/old-page",
        "to": "/live/",
        "status": 301,
        "query": "drop",
        "only_if_missing": True,
        "when": {"host": "example.com"},
    },
    {"from": "/gone", "respond": 410, "only_if_missing": True, "when": {"host": "example.com"}},
    {
        "from": "/sale",
        "to": "/live/",
        "status": 301,
        "query": "drop",
        "only_if_missing": True,
        "when": {"host": "shop.example.com"},
    },
]


def _imported(out: str) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = yaml.safe_load(out)["rules"]
    return rules


@pytest.mark.django_db
def test_import_reads_the_projects_redirect_rows_from_sqlite() -> None:
    _rows("default")
    out, err = waypost("import")
    assert _imported(out) == EXPECTED
    assert "read 3 redirects of django.contrib.redirects from the database" in err
    assert "(django-redirects): 3 imported, 0 skipped" in err


@pytest.mark.skipif(
    not os.environ.get("WAYPOST_TEST_POSTGRES_URL"),
    reason="set WAYPOST_TEST_POSTGRES_URL=postgresql://... to run against PostgreSQL",
)
@pytest.mark.django_db(databases=["default", "postgres"])
def test_import_reads_the_projects_redirect_rows_from_postgresql() -> None:
    _rows("postgres")
    out, _ = waypost("--database", "postgres", "import")
    assert _imported(out) == EXPECTED


@pytest.mark.django_db
def test_import_writes_a_rules_file_that_serves_them(tmp_path: Path) -> None:
    _rows("default")
    target = tmp_path / "imported.yaml"
    waypost("import", "-o", str(target))
    from waypost import Engine

    engine = Engine.from_file(target)
    assert engine.resolve("GET", "http://example.com/old-page/", stage="missing").location == (
        "/live/"
    )
    assert engine.resolve("GET", "http://shop.example.com/old-page/", stage="missing").action == (
        "pass"
    )


def test_import_of_a_file_is_waypost_import(write_rules: Callable[..., Path]) -> None:
    dump = write_rules(
        "dump.json",
        '[{"model": "redirects.redirect", "pk": 1, "fields": '
        '{"site": 1, "old_path": "/a/", "new_path": "/b/"}}]',
    )
    out, err = waypost("import", str(dump))
    assert _imported(out)[0]["to"] == "/b/"
    assert "dump.json (django-redirects): 1 imported" in err


def test_resolve_builds_a_route_target_with_reverse(use_rules: Callable[[str], Path]) -> None:
    use_rules(
        "rules:\n"
        "  - from: /u/<int:id>\n"
        "    to: {route: dashboard, user_id: '{id}'}\n"
        "    status: 302\n"
    )
    out, _ = waypost("resolve", "/u/7")
    assert out.startswith("redirect 302 /users/7/dashboard/"), out
