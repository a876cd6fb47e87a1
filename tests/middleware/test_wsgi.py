"""The WSGI middleware with a real Flask app (Flask's test client, in process)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, redirect, request

from waypost import Engine, RulesError
from waypost.middleware.wsgi import WaypostMiddleware

# Every test twice: with the compiled road and without it (see conftest.road).
pytestmark = pytest.mark.usefixtures("road")


def make_app(rules: list[dict[str, Any]], **engine_kwargs: Any) -> Flask:
    app = Flask(__name__)

    @app.get("/second")
    def form() -> str:
        return '<form method="post" action="/second"><input name="choice" value="yes"></form>'

    @app.route("/third", methods=["GET", "POST"])
    def third() -> dict[str, Any]:
        return {
            "method": request.method,
            "form": request.form.to_dict(),
            "args": request.args.to_dict(),
        }

    @app.get("/new/<path:rest>")
    def new(rest: str) -> dict[str, Any]:
        return {
            "rest": rest,
            "args": request.args.to_dict(),
            "rerouted": request.headers.get("X-Rerouted"),
            "url": request.url,
        }

    @app.get("/users/<int:user_id>/dashboard")
    def dashboard(user_id: int) -> str:
        return f"dashboard of {user_id}"

    @app.get("/live")
    def live() -> str:
        return "live page"

    @app.get("/app-redirect")
    def app_redirect() -> Any:
        return redirect("/live", code=302)

    app.wsgi_app = WaypostMiddleware(app.wsgi_app, rules=Engine(rules, **engine_kwargs))  # type: ignore[method-assign]
    return app


@pytest.mark.parametrize(
    ("status", "method", "form"),
    [
        (307, "POST", {"choice": "yes"}),
        (308, "POST", {"choice": "yes"}),
        (302, "GET", {}),
        (303, "GET", {}),
    ],
    ids=["307-keeps-post", "308-keeps-post", "302-becomes-get", "303-becomes-get"],
)
def test_form_post_survives_307_and_becomes_get_with_302(
    status: int, method: str, form: dict[str, str]
) -> None:
    app = make_app([{"from": "/second", "methods": ["POST"], "to": "/third", "status": status}])
    client = app.test_client()
    assert "choice" in client.get("/second").text  # GET /second is the app's own form
    response = client.post("/second", data={"choice": "yes"}, follow_redirects=True)
    assert response.status_code == 200
    assert response.json == {"method": method, "form": form, "args": {}}
    first = client.post("/second", data={"choice": "yes"})
    assert (first.status_code, first.headers["Location"]) == (status, "/third")


def test_rewrite_changes_what_the_app_sees_not_the_url() -> None:
    app = make_app(
        [
            {
                "from": "/old/<path:rest>",
                "rewrite": "/new/{rest}?sling=academy",
                "set_headers": {"x-rerouted": "yes"},
            }
        ]
    )
    response = app.test_client().get("/old/a/b?q=1")
    assert response.status_code == 200
    assert response.json == {
        "rest": "a/b",
        "args": {"sling": "academy", "q": "1"},
        "rerouted": "yes",
        "url": "http://localhost/new/a/b?sling=academy&q=1",
    }


def test_respond_and_pass() -> None:
    app = make_app(
        [
            {"from": "/gone", "respond": 410},
            {"from": "/<path:any>", "to": "/live", "status": 302},
            {"from": "/third", "pass": True},
        ]
    )
    client = app.test_client()
    assert client.get("/gone").status_code == 410
    assert client.get("/third").json["method"] == "GET"  # pass carves /third out of the catch-all
    assert client.get("/elsewhere").headers["Location"] == "/live"


def test_route_targets_use_flask_url_map() -> None:
    app = make_app(
        [{"from": "/u/<int:id>", "to": {"route": "dashboard", "user_id": "{id}"}, "status": 302}]
    )
    response = app.test_client().get("/u/42", follow_redirects=True)
    assert response.text == "dashboard of 42"


def test_missing_endpoint_fails_at_start() -> None:
    with pytest.raises(RulesError, match=r"no route 'dashbord'"):
        make_app([{"from": "/u/<int:id>", "to": {"route": "dashbord", "user_id": "{id}"}}])


def test_only_if_missing_never_hides_a_live_page() -> None:
    app = make_app(
        [
            {"from": "/live", "to": "/elsewhere", "only_if_missing": True},
            {"from": "/old-live", "to": "/live", "only_if_missing": True},
        ]
    )
    client = app.test_client()
    assert client.get("/live").text == "live page"
    response = client.get("/old-live")
    assert (response.status_code, response.headers["Location"]) == (301, "/live")


def test_apps_own_redirect_still_works_underneath() -> None:
    app = make_app([{"from": "/old-page", "to": "/new-page"}])
    response = app.test_client().get("/app-redirect")
    assert (response.status_code, response.headers["Location"]) == (302, "/live")


def test_script_name_is_respected() -> None:
    app = make_app([{"from": "/old-page", "to": "/live"}])
    client = app.test_client()
    response = client.get("/old-page", environ_overrides={"SCRIPT_NAME": "/site"})
    assert response.headers["Location"] == "/site/live"


def test_head_has_no_body() -> None:
    app = make_app([{"from": "/gone", "respond": {"status": 410, "body": "gone"}}])
    response = app.test_client().head("/gone")
    assert (response.status_code, response.data, response.headers["Content-Length"]) == (
        410,
        b"",
        "4",
    )
