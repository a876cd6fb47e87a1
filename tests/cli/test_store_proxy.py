"""Proxy rules through the command line's store paths, on SQLite and PostgreSQL: a Netlify
``_redirects`` with a proxy line imported with ``waypost import --db`` brings its origin into the
store's ``proxy_hosts``; ``waypost export --db --format yaml`` and ``waypost db export`` write
them, so ``waypost resolve`` on the export proxies; a Waypost file's ``proxy_hosts`` go in with
``waypost import --db`` and ``waypost db import`` in each mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from waypost.cli import main
from waypost.store import open_store

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")
NETLIFY = "/api/* https://api.example.com/:splat 200\n/old /new 301\n"
WAYPOST = """\
proxy_hosts: [files.example.com]
rules:
  - from: /files/<path:rest>
    rewrite: https://files.example.com/{rest}
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


def proxy_hosts(url: str) -> tuple[str, ...]:
    with open_store(url) as store:
        return store.get_settings().proxy_hosts


def test_a_netlify_proxy_imported_into_the_store_resolves_as_a_proxy(
    db: str, tmp_path: Path
) -> None:
    redirects = tmp_path / "_redirects"
    redirects.write_text(NETLIFY, encoding="utf-8")
    imported = run("import", str(redirects), "--db", db)
    assert imported.exit_code == 0, imported.output
    assert "2 rules imported as revision 1" in imported.stderr
    assert proxy_hosts(db) == ("api.example.com",)

    exported = tmp_path / "exported.yaml"
    result = run("export", "--db", db, "--format", "yaml", "-o", str(exported))
    assert result.exit_code == 0, result.output
    assert "proxy_hosts:\n- api.example.com\n" in exported.read_text(encoding="utf-8")
    resolved = run("resolve", str(exported), "/api/users/1?x=2")
    assert resolved.exit_code == 0, resolved.output
    assert resolved.stdout.startswith("proxy https://api.example.com/users/1?x=2")

    dumped = run("db", "export", "--db", db)
    assert "proxy_hosts:\n- api.example.com\n" in dumped.stdout
    # The same file again changes nothing, settings included.
    again = run("import", str(redirects), "--db", db)
    assert "no changes; the store stays at revision 1" in again.stderr


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("merge", ("files.example.com", "api.example.com")),
        ("append", ("files.example.com", "api.example.com")),
        ("replace", ("api.example.com",)),
    ],
    ids=["merge-adds", "append-adds", "replace-takes-the-files"],
)
def test_netlify_proxy_origins_follow_the_import_mode(
    db: str, tmp_path: Path, mode: str, expected: tuple[str, ...]
) -> None:
    rules = tmp_path / "rules.yaml"
    # The stored rules are tried in the Netlify file's order, so that merge and append apply.
    rules.write_text("defaults: {order: first_match}\n" + WAYPOST, encoding="utf-8")
    assert run("db", "import", str(rules), "--db", db).exit_code == 0
    redirects = tmp_path / "_redirects"
    redirects.write_text(NETLIFY, encoding="utf-8")
    imported = run("import", str(redirects), "--db", db, "--mode", mode, "--yes")
    assert imported.exit_code == 0, imported.output
    assert proxy_hosts(db) == expected


@pytest.mark.parametrize("command", [["import"], ["db", "import"]], ids=["import", "db-import"])
def test_a_waypost_file_brings_its_proxy_hosts(db: str, tmp_path: Path, command: list[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WAYPOST, encoding="utf-8")
    imported = run(*command, str(rules), "--db", db)
    assert imported.exit_code == 0, imported.output
    assert proxy_hosts(db) == ("files.example.com",)
    exported = tmp_path / "exported.yaml"
    assert run("export", "--db", db, "--format", "yaml", "-o", str(exported)).exit_code == 0
    assert run("resolve", str(exported), "/files/a.txt").stdout.startswith(
        "proxy https://files.example.com/a.txt"
    )


def test_a_proxy_to_an_unlisted_host_is_refused_in_the_loaders_words(
    db: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(WAYPOST.replace("[files.example.com]", "[other.example.com]"), "utf-8")
    refused = CliRunner().invoke(main, ["db", "import", str(rules), "--db", db])
    assert refused.exit_code == 1
    assert "proxies the request to 'files.example.com'" in refused.output
    assert "Traceback" not in refused.output
    assert proxy_hosts(db) == ()
