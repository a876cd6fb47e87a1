"""The api_key guard through the standalone server: keys made with `waypost keys create`,
real HTTP on 127.0.0.1, an upstream behind it; revocation across two servers on one
PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.server.serving import Served, Upstream, start_server

# The seed: a route behind X-API-Key + X-Secret-Token, bound to a domain, that answers a JSON
# client 401 JSON and a browser a redirect to /login?next=...
RULES = """
guards:
  partners:
    # The tests wait for new keys by asking: their refusals must not add up to a 429.
    api_key: {audience: partners, max_failures: 1000}
rules:
  - from: /api/partners/<path:rest>
    require: partners
    login_url: /login
  - from: /api/partners/old
    to: /api/partners/new
"""
HOST = "api.example.com"
BROWSER = {"Accept": "text/html", "Host": HOST}
JSON = {"Accept": "application/json", "Host": HOST}


def waypost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WAYPOST_")}
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=60,
        check=False,
    )


def create_key(db: str, *args: str) -> tuple[str, str, str]:
    """`waypost keys create ARGS --db DB`: (key id, secret, whole key)."""
    made = waypost("keys", "create", *args, "--db", db)
    assert made.returncode == 0, made.stderr
    whole = made.stdout.strip()
    _, key_id, secret = whole.split("_", 2)
    return key_id, secret, whole


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture(scope="module")
def keys_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = f"sqlite:///{tmp_path_factory.mktemp('keys') / 'keys.db'}"
    assert waypost("db", "upgrade", "--db", db).returncode == 0
    return db


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, keys_db: str
) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("api_key")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    served = start_server(
        rules, "--upstream", upstream.url, "--keys", keys_db, "--no-access-log", tmp=tmp
    )
    yield served
    served.stop()


def accepted(served: Served, headers: dict[str, str]) -> None:
    """Wait (<= 5 s) until the server lets ``headers`` in: a key made by another process
    reaches a running server at its next look at the store (every second)."""
    deadline = time.monotonic() + 5
    while httpx.get(served.base + "/api/partners/x", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the new key was not accepted within 5 s"
        time.sleep(0.05)


def echoed_headers(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {name: value for name, value in response.json()["headers"]}


def test_the_seed_scenario(served: Served, keys_db: str) -> None:
    key_id, secret, whole = create_key(keys_db, "--audience", "partners", "--host", HOST)
    url = served.base + "/api/partners/orders?page=2"

    refused = httpx.get(url, headers=JSON)
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "unauthorized",
        "message": "this page needs you to log in",
    }
    assert refused.headers["www-authenticate"] == 'Bearer realm="partners"'

    browser = httpx.get(url, headers=BROWSER)
    assert (browser.status_code, browser.headers["location"]) == (
        302,
        "/login?next=/api/partners/orders%3Fpage%3D2",
    )

    pair = {**JSON, "X-API-Key": key_id, "X-Secret-Token": secret}
    accepted(served, pair)
    # What the client claims about itself never reaches the upstream.
    forged = {"X-Waypost-User": "root", "X-Waypost-Key-Id": "admin", "X-Waypost-Guard": "x"}
    seen = echoed_headers(httpx.get(url, headers={**pair, **forged}))
    assert (seen["x-waypost-user"], seen["x-waypost-key-id"], seen["x-waypost-guard"]) == (
        key_id,
        key_id,
        "partners",
    )
    assert echoed_headers(httpx.get(url, headers={**JSON, "Authorization": f"Bearer {whole}"}))

    # Bound to its domain: the same key for another host is known but not allowed.
    other_host = httpx.get(url, headers={**pair, "Host": "other.example"})
    assert other_host.status_code == 403
    assert other_host.json()["error"] == "forbidden"

    # An exact redirect inside the guarded area needs the key too.
    assert httpx.get(served.base + "/api/partners/old", headers=JSON).status_code == 401
    moved = httpx.get(served.base + "/api/partners/old", headers=pair)
    assert (moved.status_code, moved.headers["location"]) == (301, "/api/partners/new")

    # In the URL, a key is refused with where to put it.
    in_query = httpx.get(served.base + f"/api/partners/x?api_key={whole}", headers=BROWSER)
    assert in_query.status_code == 401
    assert "X-Secret-Token" in in_query.text


def test_an_admin_key_opens_no_guarded_path_and_an_access_key_no_admin_api(
    served: Served, keys_db: str
) -> None:
    _, _, admin = create_key(keys_db, "--scope", "admin")
    time.sleep(1.5)  # past the server's next look at the store
    guarded = httpx.get(
        served.base + "/api/partners/x", headers={**JSON, "Authorization": f"Bearer {admin}"}
    )
    assert guarded.status_code == 401
    _, _, access = create_key(keys_db, "--audience", "partners")
    accepted(served, {**JSON, "Authorization": f"Bearer {access}"})
    listed = waypost("keys", "list", "--db", keys_db)
    assert "partners" in listed.stdout
    # Both: an admin key given the audience opens the guarded path as well.
    _, _, both = create_key(keys_db, "--scope", "read", "--audience", "partners")
    accepted(served, {**JSON, "Authorization": f"Bearer {both}"})
    assert echoed_headers(
        httpx.get(
            served.base + "/api/partners/x", headers={**JSON, "Authorization": f"Bearer {both}"}
        )
    )
    assert echoed_headers(
        httpx.get(
            served.base + "/api/partners/x", headers={**JSON, "Authorization": f"Bearer {access}"}
        )
    )


def test_without_a_store_an_api_key_guard_is_a_clear_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    checked = waypost("serve", str(rules), "--port", "1")
    assert checked.returncode == 1
    assert "an 'api_key' guard checks the access keys of a rule store" in checked.stderr
    assert "Traceback" not in checked.stderr


def test_no_access_key_gives_a_usage_error_naming_both_options(keys_db: str) -> None:
    made = waypost("keys", "create", "--db", keys_db)
    assert made.returncode == 2
    assert "--scope" in made.stderr and "--audience" in made.stderr


# -- two instances on one PostgreSQL ---------------------------------------------------------


@pytest.fixture
def postgres_keys(postgres_schema: str) -> str:
    assert POSTGRES_URL is not None  # postgres_schema skipped otherwise
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{postgres_schema}"
    assert waypost("db", "upgrade", "--db", url).returncode == 0
    return url


def test_a_revoked_key_stops_working_on_every_instance_within_five_seconds(
    tmp_path: Path, upstream: Upstream, postgres_keys: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    instances = [
        start_server(
            rules,
            "--upstream",
            upstream.url,
            "--keys",
            postgres_keys,
            "--no-access-log",
            *extra,
            tmp=tmp_path,
        )
        for extra in ((), ("--workers", "2"))
    ]
    try:
        key_id, _, whole = create_key(postgres_keys, "--audience", "partners")
        headers = {**JSON, "Authorization": f"Bearer {whole}"}

        def statuses() -> list[int]:
            # Several requests each: with two workers, both must have the news.
            return [
                httpx.get(s.base + "/api/partners/x", headers=headers).status_code
                for s in instances
                for _ in range(4)
            ]

        deadline = time.monotonic() + 5
        while set(statuses()) != {200}:  # a new key is let in within seconds as well
            assert time.monotonic() < deadline, statuses()
            time.sleep(0.1)
        revoked = waypost("keys", "revoke", key_id, "--db", postgres_keys)
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        while set(statuses()) != {401}:
            assert time.monotonic() - started < 5, statuses()
            time.sleep(0.1)
        took = time.monotonic() - started
        assert took < 5
        # Last use reached the database (written in batches by each instance, never per request).
        for served in instances:
            served.stop()
        listed = waypost("keys", "list", "--json", "--db", postgres_keys)
        assert '"last_used_at": null' not in listed.stdout.split(key_id, 1)[1].split("}", 1)[0]
    finally:
        for served in instances:
            served.stop()
