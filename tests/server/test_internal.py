"""What Waypost's own endpoints tell whom (issue #12), on real servers.

``/_waypost/health`` says only ``ok`` or ``degraded`` to anyone; its details (rule count,
revision, store, reason, pid) need a read API key or a signed-in session, or
``--public-health-details``. ``/_waypost/metrics`` (counts only) is public unless
``--no-public-metrics``, which needs ``--db`` (keys live in the store). The admin app's own
redirects never name the Host a client sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._servers import Server
from tests.server.serving import Served, raw_request, start_server
from waypost.engine import Engine
from waypost.follow.sources import StoreSource
from waypost.server.config import Settings
from waypost.server.core import WaypostServer
from waypost.store import open_store

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"
DETAILS = {"status", "rules", "revision", "loaded_at", "store", "reason", "pid", "stats"}


@pytest.fixture(scope="module")
def stored(module_tmp: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server following a SQLite store, and a key of each scope (plus a refused one)."""
    db = f"sqlite:///{module_tmp / 'secret-name.db'}"
    store = open_store(db)
    keys = {scope: store.create_key(scope, note="test")[1] for scope in ("read", "admin")}
    store.close()
    keys["refused"] = keys["read"][:-4] + "abcd"
    server = Server(db, str(EXAMPLE), "--no-public-metrics")
    yield server, keys
    server.stop()


@pytest.fixture(scope="module")
def plain(module_tmp: Path) -> Iterator[Served]:
    served = start_server(EXAMPLE, "--no-access-log", tmp=module_tmp)
    yield served
    served.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_issue_report_a_foreign_host_gets_a_relative_location(
    stored: tuple[Server, dict[str, str]],
) -> None:
    server, _ = stored
    for host in ("evil.example.com", "evil.example.com:666"):
        head = f"GET /_waypost/api/rules/?a=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        answer = raw_request(server.port, (head + "\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 307 "), answer
        assert b"\r\nlocation: /_waypost/api/rules?a=1\r\n" in answer.lower(), answer


def test_health_without_a_key_says_only_ok_or_degraded(
    stored: tuple[Server, dict[str, str]], plain: Served
) -> None:
    server, _ = stored
    for base in (server.base, plain.base):
        for head in (False, True):
            response = httpx.request("HEAD" if head else "GET", base + "/_waypost/health")
            assert response.status_code == 200
            assert response.headers["cache-control"] == "no-store"
            if not head:
                assert response.json() == {"status": "ok"}
    assert b"secret-name" not in httpx.get(server.base + "/_waypost/health").content


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ("read", 200),
        ("admin", 200),
        ("refused", 401),
    ],
    ids=["read-key", "admin-key", "refused-key"],
)
def test_health_with_a_key_has_the_details(
    stored: tuple[Server, dict[str, str]], credentials: str, status: int
) -> None:
    server, keys = stored
    response = httpx.get(server.base + "/_waypost/health", headers=_bearer(keys[credentials]))
    assert response.status_code == status, response.text
    if status == 200:
        data = response.json()
        assert set(data) == DETAILS
        assert (data["status"], data["rules"], data["reason"]) == ("ok", 8, None)
        assert "secret-name.db" in data["store"]
        assert response.headers["cache-control"] == "no-store"
    else:
        assert response.json()["error"] == "unauthorized"
        assert "rules" not in response.text


def test_health_for_a_signed_in_session_has_the_details(
    stored: tuple[Server, dict[str, str]],
) -> None:
    server, keys = stored
    with httpx.Client(base_url=server.base, timeout=5) as browser:
        signed = browser.post(
            "/_waypost/login",
            data={"key": keys["read"], "next": "/_waypost/health"},
            headers={"Accept": "text/html"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/_waypost/health"
        assert set(browser.get("/_waypost/health").json()) == DETAILS
    # An unrelated cookie is no credential: the public answer.
    other = httpx.get(server.base + "/_waypost/health", cookies={"theme": "dark"})
    assert other.json() == {"status": "ok"}


def test_metrics_need_a_key_when_not_public(
    stored: tuple[Server, dict[str, str]], plain: Served
) -> None:
    server, keys = stored
    refused = httpx.get(server.base + "/_waypost/metrics")
    assert refused.status_code == 401
    assert "waypost_requests_total" not in refused.text
    answered = httpx.get(server.base + "/_waypost/metrics", headers=_bearer(keys["read"]))
    assert answered.status_code == 200
    assert "waypost_requests_total" in answered.text
    assert (
        httpx.get(server.base + "/_waypost/metrics", headers=_bearer(keys["refused"])).status_code
        == 401
    )
    # Public by default: counts only, nothing about the rules file or the store.
    public = httpx.get(plain.base + "/_waypost/metrics")
    assert public.status_code == 200 and "waypost_rules_loaded" in public.text
    assert "rules.yaml" not in public.text and "sqlite" not in public.text


def test_health_details_in_public_when_asked(module_tmp: Path) -> None:
    served = start_server(EXAMPLE, "--no-access-log", "--public-health-details", tmp=module_tmp)
    try:
        data = httpx.get(served.base + "/_waypost/health").json()
    finally:
        served.stop()
    assert (data["status"], data["rules"]) == ("ok", 8)
    assert len(data["revision"]) == 12 and data["loaded_at"].endswith("Z")
    assert isinstance(data["pid"], int)


def test_private_metrics_need_a_store() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "serve", str(EXAMPLE), "--no-public-metrics"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "keys live in the rule store: serve with --db" in done.stderr


def test_degraded_health_does_not_say_why_without_a_key(tmp_path: Path) -> None:
    """The reason quotes the database's error and names it: for a read key only."""
    reason = "cannot reach the database at postgresql://waypost@db.internal/rules: refused"
    for public, expected in [
        (False, {"status": "degraded"}),
        (True, {"status": "degraded", "reason": reason}),
    ]:
        server = WaypostServer(
            Engine([]),
            Settings(access_log=False, public_health_details=public),
            source=StoreSource(f"sqlite:///{tmp_path / 'rules.db'}"),
        )
        assert server.store_sync is not None
        server.store_sync.degraded = reason  # as after a failed poll (never started here)
        request = server.request("GET", "/_waypost/health", "", [("host", "x")], "127.0.0.1")
        answer = server.answer(request, "127.0.0.1")
        assert answer.response is not None
        data = json.loads(answer.response.body)
        assert {k: v for k, v in data.items() if k in expected} == expected
        assert ("db.internal" in answer.response.body.decode()) is public
