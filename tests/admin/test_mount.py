"""The admin app inside a user's FastAPI app (mounted, behind a root_path), and on a real
uvicorn server (as a user's own app would run it; `waypost serve` itself no longer uses uvicorn,
so it is a test tool, skipped where it is not installed)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.admin.admin_support import make_keys
from waypost.admin import create_admin_app
from waypost.store._sql import SqlStore


def test_mounted_in_a_fastapi_app_under_a_root_path(sqlite_store: SqlStore) -> None:
    keys = make_keys(sqlite_store)
    outer = FastAPI()

    @outer.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    outer.mount("/_waypost", create_admin_app(sqlite_store))
    with TestClient(outer, root_path="/site", follow_redirects=False) as client:
        assert client.get("/site/hello").json() == {"hello": "world"}
        base = "/site/_waypost"
        created = client.post(
            f"{base}/api/rules",
            json={"rule": {"from": "/a", "to": "/b"}},
            headers=keys.bearer("write"),
        )
        assert created.status_code == 201
        assert created.headers["location"] == f"{base}/api/rules/{created.json()['id']}"
        assert client.get(created.headers["location"], headers=keys.bearer("read")).json()[
            "rule"
        ] == {"from": "/a", "to": "/b"}
        browser = {"Accept": "text/html"}
        sent = client.get(f"{base}/api/rules", headers=browser)
        assert sent.status_code == 303
        login = urlsplit(sent.headers["location"])
        assert login.path == f"{base}/login"
        assert parse_qs(login.query)["next"] == [f"{base}/api/rules"]
        page = client.get(sent.headers["location"], headers=browser)
        assert f'action="{base}/login"' in page.text
        signed = client.post(
            f"{base}/login", data={"key": keys.read, "next": f"{base}/api/rules"}, headers=browser
        )
        assert signed.headers["location"] == f"{base}/api/rules"
        assert f"Path={base}" in signed.headers["set-cookie"]
        assert client.get(f"{base}/api/rules", headers=browser).status_code == 200
        document = client.get(f"{base}/api/openapi.json").json()
        assert "/api/rules" in document["paths"]
        assert document["servers"] == [{"url": base}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(sqlite_store: SqlStore) -> Iterator[tuple[str, SqlStore]]:
    """The admin app mounted at /_waypost on uvicorn, on a free port of 127.0.0.1."""
    uvicorn = pytest.importorskip("uvicorn")
    outer = FastAPI()
    outer.mount("/_waypost", create_admin_app(sqlite_store))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            outer, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/_waypost", sqlite_store
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_on_a_real_uvicorn_server(served: tuple[str, SqlStore]) -> None:
    base, store = served
    keys = make_keys(store)
    with httpx.Client(base_url=base) as client:
        refused = client.get("/api/rules")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        _, public, secret = keys.write.split("_", 2)
        pair = {"X-API-Key": public, "X-Secret-Token": secret}
        created = client.post("/api/rules", json={"rule": {"from": "/a", "to": "/b"}}, headers=pair)
        assert created.status_code == 201, created.text
        decision = client.get("/api/resolve", params={"url": "/a"}, headers=pair).json()
        assert decision["location"] == "/b"
        stale = client.delete(
            f"/api/rules/{created.json()['id']}", headers={**pair, "If-Match": '"0"'}
        )
        assert stale.status_code == 409
