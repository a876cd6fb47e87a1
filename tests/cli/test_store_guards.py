"""Guards through the command line's store paths, on SQLite and PostgreSQL: a guarded rules file
goes in with ``waypost db import`` and ``waypost import --db`` (each mode combining guards as
the store does), comes out with ``waypost db export`` and ``waypost export --db --format yaml``
as a file that loads as the same rule set, and ``waypost export --db`` to another format
refuses it (no guard dropped)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from tests.guards.conftest import htpasswd_line
from waypost.cli import main
from waypost.rules.load import read_rules
from waypost.store import open_store

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
GUARDED = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  login:
    session: {secret_env: FLASK_SECRET_KEY}
    login_url: /login
rules:
  - from: /admin/<path:rest>
    require: staff
  - from: /reports/<path:rest>
    require: [staff, login]
    login_url: /reports-login
    rewrite: /internal/reports/{rest}
  - from: /old
    to: /new
"""
MORE = """\
guards:
  partners:
    api_key: {audience: partners}
rules:
  - from: /api/partners/<path:rest>
    require: partners
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An upgraded, empty store on SQLite and on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rules.db'}"
    else:
        schema = request.getfixturevalue("postgres_schema")
        assert POSTGRES_URL is not None
        separator = "&" if "?" in POSTGRES_URL else "?"
        url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    assert run("db", "upgrade", "--db", url).exit_code == 0
    return url


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    (folder / "rules.yaml").write_text(GUARDED)
    (folder / "more.yaml").write_text(MORE)
    return folder


def meaning(path: Path) -> tuple[Any, ...]:
    ruleset, errors = read_rules(path)
    assert not errors, errors
    return (
        [rule.to_mapping() for rule in ruleset.rules],
        sorted((g.name, g.kind, sorted(g.options.items()), g.login_url) for g in ruleset.guards),
    )


def guards(url: str) -> dict[str, Any]:
    with open_store(url) as store:
        return dict(store.get_settings().guards)


@pytest.mark.parametrize(
    "command",
    [("db", "import"), ("import",)],
    ids=["db-import", "import-db"],
)
def test_a_guarded_file_goes_in_and_comes_out_the_same(
    db: str, site: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    imported = run(*command, str(site / "rules.yaml"), "--db", db)
    assert imported.exit_code == 0, imported.output
    assert set(guards(db)) == {"staff", "login"}
    assert guards(db)["staff"]["basic"]["htpasswd"] == str(site / "staff.htpasswd")

    out = tmp_path / "elsewhere"
    out.mkdir()
    for name, args in (
        ("db-export.yaml", ("db", "export", "--db", db, "-o")),
        ("export.yaml", ("export", "--db", db, "--format", "yaml", "-o")),
    ):
        exported = run(*args, str(out / name))
        assert exported.exit_code == 0, exported.output
        assert meaning(out / name) == meaning(site / "rules.yaml"), name


@pytest.mark.parametrize(
    ("mode", "expected", "exit_code"),
    [
        ("merge", {"staff", "login", "partners"}, 0),
        ("append", {"staff", "login", "partners"}, 0),
        ("replace", {"partners"}, 0),
    ],
)
def test_import_modes_combine_guards(
    db: str, site: Path, mode: str, expected: set[str], exit_code: int
) -> None:
    assert run("db", "import", str(site / "rules.yaml"), "--db", db).exit_code == 0
    result = run("db", "import", str(site / "more.yaml"), "--db", db, "--mode", mode, "--yes")
    assert result.exit_code == exit_code, result.output
    assert "guard partners added" in result.output
    assert set(guards(db)) == expected


def test_append_reports_a_guard_declared_otherwise(db: str, site: Path) -> None:
    assert run("db", "import", str(site / "rules.yaml"), "--db", db).exit_code == 0
    other = site / "other.yaml"
    other.write_text("guards:\n  staff:\n    basic: {htpasswd: /srv/other.htpasswd}\nrules: []\n")
    result = CliRunner().invoke(main, ["db", "import", str(other), "--db", db, "--mode", "append"])
    assert result.exit_code != 0
    assert "guards.staff" in result.output
    assert "declares guard 'staff' otherwise" in result.output
    assert guards(db)["staff"]["basic"]["htpasswd"] == str(site / "staff.htpasswd")


@pytest.mark.parametrize("fmt", ["netlify", "nginx"])
def test_export_to_another_format_refuses_a_guarded_store(db: str, site: Path, fmt: str) -> None:
    assert run("db", "import", str(site / "rules.yaml"), "--db", db).exit_code == 0
    result = CliRunner().invoke(main, ["export", "--db", db, "--format", fmt])
    assert result.exit_code == 1
    assert "not exported: it requires a guard" in result.output
    assert f"cannot be exported as {fmt}" in result.output


def test_db_export_prints_the_guards(db: str, site: Path) -> None:
    assert run("db", "import", str(site / "rules.yaml"), "--db", db).exit_code == 0
    document = yaml.safe_load(run("db", "export", "--db", db).output)
    assert list(document) == ["guards", "rules"]
    assert document["rules"][0] == {"from": "/admin/<path:rest>", "require": "staff"}
