"""The api_key guard behind both middlewares (FastAPI and Flask), with keys from a real rule
store (SQLite, and PostgreSQL when configured): the seed scenario in process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, request

from tests.conftest import StoreFactory
from waypost import Engine
from waypost.middleware._common import GuardIdentity
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware
from waypost.store._sql import SqlStore

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

HOST = "api.example.com"
JSON = {"Accept": "application/json", "Host": HOST}
BROWSER = {"Accept": "text/html", "Host": HOST}
FORGED = {"X-Waypost-User": "root", "X-Waypost-Key-Id": "admin", "X-Waypost-Guard": "partners"}
RULES: list[dict[str, Any]] = [
    {"from": "/api/partners/<path:rest>", "require": "partners", "login_url": "/login"},
    {"from": "/api/partners/old", "to": "/api/partners/new"},
]


def fastapi_client(engine: Engine) -> TestClient:
    app = FastAPI()

    @app.get("/{path:path}")
    def echo(path: str, req: Request) -> dict[str, Any]:
        user = req.scope.get("user")
        return {
            "key_header": req.headers.get("x-waypost-key-id"),
            "user_header": req.headers.get("x-waypost-user"),
            "identity": repr(user) if user is not None else None,
        }

    app.add_middleware(AsgiMiddleware, rules=engine)
    return TestClient(app, follow_redirects=False, base_url=f"http://{HOST}")


def flask_client(engine: Engine) -> Any:
    app = Flask(__name__)

    @app.get("/<path:path>")
    def echo(path: str) -> dict[str, Any]:
        identity = request.environ.get("waypost.identity")
        return {
            "key_header": request.headers.get("X-Waypost-Key-Id"),
            "user_header": request.headers.get("X-Waypost-User"),
            "identity": repr(identity) if identity is not None else None,
        }

    app.wsgi_app = WsgiMiddleware(app.wsgi_app, engine)  # type: ignore[method-assign]
    return app.test_client()


def data_of(response: Any) -> Any:
    return response.json() if callable(response.json) else response.json


@pytest.fixture
def store(make_store: StoreFactory) -> SqlStore:
    opened = make_store()
    opened.upgrade()
    return opened


@pytest.fixture
def engine(store: SqlStore) -> Iterator[Engine]:
    ring = store.keyring(refresh=0.1)
    yield Engine(RULES, guards={"partners": {"api_key": {"audience": "partners"}}}, keys=ring)
    ring.close()


@pytest.fixture(params=["fastapi", "flask"])
def client(request: pytest.FixtureRequest, engine: Engine) -> Any:
    return fastapi_client(engine) if request.param == "fastapi" else flask_client(engine)


def test_the_seed_scenario(client: Any, store: SqlStore) -> None:
    key, whole = store.create_key(None, audiences=["partners"], host=HOST)
    _, key_id, secret = whole.split("_", 2)
    pair = {"X-API-Key": key_id, "X-Secret-Token": secret}

    refused = client.get("/api/partners/orders", headers=JSON)
    assert refused.status_code == 401
    assert data_of(refused)["error"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="partners"'

    browser = client.get("/api/partners/orders?page=2", headers=BROWSER)
    assert (browser.status_code, browser.headers["Location"]) == (
        302,
        "/login?next=/api/partners/orders%3Fpage%3D2",
    )

    for credentials in (pair, {"Authorization": f"Bearer {whole}"}):
        data = data_of(
            client.get("/api/partners/orders", headers={**JSON, **credentials, **FORGED})
        )
        assert (data["key_header"], data["user_header"]) == (key.id, key.id)
        assert data["identity"] == repr(GuardIdentity(key.id, ("partners",), key.id))

    other_host = client.get("/api/partners/orders", headers={**JSON, **pair, "Host": "evil.test"})
    assert other_host.status_code == 403

    moved = client.get("/api/partners/old", headers={**JSON, **pair})
    assert (moved.status_code, moved.headers["Location"]) == (301, "/api/partners/new")

    # Revoked in this process: refused at the very next request.
    store.revoke_key(key.id)
    assert client.get("/api/partners/orders", headers={**JSON, **pair}).status_code == 401


def test_a_forged_key_id_is_stripped_outside_the_guarded_area(client: Any) -> None:
    data = data_of(client.get("/elsewhere", headers={**JSON, **FORGED}))
    assert data == {"key_header": None, "user_header": None, "identity": None}


def test_last_use_is_written_in_batches_not_per_request(
    engine: Engine, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, whole = store.create_key(None, audiences=["partners"])
    writes: list[dict[str, float]] = []
    real = store.record_access_use
    monkeypatch.setattr(
        store, "record_access_use", lambda used: (writes.append(dict(used)), real(used))
    )
    client = fastapi_client(engine)
    for _ in range(50):
        response = client.get(
            "/api/partners/x", headers={**JSON, "Authorization": f"Bearer {whole}"}
        )
        assert response.status_code == 200
    assert writes == []  # none on the request path
    ring = engine.keys
    assert ring is not None
    ring.flush()  # what the ring's thread does every few seconds, and on close
    assert [list(batch) for batch in writes] == [[key.id]]
    assert store.get_key(key.id).last_used_at is not None
