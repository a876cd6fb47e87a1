"""Proxy rules and the middleware: refused when the middleware is made; a proxy decision from
rules swapped in later is answered 502 (logged), never handed to the app as a pass."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flask import Flask

from waypost import Engine
from waypost.exceptions import WaypostError
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware

PROXY = {"from": "/api/<path:rest>", "rewrite": "https://api.example.com/v1/{rest}"}
PLAIN = {"from": "/old", "to": "/new"}


def proxying() -> Engine:
    return Engine([PLAIN, PROXY], proxy_hosts=["api.example.com"])


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.route("/<path:anything>")
    def echo(anything: str) -> str:
        return f"app saw /{anything}"

    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/{anything:path}")
    def echo(anything: str) -> str:
        return f"app saw /{anything}"

    return app


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_rules_that_proxy_are_refused_when_the_middleware_is_made(kind: str) -> None:
    with pytest.raises(WaypostError) as caught:
        if kind == "wsgi":
            WsgiMiddleware(flask_app().wsgi_app, rules=proxying())
        else:
            AsgiMiddleware(fastapi_app(), rules=proxying())
    message = str(caught.value)
    assert "1 rule(s) proxy to another origin" in message
    assert "<rules>#2 (rewrite: https://api.example.com/v1/{rest})" in message
    assert "waypost serve" in message


def test_proxy_hosts_without_proxy_rules_are_fine() -> None:
    engine = Engine([PLAIN], proxy_hosts=["api.example.com"])
    WsgiMiddleware(flask_app().wsgi_app, rules=engine)


def _swap_in_proxy_rules(engine: Engine) -> None:
    engine.replace([PLAIN, PROXY], proxy_hosts=["api.example.com"])


def test_wsgi_answers_a_later_proxy_decision_502(caplog: pytest.LogCaptureFixture) -> None:
    app = flask_app()
    engine = Engine([PLAIN])
    app.wsgi_app = WsgiMiddleware(app.wsgi_app, rules=engine)  # type: ignore[method-assign]
    client = app.test_client()
    assert client.get("/api/x").text == "app saw /api/x"
    _swap_in_proxy_rules(engine)
    with caplog.at_level("ERROR", logger="waypost.middleware"):
        response = client.get("/api/x?q=1")
    assert response.status_code == 502
    assert "app saw" not in response.text
    assert "not proxying to https://api.example.com/v1/x?q=1 (rule <rules>#2)" in caplog.text
    assert client.get("/old").status_code == 301


def test_asgi_answers_a_later_proxy_decision_502(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine([PLAIN])
    app: Any = AsgiMiddleware(fastapi_app(), rules=engine)
    with TestClient(app) as client:
        assert client.get("/api/x").text == '"app saw /api/x"'
        _swap_in_proxy_rules(engine)
        with caplog.at_level("ERROR", logger="waypost.middleware"):
            response = client.get("/api/x", headers={"Accept": "*/*"})
        head = client.head("/api/x")
    assert response.status_code == 502 and "app saw" not in response.text
    assert (head.status_code, head.content) == (502, b"")
    assert "not proxying to https://api.example.com/v1/x" in caplog.text
