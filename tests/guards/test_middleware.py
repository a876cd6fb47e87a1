"""Guards behind both middlewares: FastAPI (ASGI) and Flask (WSGI), in process."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, request

from tests.guards.test_session import flask_cookie
from waypost import Engine
from waypost.middleware._common import GuardIdentity
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

SECRET = "flask-secret"
ANN = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
BROWSER = {"Accept": "text/html"}
FORGED = {"X-Waypost-User": "root", "X-Waypost-Guard": "staff"}
RULES: list[dict[str, Any]] = [
    {"from": "/admin/<path:rest>", "require": "staff", "login_url": "/login"},
    {"from": "/admin/secret", "to": "/treasure"},
    {"from": "/public", "rewrite": "/admin/reports"},
    {"from": "/account/<path:rest>", "require": "login", "login_url": "/login"},
]


@pytest.fixture
def engine(htpasswd: Any, flask_secret: str) -> Engine:
    return Engine(
        RULES,
        guards={
            "staff": {"basic": {"htpasswd": str(htpasswd), "realm": "Staff"}},
            "login": {"session": {"secret_env": "FLASK_SECRET_KEY"}},
        },
    )


def fastapi_client(engine: Engine) -> TestClient:
    app = FastAPI()

    @app.get("/{path:path}")
    def echo(path: str, req: Request) -> dict[str, Any]:
        user = req.scope.get("user")
        return {
            "path": req.url.path,
            "user_header": req.headers.get("x-waypost-user"),
            "guard_header": req.headers.get("x-waypost-guard"),
            "user": user.display_name if user is not None else None,
            "state": repr(getattr(req.state, "waypost_identity", None)),
        }

    app.add_middleware(AsgiMiddleware, rules=engine)
    return TestClient(app, follow_redirects=False)


def flask_client(engine: Engine) -> Any:
    app = Flask(__name__)

    @app.get("/<path:path>")
    def echo(path: str) -> dict[str, Any]:
        identity = request.environ.get("waypost.identity")
        return {
            "path": request.path,
            "user_header": request.headers.get("X-Waypost-User"),
            "guard_header": request.headers.get("X-Waypost-Guard"),
            "user": identity.user if identity is not None else None,
            "state": repr(identity),
        }

    app.wsgi_app = WsgiMiddleware(app.wsgi_app, engine)  # type: ignore[method-assign]
    return app.test_client()


def data_of(response: Any) -> Any:
    """The JSON body (a property in Flask's test client, a method in httpx's)."""
    return response.json() if callable(response.json) else response.json


@pytest.fixture(params=["fastapi", "flask"])
def client(request: pytest.FixtureRequest, engine: Engine) -> Any:
    return fastapi_client(engine) if request.param == "fastapi" else flask_client(engine)


def test_an_exact_redirect_inside_the_guarded_area_needs_the_credential(client: Any) -> None:
    response = client.get("/admin/secret")
    assert response.status_code == 401
    assert data_of(response) == {
        "error": "unauthorized",
        "message": "this page needs you to log in",
    }
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Staff", charset="UTF-8"'
    assert client.get("/admin/secret", headers=ANN).headers["Location"] == "/treasure"


def test_a_browser_is_sent_to_log_in(client: Any) -> None:
    response = client.get("/admin/x?a=1", headers=BROWSER)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/x%3Fa%3D1"


def test_a_rewrite_into_the_guarded_area_is_checked(client: Any) -> None:
    assert client.get("/public").status_code == 401
    data = data_of(client.get("/public", headers=ANN))
    assert (data["path"], data["user_header"], data["user"]) == ("/admin/reports", "ann", "ann")


def test_the_identity_is_where_the_framework_expects_it(client: Any) -> None:
    data = data_of(client.get("/admin/page", headers={**ANN, **FORGED}))
    assert data["user_header"] == "ann"
    assert data["guard_header"] == "staff"
    assert data["user"] == "ann"
    assert data["state"] == repr(GuardIdentity("ann", ("staff",)))


def test_a_forged_identity_is_stripped_outside_the_guarded_area(client: Any) -> None:
    data = data_of(client.get("/elsewhere", headers=FORGED))
    assert (data["user_header"], data["guard_header"], data["user"]) == (None, None, None)


def test_a_flask_login_session_passes(client: Any) -> None:
    cookie = flask_cookie({"_user_id": "42"}, secret="test-secret-key")
    if isinstance(client, TestClient):
        data = data_of(client.get("/account/home", headers={"Cookie": f"session={cookie}"}))
    else:  # Flask's test client sends the cookies of its jar
        client.set_cookie("session", cookie)
        data = data_of(client.get("/account/home"))
        client.delete_cookie("session")
    assert data["user"] == "42"
    assert client.get("/account/home", headers=BROWSER).status_code == 302


@pytest.mark.parametrize(
    "path", ["/admin/secret/", "/%61dmin/secret", "/admin%2Fsecret", "//admin/secret"]
)
def test_every_spelling_of_a_guarded_path_is_guarded(client: Any, path: str) -> None:
    def get(path: str) -> Any:
        if isinstance(client, TestClient):
            return client.get("http://testserver" + path)
        # Werkzeug's test client reads '//admin' as a host: set the WSGI path itself.
        path_info = unquote(path).encode().decode("latin-1")
        return client.get("/", environ_overrides={"PATH_INFO": path_info})

    response = get(path)
    if response.status_code == 308:  # '//': first sent to the path's normal form
        response = get(response.headers["Location"])
    assert response.status_code == 401


def test_under_a_mount_the_login_page_and_next_are_both_under_it(engine: Engine) -> None:
    inner = FastAPI()
    inner.add_middleware(AsgiMiddleware, rules=engine)
    outer = FastAPI()
    outer.mount("/site", inner)
    client = TestClient(outer, follow_redirects=False)
    response = client.get("/site/admin/x?a=1", headers=BROWSER)
    assert response.headers["Location"] == "/site/login?next=/site/admin/x%3Fa%3D1"
