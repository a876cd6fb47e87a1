"""The ASGI middleware with real FastAPI/Starlette apps (TestClient, in process)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.testclient import TestClient

from waypost import Engine, RulesError
from waypost.middleware.asgi import WaypostMiddleware

REWRITE = {
    "from": "/old/<path:rest>",
    "rewrite": "/new/{rest}?sling=academy",
    "set_headers": {"x-rerouted": "yes"},
}


def make_app(rules: list[dict[str, Any]], **options: Any) -> FastAPI:
    app = FastAPI()
    app.state.started = False

    @app.on_event("startup")  # lifespan must reach the app through the middleware
    async def startup() -> None:
        app.state.started = True

    @app.get("/new/{rest:path}")
    async def new(rest: str, request: Request) -> dict[str, Any]:
        return {
            "rest": rest,
            "query": dict(request.query_params),
            "rerouted": request.headers.get("x-rerouted"),
            "path": request.url.path,
        }

    @app.post("/third")
    async def third(request: Request) -> dict[str, Any]:
        form = await request.body()
        return {"method": request.method, "body": form.decode()}

    @app.get("/third")
    async def third_get() -> dict[str, str]:
        return {"method": "GET"}

    @app.get("/users/{user_id}/dashboard", name="dashboard")
    async def dashboard(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    @app.get("/app-redirect")
    async def app_redirect() -> RedirectResponse:
        return RedirectResponse("/third", status_code=302)

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"page": "live"}

    app.add_middleware(WaypostMiddleware, rules=Engine(rules), **options)
    return app


pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # on_event is deprecated
    # Every test twice: with the compiled road and without it (see conftest.road).
    pytest.mark.usefixtures("road"),
]


def test_rewrite_reaches_new_endpoint_with_header_and_query() -> None:
    with TestClient(make_app([REWRITE])) as client:
        response = client.get("/old/guide/intro?x=1")
    assert response.status_code == 200
    assert response.json() == {
        "rest": "guide/intro",
        "query": {"sling": "academy", "x": "1"},
        "rerouted": "yes",
        "path": "/new/guide/intro",
    }


def test_lifespan_passes_through() -> None:
    app = make_app([REWRITE])
    with TestClient(app):
        assert app.state.started is True


def test_apps_own_redirect_response_still_works() -> None:
    with TestClient(make_app([REWRITE])) as client:
        response = client.get("/app-redirect", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/third")


@pytest.mark.parametrize(
    ("status", "method"), [(307, "POST"), (308, "POST"), (302, "GET"), (303, "GET")], ids=str
)
def test_post_redirect_keeps_or_drops_method(status: int, method: str) -> None:
    rules = [{"from": "/second", "methods": ["POST"], "to": "/third", "status": status}]
    with TestClient(make_app(rules)) as client:
        response = client.post("/second", data={"choice": "yes"}, follow_redirects=True)
    assert response.json()["method"] == method
    if method == "POST":
        assert response.json()["body"] == "choice=yes"


def test_route_target_by_name() -> None:
    rules = [
        {"from": "/u/<int:id>", "to": {"route": "dashboard", "user_id": "{id}"}, "status": 302}
    ]
    with TestClient(make_app(rules)) as client:
        response = client.get("/u/7", follow_redirects=False)
        assert response.headers["location"] == "/users/7/dashboard"
        assert client.get("/u/7").json() == {"user": 7}


def test_missing_route_fails_at_startup() -> None:
    rules = [{"from": "/u/<int:id>", "to": {"route": "dashbord", "user_id": "{id}"}}]
    with pytest.raises(RulesError, match="no route 'dashbord'"), TestClient(make_app(rules)):
        pass


def test_only_if_missing() -> None:
    rules = [
        {"from": "/live", "to": "/elsewhere", "only_if_missing": True},
        {"from": "/vanished", "to": "/live", "only_if_missing": True, "status": 302},
    ]
    with TestClient(make_app(rules)) as client:
        assert client.get("/live").json() == {"page": "live"}
        response = client.get("/vanished", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (302, "/live")
        assert client.get("/nothing").status_code == 404


def test_respond_and_head() -> None:
    rules = [{"from": "/gone", "respond": {"status": 410, "body": "gone"}}]
    with TestClient(make_app(rules)) as client:
        assert (client.get("/gone").status_code, client.get("/gone").text) == (410, "gone")
        head = client.head("/gone")
        assert (head.status_code, head.content, head.headers["content-length"]) == (410, b"", "4")


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"ws {scope['path']}"})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = f"{scope.get('root_path', '')}|{scope['path']}|{scope['query_string'].decode()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_root_path_is_respected_by_plain_asgi() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}, {"from": "/c", "rewrite": "/d?x=1"}])
    app = WaypostMiddleware(_echo, rules=engine)
    client = TestClient(app, root_path="/site")
    response = client.get("/site/a", follow_redirects=False)
    assert response.headers["location"] == "/site/b"
    assert client.get("/site/c").text == "/site|/site/d|x=1"


def test_other_scope_types_pass_straight_through() -> None:
    app = WaypostMiddleware(_echo, rules=Engine([{"from": "/ws", "respond": 403}]))
    with TestClient(app).websocket_connect("/ws") as ws:
        assert ws.receive_text() == "ws /ws"  # the respond rule is for HTTP only


def test_rules_file_path(tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - from: /a\n    to: /b\n", encoding="utf-8")
    app = WaypostMiddleware(_echo, rules=str(path))
    assert TestClient(app).get("/a", follow_redirects=False).headers["location"] == "/b"


def test_bad_rules_file_fails_fast(tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - from: /a\n    to: /b\n    status: 399\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules.yaml:4:13: redirect status"):
        WaypostMiddleware(_echo, rules=str(path))
