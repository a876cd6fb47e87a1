"""The forward_auth guard: an auth service asked over HTTP (Traefik's ForwardAuth, Caddy's
forward_auth, nginx's auth_request).

A real auth service runs on 127.0.0.1: a cookie ``sso=good`` gets 200 with the user in
``X-Auth-Request-User``, ``sso=banned`` a 403, anything else a 302 to its login page with a
``Set-Cookie``; ``/slow`` answers late, and a port nobody listens on stands for one that is down.
The engine is tested alone (the protocol, with answers given by hand), then the standalone
server, the ASGI middleware and the WSGI middleware against the service.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, request

from tests.guards.conftest import htpasswd_line
from tests.server.serving import Served, Upstream, free_port, start_server
from waypost import Engine
from waypost.decision import Decision
from waypost.exceptions import RulesError
from waypost.guards.forward_auth import BODY_LIMIT
from waypost.middleware.asgi import WaypostMiddleware as AsgiMiddleware
from waypost.middleware.wsgi import WaypostMiddleware as WsgiMiddleware
from waypost.rules.request import Request as WaypostRequest

ANN = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
GOOD = {"Cookie": "sso=good"}
FORGED = {"X-Auth-Request-User": "root", "X-Waypost-User": "root"}


class AuthService:
    """An auth service in the manner of oauth2-proxy's ``/oauth2/auth``."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # The asker may have given up (too slow) or read no further (too large).
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def do_GET(self) -> None:
                service.seen.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                cookie = self.headers.get("Cookie", "")
                if "sso=good" in cookie:
                    self._send(
                        200,
                        [
                            ("X-Auth-Request-User", "ann"),
                            ("X-Auth-Request-Email", "ann@example.com"),
                            ("X-Not-Copied", "no"),
                        ],
                        b"",
                    )
                elif "sso=banned" in cookie:
                    self._send(403, [("Content-Type", "text/plain")], b"banned here")
                elif "sso=huge" in cookie:
                    self._send(401, [], b"x" * (BODY_LIMIT + 10))
                else:
                    back = self.headers.get("X-Forwarded-Uri", "")
                    self._send(
                        302,
                        [
                            ("Location", f"https://auth.example/login?rd={back}"),
                            ("Set-Cookie", "csrf=abc; HttpOnly"),
                            ("X-Leak", "internal"),
                            ("Content-Type", "text/html"),
                        ],
                        b"<a>log in</a>",
                    )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AuthService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def rules_text(auth: str, down: str, **options: str) -> str:
    extra = "".join(f", {k}: {v}" for k, v in options.items())
    copied = "X-Auth-Request-User, X-Auth-Request-Email"
    return f"""
guards:
  staff:
    basic: {{htpasswd: staff.htpasswd, realm: Staff}}
  sso:
    forward_auth: {{url: {auth}/oauth2/auth, copy_headers: [{copied}]{extra}}}
  slow:
    forward_auth: {{url: {auth}/slow, timeout: 0.3}}
  down:
    forward_auth: {{url: {down}/auth, timeout: 1}}
rules:
  - from: /admin/<path:rest>
    require: [staff, sso]
  - from: /app/<path:rest>
    require: sso
  - from: /app/old
    to: /app/new
  - from: /slow/<path:rest>
    require: slow
  - from: /down/<path:rest>
    require: down
"""


@pytest.fixture(scope="module")
def service() -> Iterator[AuthService]:
    with AuthService() as auth:
        yield auth


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory, service: AuthService) -> Path:
    tmp = tmp_path_factory.mktemp("forward_auth")
    (tmp / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp / "rules.yaml"
    rules.write_text(rules_text(service.url, f"http://127.0.0.1:{free_port()}"))
    return rules


@pytest.fixture
def engine(rules_file: Path) -> Engine:
    return Engine.from_file(rules_file)


def ask(engine: Engine, path: str, headers: dict[str, str] | None = None) -> WaypostRequest:
    return WaypostRequest.from_url("GET", path, {"Host": "site.example", **(headers or {})})


# -- the protocol, in the engine alone -------------------------------------------------------


def test_a_guarded_request_asks_the_auth_service_with_the_forwarded_headers(
    engine: Engine,
) -> None:
    forged = {"X-Forwarded-Uri": "/public", "X-Original-URL": "http://x/public", **FORGED}
    request = WaypostRequest.from_url(
        "GET", "/app/page?x=1", {"Host": "site.example", **GOOD, **forged}, "203.0.113.9"
    )
    decision = engine.resolve(request)
    assert decision.action == "auth"
    assert decision.auth is not None
    assert (decision.auth.guard, decision.auth.method) == ("sso", "GET")
    assert decision.location == decision.auth.url and decision.auth.url.endswith("/oauth2/auth")
    sent = dict(decision.auth.headers)
    assert sent["Cookie"] == "sso=good"
    assert sent["X-Forwarded-Method"] == "GET"
    assert sent["X-Forwarded-Proto"] == "http"
    assert sent["X-Forwarded-Host"] == "site.example"
    assert sent["X-Forwarded-Uri"] == "/app/page?x=1"  # the client's own is gone
    assert sent["X-Forwarded-For"] == "203.0.113.9"
    names = {name.lower() for name in sent}
    assert not {"x-original-url", "x-auth-request-user", "x-waypost-user", "host"} & names
    # The credentials are in no repr (logs, tracebacks).
    assert "sso=good" not in repr(decision)


def test_a_2xx_lets_the_request_through_with_the_copied_headers(engine: Engine) -> None:
    request = ask(engine, "/app/page", {**GOOD, **FORGED})
    decision = engine.resolve(request)
    answer = [
        ("X-Auth-Request-User", "ann"),
        ("x-auth-request-email", "ann@example.com"),
        ("X-Not-Copied", "no"),
    ]
    passed = engine.resolve_authorized(request, decision, 200, answer, b"")
    assert passed.action == "pass"
    assert dict(passed.headers) == {
        "X-Waypost-User": "ann",
        "X-Waypost-Guard": "sso",
        "X-Auth-Request-User": "ann",
        "X-Auth-Request-Email": "ann@example.com",
    }
    assert {"Cookie", "Authorization"} <= set(passed.vary)
    assert {"x-auth-request-user", "x-auth-request-email", "x-waypost-user"} <= set(
        engine.identity_header_names
    )


def test_anything_else_is_the_services_answer_with_safe_headers_only(engine: Engine) -> None:
    request = ask(engine, "/app/page")
    decision = engine.resolve(request)
    answer = [
        ("Location", "https://auth.example/login"),
        ("Set-Cookie", "csrf=abc"),
        ("X-Leak", "internal"),
        ("Content-Type", "text/html"),
    ]
    refused = engine.resolve_authorized(request, decision, 302, answer, b"<a>log in</a>")
    assert (refused.action, refused.status, refused.body) == ("respond", 302, "<a>log in</a>")
    assert dict(refused.headers) == {
        "Location": "https://auth.example/login",
        "Set-Cookie": "csrf=abc",
        "Content-Type": "text/html",
        "Cache-Control": "no-store",
    }


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, [("X-Auth-Request-User", "ann\r\nX-Admin: yes")], b""),
        (101, [], b""),
        (304, [], b""),
        (401, [], b"x" * (BODY_LIMIT + 1)),
    ],
    ids=["control-character-in-a-copied-header", "1xx", "304", "body-too-large"],
)
def test_an_answer_that_cannot_be_trusted_whole_is_a_502(
    engine: Engine, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    request = ask(engine, "/app/page", GOOD)
    decision = engine.resolve_authorized(request, engine.resolve(request), status, headers, body)
    assert (decision.action, decision.status) == ("respond", 502)
    assert "ann" not in (decision.body or "")


def test_a_named_user_header_must_be_in_the_answer() -> None:
    engine = Engine(
        [{"from": "/app/<path:rest>", "require": "sso"}],
        guards={
            "sso": {"forward_auth": {"url": "http://127.0.0.1:9/auth", "user_header": "X-User"}}
        },
    )
    request = ask(engine, "/app/x")
    missing = engine.resolve_authorized(request, engine.resolve(request), 200, [], b"")
    assert (missing.action, missing.status) == ("respond", 502)
    ok = engine.resolve_authorized(request, engine.resolve(request), 204, [("X-User", "bo")], b"")
    assert dict(ok.headers) == {"X-Waypost-User": "bo", "X-Waypost-Guard": "sso"}


def test_every_guard_must_pass_and_the_service_is_asked_last(engine: Engine) -> None:
    without_staff = engine.resolve(ask(engine, "/admin/x", GOOD))
    assert (without_staff.action, without_staff.status) == ("respond", 401)  # never asked
    request = ask(engine, "/admin/x", {**GOOD, **ANN})
    decision = engine.resolve(request)
    assert decision.action == "auth"
    passed = engine.resolve_authorized(
        request, decision, 200, [("X-Auth-Request-User", "ann")], b""
    )
    assert dict(passed.headers)["X-Waypost-Guard"] == "staff, sso"


def test_an_exact_redirect_inside_the_guarded_area_needs_the_service_too(engine: Engine) -> None:
    request = ask(engine, "/app/old", GOOD)
    decision = engine.resolve(request)
    assert decision.action == "auth"
    passed = engine.resolve_authorized(request, decision, 200, [], b"")
    assert (passed.action, passed.status, passed.location) == ("redirect", 301, "/app/new")


def test_a_rewrite_into_the_guarded_area_asks_too_and_once() -> None:
    guards = {"sso": {"forward_auth": {"url": "http://127.0.0.1:9/a", "copy_headers": ["X-U"]}}}
    rules = [{"from": "/app/<path:rest>", "require": "sso"}, {"from": "/p", "rewrite": "/app/x"}]
    engine = Engine(rules, guards=guards)
    request = ask(engine, "/p")
    decision = engine.resolve(request)
    assert decision.auth is not None and decision.auth.guard == "sso"
    done = engine.resolve_authorized(request, decision, 200, [("X-U", "ann")], b"")
    assert (done.action, done.path) == ("rewrite", "/app/x")
    assert dict(done.headers) == {"X-Waypost-User": "ann", "X-Waypost-Guard": "sso", "X-U": "ann"}


def test_two_services_are_asked_in_turn() -> None:
    guards = {
        "a": {"forward_auth": {"url": "http://127.0.0.1:9/a", "copy_headers": ["X-A"]}},
        "b": {"forward_auth": {"url": "http://127.0.0.1:9/b"}},
    }
    engine = Engine([{"from": "/x", "require": ["a", "b"]}], guards=guards)
    request = ask(engine, "/x")
    first = engine.resolve(request)
    assert first.auth is not None and first.auth.guard == "a"
    second = engine.resolve_authorized(request, first, 200, [("X-A", "1")], b"")
    assert second.auth is not None and second.auth.guard == "b"
    done = engine.resolve_authorized(request, second, 200, [], b"")
    assert done.action == "pass"
    assert dict(done.headers) == {"X-Waypost-User": "1", "X-Waypost-Guard": "a, b", "X-A": "1"}


def test_a_pass_is_remembered_by_the_credentials_with_cache_and_a_failure_never(
    tmp_path: Path, service: AuthService
) -> None:
    (tmp_path / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text(service.url, "http://127.0.0.1:9", cache="60"))
    engine = Engine.from_file(rules)
    request = ask(engine, "/app/a", GOOD)
    engine.resolve_authorized(request, engine.resolve(request), 200, [], b"")
    assert engine.resolve(ask(engine, "/app/b", GOOD)).action == "pass"
    assert engine.resolve(ask(engine, "/app/b", {"Cookie": "sso=other"})).action == "auth"
    nobody = ask(engine, "/app/a", {"Cookie": "sso=bad"})
    engine.resolve_authorized(nobody, engine.resolve(nobody), 302, [], b"")
    assert engine.resolve(ask(engine, "/app/a", {"Cookie": "sso=bad"})).action == "auth"
    # Without cache (the default), every request asks.
    rules.write_text(rules_text(service.url, "http://127.0.0.1:9"))
    plain = Engine.from_file(rules)
    request = ask(plain, "/app/a", GOOD)
    plain.resolve_authorized(request, plain.resolve(request), 200, [], b"")
    assert plain.resolve(ask(plain, "/app/b", GOOD)).action == "auth"


def test_an_answer_after_a_reload_decides_afresh(engine: Engine, rules_file: Path) -> None:
    request = ask(engine, "/app/page", GOOD)
    decision = engine.resolve(request)
    engine.reload(rules_file)
    again = engine.resolve_authorized(request, decision, 200, [], b"")
    assert again.action == "auth"  # asked again by the new guard, not trusted across the swap
    assert again.auth is not None and again.auth.origin is not decision.auth.origin  # type: ignore[union-attr]


def test_explain_says_the_service_would_be_asked_and_never_the_credentials(
    engine: Engine,
) -> None:
    trace = engine.explain("GET", "/app/page", headers={"Cookie": "sso=good"})
    text = trace.render()
    assert "asks: guard 'sso' (forward_auth) asks GET http://127.0.0.1:" in text
    assert "=> auth: guard 'sso' asks GET http://127.0.0.1:" in text
    assert "sso=good" not in text and "sso=good" not in str(trace.to_dict())
    assert trace.decision.to_dict()["auth"]["guard"] == "sso"


def test_resolve_authorized_takes_an_auth_decision_only(engine: Engine) -> None:
    with pytest.raises(ValueError, match="takes an 'auth' decision"):
        engine.resolve_authorized(ask(engine, "/x"), Decision("pass"), 200)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{}", "a 'forward_auth' guard needs 'url'"),
        ("{url: 'http://user:pw@auth.example/check'}", "'url' holds a user or password"),
        ("{url: 'ftp://auth.example/check'}", "'url' is an http(s) URL like"),
        ("{url: 'http://a.example/', copy_headers: ['X Bad']}", "'copy_headers' names headers"),
        ("{url: 'http://a.example/', copy_headers: [X-Waypost-User]}", "cannot name 'X-Waypost"),
        ("{url: 'http://a.example/', timeout: 0}", "'timeout' is a positive number of seconds"),
        ("{url: 'http://a.example/', cache: -1}", "'cache' is a number of seconds"),
        ("{url: 'http://a.example/', user_header: 'Cookie'}", "'user_header' cannot name"),
        ("{url: 'http://a.example/', copy_header: [X-A]}", "did you mean 'copy_headers'?"),
    ],
    ids=[
        "no-url",
        "userinfo",
        "not-http",
        "bad-header-name",
        "waypost-header",
        "zero-timeout",
        "negative-cache",
        "user_header-cookie",
        "misspelt-option",
    ],
)
def test_load_errors_say_where_and_how_to_fix(tmp_path: Path, options: str, message: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"guards:\n  sso:\n    forward_auth: {options}\nrules: []\n")
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules)
    assert message in str(caught.value)
    assert "rules.yaml:3" in str(caught.value)
    assert "pw@" not in str(caught.value).replace("'http://user:pw@auth.example/check'", "")


def test_the_docs_example_loads_and_asks(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "guards.md").read_text()
    example = r"```yaml\n(guards:\n[^`]*?forward_auth: \{url: http://127.*?)```"
    found = re.search(example, docs, re.S)
    assert found is not None, "docs/guards.md has no forward_auth example"
    (tmp_path / "staff.htpasswd").write_text(htpasswd_line("ann", "s3cret") + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(found.group(1))
    engine = Engine.from_file(rules)
    decision = engine.resolve(ask(engine, "/admin/x", {**GOOD, **ANN}))
    assert decision.auth is not None and decision.auth.url == "http://127.0.0.1:4180/oauth2/auth"


# -- the standalone server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(rules_file: Path) -> Iterator[tuple[Served, Upstream]]:
    with Upstream() as upstream:
        served = start_server(
            rules_file, "--upstream", upstream.url, "--no-access-log", tmp=rules_file.parent
        )
        yield served, upstream
        served.stop()


def upstream_headers(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {name: value for name, value in response.json()["headers"]}


def test_server_sends_the_copied_headers_upstream_and_never_the_clients(
    served: tuple[Served, Upstream], service: AuthService
) -> None:
    server, _ = served
    response = httpx.get(server.base + "/app/page?q=1", headers={**GOOD, **FORGED})
    got = upstream_headers(response)
    assert got["x-auth-request-user"] == "ann"
    assert got["x-auth-request-email"] == "ann@example.com"
    assert got["x-waypost-user"] == "ann"
    assert "x-not-copied" not in got
    asked = service.seen[-1]
    assert asked["x-forwarded-uri"] == "/app/page?q=1"
    assert asked["x-forwarded-for"] == "127.0.0.1"
    assert "x-auth-request-user" not in asked


def test_server_passes_the_services_redirect_to_the_client(
    served: tuple[Served, Upstream],
) -> None:
    server, _ = served
    response = httpx.get(server.base + "/app/page", headers=FORGED)
    assert response.status_code == 302
    assert response.headers["location"] == "https://auth.example/login?rd=/app/page"
    assert response.headers["set-cookie"] == "csrf=abc; HttpOnly"
    assert "x-leak" not in response.headers
    assert response.text == "<a>log in</a>"
    banned = httpx.get(server.base + "/app/page", headers={"Cookie": "sso=banned"})
    assert (banned.status_code, banned.text) == (403, "banned here")
    huge = httpx.get(server.base + "/app/page", headers={"Cookie": "sso=huge"})
    assert huge.status_code == 502


def test_server_fails_closed_when_the_service_is_down_or_slow(
    served: tuple[Served, Upstream],
) -> None:
    server, _ = served
    down = httpx.get(server.base + "/down/x", headers=GOOD)
    assert down.status_code == 502 and "method" not in down.text  # not the upstream's echo
    started = time.monotonic()
    slow = httpx.get(server.base + "/slow/x", headers=GOOD)
    assert slow.status_code == 504 and "method" not in slow.text
    assert time.monotonic() - started < 1.2
    assert "sso=good" not in server.stderr()


def test_server_needs_every_guard_and_the_redirect_inside_the_area_too(
    served: tuple[Served, Upstream],
) -> None:
    server, _ = served
    assert httpx.get(server.base + "/admin/x", headers=GOOD).status_code == 401
    both = httpx.get(server.base + "/admin/x", headers={**GOOD, **ANN})
    assert upstream_headers(both)["x-waypost-guard"] == "staff, sso"
    redirect = httpx.get(server.base + "/app/old", headers=GOOD)
    assert (redirect.status_code, redirect.headers["location"]) == (301, "/app/new")
    assert httpx.get(server.base + "/app/old").status_code == 302  # to the login page


# -- the middlewares -------------------------------------------------------------------------


def fastapi_client(engine: Engine) -> TestClient:
    app = FastAPI()

    @app.get("/{path:path}")
    def echo(path: str, req: Request) -> dict[str, Any]:
        user = req.scope.get("user")
        return {
            "headers": dict(req.headers),
            "user": user.display_name if user is not None else None,
        }

    app.add_middleware(AsgiMiddleware, rules=engine)
    return TestClient(app, follow_redirects=False)


def flask_client(engine: Engine) -> Any:
    app = Flask(__name__)

    @app.get("/<path:path>")
    def echo(path: str) -> dict[str, Any]:
        identity = request.environ.get("waypost.identity")
        return {
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "user": identity.user if identity is not None else None,
        }

    app.wsgi_app = WsgiMiddleware(app.wsgi_app, engine)  # type: ignore[method-assign]
    return app.test_client(use_cookies=False)  # the Cookie header as sent, no cookie jar


def data_of(response: Any) -> Any:
    return response.json() if callable(response.json) else response.json


@pytest.mark.parametrize("make", [fastapi_client, flask_client], ids=["asgi", "wsgi"])
def test_middleware_asks_the_service(engine: Engine, make: Any) -> None:
    client = make(engine)
    response = client.get("/app/page", headers={**GOOD, **FORGED})
    assert response.status_code == 200
    data = data_of(response)
    assert data["user"] == "ann"
    assert data["headers"]["x-auth-request-user"] == "ann"
    assert data["headers"]["x-auth-request-email"] == "ann@example.com"
    assert data["headers"]["x-waypost-user"] == "ann"
    refused = client.get("/app/page", headers=FORGED)
    assert refused.status_code == 302
    assert refused.headers["Location"] == "https://auth.example/login?rd=/app/page"
    assert refused.headers["Set-Cookie"] == "csrf=abc; HttpOnly"
    assert "X-Leak" not in refused.headers
    assert client.get("/admin/x", headers=GOOD).status_code == 401
    assert client.get("/admin/x", headers={**GOOD, **ANN}).status_code == 200
    assert client.get("/down/x", headers=GOOD).status_code == 502
    assert client.get("/slow/x", headers=GOOD).status_code == 504
    redirect = client.get("/app/old", headers=GOOD)
    assert (redirect.status_code, redirect.headers["Location"]) == (301, "/app/new")
