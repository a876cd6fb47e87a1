"""`waypost serve --db`: real servers following a real rule store (SQLite and PostgreSQL).

A committed change must reach every instance within a second; an unreachable database leaves
the last snapshot serving with health 'degraded', and the server recovers by itself.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from tests._servers import Server, free_port
from waypost.store import open_store

EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.yaml"
POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")


def _seconds_until(check: Callable[[], bool], limit: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            return float("inf")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    running: list[Server] = []
    yield running
    for server in running:
        server.stop()


def test_sqlite_store_is_seeded_and_followed(tmp_path: Path, servers: list[Server]) -> None:
    db = f"sqlite:///{tmp_path / 'waypost.db'}"
    server = Server(db, str(EXAMPLE), "--public-health-details")
    servers.append(server)
    assert server.health()["revision"] == 1
    assert server.location("/old-page") == "/new-page"

    store = open_store(db)
    store.replace_rules([{"from": "/old-page", "to": "/moved"}], message="edit")
    store.close()
    elapsed = _seconds_until(lambda: server.location("/old-page") == "/moved")
    assert elapsed < 1.0
    health = server.health()
    assert (health["status"], health["revision"], health["rules"]) == ("ok", 2, 1)


def test_seed_is_ignored_once_the_store_has_rules(tmp_path: Path, servers: list[Server]) -> None:
    db = f"sqlite:///{tmp_path / 'waypost.db'}"
    store = open_store(db)
    store.replace_rules([{"from": "/a", "to": "/b"}], message="mine")
    store.close()
    server = Server(db, str(EXAMPLE), "--public-health-details")
    servers.append(server)
    assert server.health()["rules"] == 1  # the file did not overwrite the team's rules


@pytest.fixture
def postgres_url(postgres_schema: str) -> str:
    """A PostgreSQL URL whose connections work in a fresh schema, upgraded."""
    assert POSTGRES_URL is not None  # postgres_schema skipped otherwise
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{postgres_schema}"
    store = open_store(url)
    store.upgrade()
    store.close()
    return url


def test_two_instances_sharing_postgres_see_each_change_within_a_second(
    postgres_url: str, servers: list[Server]
) -> None:
    first = Server(postgres_url, str(EXAMPLE))
    servers.append(first)
    second = Server(postgres_url, "--workers", "2")
    servers.append(second)
    assert first.location("/old-page") == second.location("/old-page") == "/new-page"

    store = open_store(postgres_url)
    try:
        for number in range(3):
            target = f"/edit-{number}"
            store.replace_rules([{"from": "/old-page", "to": target}], message=target)
            for server in (first, second):
                # Several asks, so that with two workers both have been seen to change.
                elapsed = _seconds_until(
                    lambda s=server, t=target: all(s.location("/old-page") == t for _ in range(4))
                )
                assert elapsed < 1.0, f"{server.base} took {elapsed:.2f}s for {target}"
    finally:
        store.close()


class _TcpProxy:
    """A TCP forwarder to PostgreSQL that a test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # Wakes the thread blocked in accept(), so the port is free again.
                with suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_unreachable_database_keeps_serving_degraded_and_recovers(
    postgres_url: str, servers: list[Server]
) -> None:
    parsed = httpx.URL(postgres_url)
    proxy = _TcpProxy((parsed.host, parsed.port or 5432))
    proxy.start()
    proxied = postgres_url.replace(
        f"{parsed.host}:{parsed.port or 5432}", f"127.0.0.1:{proxy.port}"
    )
    server = Server(proxied, str(EXAMPLE), "--public-health-details")
    servers.append(server)
    assert server.health()["status"] == "ok"

    proxy.cut()
    assert _seconds_until(lambda: server.health()["status"] == "degraded", limit=10) < 10
    health = server.health()
    assert health["reason"]
    assert server.location("/old-page") == "/new-page"  # the last snapshot keeps serving

    store = open_store(postgres_url)  # a change made while this server cannot see the database
    store.replace_rules([{"from": "/old-page", "to": "/after-outage"}], message="during outage")
    store.close()
    proxy.start()
    assert _seconds_until(lambda: server.location("/old-page") == "/after-outage", limit=15) < 15
    assert server.health()["status"] == "ok"
    proxy.cut()


def test_a_change_through_one_instances_admin_api_reaches_the_other(
    postgres_url: str, servers: list[Server]
) -> None:
    store = open_store(postgres_url)
    _, key = store.create_key("write", note="test")
    store.close()
    first = Server(postgres_url, str(EXAMPLE))
    servers.append(first)
    second = Server(postgres_url)
    servers.append(second)
    auth = {"Authorization": f"Bearer {key}"}

    created = httpx.post(
        first.base + "/_waypost/api/rules",
        json={"rule": {"from": "/vanity", "to": "/campaign/winter", "status": 302}},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    elapsed = _seconds_until(lambda: second.location("/vanity") == "/campaign/winter")
    assert elapsed < 1.0

    # A stale If-Match is refused with the current state; nothing is overwritten.
    rule_id, etag = created.json()["id"], created.headers["etag"]
    fresh = httpx.patch(
        first.base + f"/_waypost/api/rules/{rule_id}",
        json={"rule": {"to": "/campaign/spring"}},
        headers={**auth, "If-Match": etag},
    )
    assert fresh.status_code == 200, fresh.text
    stale = httpx.patch(
        second.base + f"/_waypost/api/rules/{rule_id}",
        json={"rule": {"to": "/campaign/autumn"}},
        headers={**auth, "If-Match": etag},
    )
    assert stale.status_code == 409
    assert _seconds_until(lambda: second.location("/vanity") == "/campaign/spring") < 1.0
    unauthenticated = httpx.get(second.base + "/_waypost/api/rules")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("trusted", "expected"), [(None, "127.0.0.1"), ("127.0.0.1/32", "203.0.113.9")]
)
def test_admin_sign_in_sees_the_client_behind_a_trusted_proxy(
    tmp_path: Path, servers: list[Server], trusted: str | None, expected: str
) -> None:
    """Sessions record, and sign-in failures are counted for, the real client: X-Forwarded-For
    is believed only from a trusted proxy, as for rule conditions."""
    db = f"sqlite:///{tmp_path / 'rules.db'}"
    store = open_store(db)
    _, key = store.create_key("read", note="test")
    _, admin = store.create_key("admin", note="test")
    store.close()
    args = ["--trusted-proxies", trusted] if trusted else []
    server = Server(db, str(EXAMPLE), *args)
    servers.append(server)
    forwarded = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "probe/1"}
    signed = httpx.post(
        server.base + "/_waypost/login",
        data={"key": key, "next": "/_waypost/api/rules"},
        headers={**forwarded, "Accept": "text/html"},
    )
    assert signed.status_code == 303, signed.text
    listed = httpx.get(
        server.base + "/_waypost/api/sessions", headers={"Authorization": f"Bearer {admin}"}
    )
    assert listed.status_code == 200, listed.text
    [session] = [s for s in listed.json() if s.get("user_agent") == "probe/1"]
    assert (session["client_address"], session["user_agent"]) == (expected, "probe/1")
