"""Guards in the rule store, served: a guarded rules file is read into the store (its relative
paths made absolute), `waypost serve FILE --db URL` seeds an empty store with it and serves the
guards (a `basic` guard, and an `api_key` guard with the server's key ring), and a guard changed
through the store reaches the serving server within seconds (SQLite and PostgreSQL); a change the
server cannot build keeps the previous guards serving, and health says why."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.guards.conftest import htpasswd_line
from tests.server.serving import Served, Upstream, start_server
from waypost.store import open_store
from waypost.store.transfer import read_document

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")

RULES = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, realm: Staff}
  partners:
    # The test waits for a new key by asking: its refusals must not add up to a 429.
    api_key: {audience: partners, max_failures: 1000}
rules:
  - from: /old
    to: /new
  - from: /admin/<path:rest>
    require: staff
  - from: /admin/secret
    to: /treasure
  - from: /api/partners/<path:rest>
    require: partners
"""


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def seconds_until(check: Callable[[], bool], limit: float = 5.0) -> float:
    """How long until ``check()`` holds (polled), or infinity past ``limit`` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            return float("inf")
        time.sleep(0.05)
    return time.monotonic() - start


def write_site(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = folder / "rules.yaml"
    rules.write_text(RULES)
    return rules


def test_a_guarded_file_is_read_into_the_store_with_absolute_paths(tmp_path: Path) -> None:
    rules = write_site(tmp_path / "site")
    document = read_document(rules)
    assert document.guards == {
        "staff": {
            "basic": {"htpasswd": str(tmp_path / "site" / "staff.htpasswd"), "realm": "Staff"}
        },
        "partners": {"api_key": {"audience": "partners", "max_failures": 1000}},
    }
    assert document.rules[1] == {"from": "/admin/<path:rest>", "require": "staff"}


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty rule store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'waypost.db'}"
    schema = request.getfixturevalue("postgres_schema")
    assert POSTGRES_URL is not None  # postgres_schema skipped otherwise
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with open_store(url) as store:  # a server does not upgrade a PostgreSQL schema itself
        store.upgrade()
    return url


@pytest.fixture
def served(db: str, tmp_path: Path, upstream: Upstream) -> Iterator[Served]:
    rules = write_site(tmp_path / "site")
    server = start_server(
        rules,
        "--db",
        db,
        "--upstream",
        upstream.url,
        "--public-health-details",
        "--no-access-log",
        tmp=tmp_path,
    )
    yield server
    server.stop()


def test_serve_seeds_an_empty_store_and_serves_its_guards(db: str, served: Served) -> None:
    with open_store(db) as store:
        snapshot = store.load_snapshot()
        assert set(snapshot.guards) == {"staff", "partners"}
        _, whole = store.create_key(None, audiences=["partners"], note="ACME")

    assert httpx.get(served.base + "/old").headers["location"] == "/new"
    denied = httpx.get(served.base + "/admin/secret")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == 'Basic realm="Staff", charset="UTF-8"'
    assert (
        httpx.get(served.base + "/admin/secret", headers=basic("ann", "wrong")).status_code == 401
    )
    allowed = httpx.get(served.base + "/admin/secret", headers=basic("ann", "s3cret"))
    assert (allowed.status_code, allowed.headers["location"]) == (301, "/treasure")

    # The api_key guard checks the server's key ring: a key made in the store after it started.
    key = {"Authorization": f"Bearer {whole}"}
    assert httpx.get(served.base + "/api/partners/x").status_code == 401
    elapsed = seconds_until(
        lambda: httpx.get(served.base + "/api/partners/x", headers=key).status_code == 200
    )
    assert elapsed < 5.0


def test_a_guard_changed_in_the_store_reaches_the_server(
    db: str, served: Served, tmp_path: Path
) -> None:
    other = tmp_path / "other.htpasswd"
    other.write_text(htpasswd_line("bob", "hunter2") + "\n")
    url = served.base + "/admin/secret"
    assert httpx.get(url, headers=basic("ann", "s3cret")).status_code == 301
    with open_store(db) as store:
        guards = dict(store.get_settings().guards)
        store.set_settings(
            guards={**guards, "staff": {"basic": {"htpasswd": str(other), "realm": "Staff"}}},
            message="bob instead of ann",
        )
        changed = store.current_revision()
    elapsed = seconds_until(
        lambda: httpx.get(url, headers=basic("bob", "hunter2")).status_code == 301
    )
    assert elapsed < 5.0, served.stderr()
    assert httpx.get(url, headers=basic("ann", "s3cret")).status_code == 401
    health = httpx.get(served.base + "/_waypost/health").json()
    assert (health["status"], health["revision"]) == ("ok", changed)

    # A file this server cannot read: the store takes the declaration (it is well formed), the
    # server keeps the guards it has and says why; the next good revision loads.
    missing = tmp_path / "missing.htpasswd"
    with open_store(db) as store:
        store.set_settings(guards={**guards, "staff": {"basic": {"htpasswd": str(missing)}}})
    elapsed = seconds_until(
        lambda: httpx.get(served.base + "/_waypost/health").json()["status"] == "degraded"
    )
    assert elapsed < 5.0, served.stderr()
    health = httpx.get(served.base + "/_waypost/health").json()
    assert "cannot read the htpasswd file" in str(health)
    assert httpx.get(url, headers=basic("bob", "hunter2")).status_code == 301
    with open_store(db) as store:
        store.rollback(changed)
    elapsed = seconds_until(
        lambda: httpx.get(served.base + "/_waypost/health").json()["status"] == "ok"
    )
    assert elapsed < 5.0, served.stderr()
    assert httpx.get(url, headers=basic("bob", "hunter2")).status_code == 301


def test_removing_every_guard_through_the_store_serves_the_area_open_only_with_its_rule_gone(
    db: str, served: Served
) -> None:
    url = served.base + "/admin/secret"
    with open_store(db) as store:
        snapshot = store.load_snapshot()
        kept = [rule for rule in snapshot.rules if "require" not in rule]
        store.replace_rules(kept, message="open up")
        assert store.get_settings().guards == {}
    elapsed = seconds_until(lambda: httpx.get(url).status_code == 301)
    assert elapsed < 5.0, served.stderr()
