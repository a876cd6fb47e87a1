"""Middlewares that follow their rules, as the server does: a rules file reloaded when it
changes (``reload=True``, with the shrink guard), and a rule store followed revision by revision
(``store=URL``), in a Flask app (WSGI) and a FastAPI app (ASGI), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from waypost import Engine
from waypost.exceptions import WaypostError
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware
from waypost.store import open_store

POSTGRES_URL = os.environ.get("WAYPOST_TEST_POSTGRES_URL")


def eventually(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.1)


def flask_client(middleware_options: dict[str, Any]) -> tuple[Any, WsgiMiddleware]:
    app = flask.Flask("following")

    @app.get("/")
    def home() -> str:
        return "home"

    middleware = WsgiMiddleware(app.wsgi_app, **middleware_options)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    return app.test_client(), middleware


def write_rules(path: Path, *pairs: tuple[str, str]) -> None:
    lines = ["rules:"] + [f"  - {{from: {old}, to: {new}}}" for old, new in pairs]
    path.write_text("\n".join(lines) + "\n")


def test_a_changed_rules_file_is_swapped_in(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write_rules(rules, ("/old", "/new"))
    client, middleware = flask_client({"rules": str(rules), "reload": True})
    try:
        assert client.get("/old").headers["Location"] == "/new"
        write_rules(rules, ("/old", "/newer"), ("/added", "/here"))
        eventually(
            lambda: client.get("/old").headers.get("Location") == "/newer", "the edit serves"
        )
        assert client.get("/added").headers["Location"] == "/here"
        assert middleware.degraded is None
    finally:
        middleware.stop()


def test_a_file_that_drops_every_rule_is_held_back(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write_rules(rules, ("/a", "/b"), ("/c", "/d"))
    client, middleware = flask_client({"rules": str(rules), "reload": True})
    try:
        client.get("/")  # starts the watcher
        rules.write_text("rules: []\n")
        eventually(lambda: middleware.degraded is not None, "the shrink guard speaks")
        assert "rules" in (middleware.degraded or "")
        assert client.get("/a").headers["Location"] == "/b"  # the last good rules serve
        rules.write_text("rules: [\n")  # and a file that does not load changes nothing either
        time.sleep(0.3)
        assert client.get("/c").headers["Location"] == "/d"
    finally:
        middleware.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rules.db'}"
    schema = request.getfixturevalue("postgres_schema")  # skips without PostgreSQL
    separator = "&" if "?" in str(POSTGRES_URL) else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def test_a_fastapi_app_follows_the_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.upgrade()
        store.create_rule({"from": "/old", "to": "/new"})
        api = FastAPI()

        @api.get("/")
        def home() -> dict[str, str]:
            return {"page": "home"}

        middleware = AsgiMiddleware(api, store=store_url)
        with TestClient(middleware, follow_redirects=False) as client:  # runs the lifespan
            assert client.get("/old").headers["location"] == "/new"
            store.create_rule({"from": "/later", "to": "/committed"})
            eventually(
                lambda: client.get("/later").headers.get("location") == "/committed",
                "a committed revision serves",
            )
            assert client.get("/").json() == {"page": "home"}
        assert middleware.follower is not None and middleware.follower._thread is None  # stopped
    finally:
        store.close()


def test_a_flask_app_follows_the_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.upgrade()
        rule = store.create_rule({"from": "/old", "to": "/new"})
        client, middleware = flask_client({"store": store_url})
        try:
            assert client.get("/old").headers["Location"] == "/new"
            store.delete_rule(rule.id)
            eventually(lambda: client.get("/old").status_code == 404, "a delete serves")
        finally:
            middleware.stop()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give the rules"),
        ({"rules": "x.yaml", "store": "sqlite:///x.db"}, "one of them"),
        ({"rules": Engine([]), "reload": True}, "give its path"),
        ({"store": "sqlite:///x.db", "reload": True}, "leave reload out"),
    ],
    ids=["nothing", "both", "engine-reload", "store-reload"],
)
def test_what_cannot_work_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(WaypostError, match=message):
        WsgiMiddleware(lambda environ, start: [], **options)
