"""Every redirect the admin app emits stays on the site, whatever the client sends as its Host.

Issue #12: Starlette's trailing-slash redirect built ``Location: http://<Host>/...`` from the
request's Host header, with no key. Each Location the admin app builds for its own paths is a
path (with the mount point), so a hostile Host, or a hostile ``next``, can never send a browser
elsewhere. Requests are sent as raw ASGI messages, so that a Host no HTTP client would send
(control characters, spaces, non-ASCII) reaches the app as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI

from tests.admin.admin_support import API, Keys, make_keys
from tests.test_security import PAYLOADS, Payload, browser_destination, needs_corpus
from waypost.admin import ADMIN_PREFIX, create_admin_app
from waypost.store.sqlite import SqliteStore

HTML = "text/html,application/xhtml+xml"


def _send(app: Any, method: str, path: str, host: str, **kwargs: Any) -> tuple[int, dict[str, str]]:
    """The status and headers the ASGI ``app`` answers one request with."""
    status, headers, _ = _exchange(app, method, path, host, **kwargs)
    return status, headers


def _exchange(
    app: Any,
    method: str,
    path: str,
    host: str,
    *,
    query: str = "",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    root_path: str = "",
) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body the ASGI ``app`` answers one request with."""
    raw_headers = [(b"host", host.encode("utf-8", "surrogatepass"))]
    raw_headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query.encode("latin-1"),
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    answered = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], answered, body


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Keys]]:
    store = SqliteStore(Path(tmp_path_factory.mktemp("locations")) / "rules.db")
    store.upgrade()
    # No limit on refused sign-ins here: every payload is a client of its own.
    app = create_admin_app(store, prefix=ADMIN_PREFIX, failure_limit=1_000_000)
    try:
        yield app, make_keys(store)
    finally:
        store.close()


def _redirects(app: Any, keys: Keys, host: str, next: str) -> Iterator[tuple[str, int, str]]:
    """``(what, status, Location)`` for every kind of redirect the admin app emits."""
    for path, query in [
        (f"{API}/rules/", "page=2"),
        (f"{API}/docs/", ""),
        (f"{ADMIN_PREFIX}/login/", urlencode({"next": next}, errors="surrogatepass")),
        (f"{API}/rules//", ""),
    ]:
        status, headers = _send(app, "GET", path, host, query=query)
        yield f"slash {path}", status, headers.get("location", "")
    browser = (("accept", HTML),)
    status, headers = _send(app, "GET", f"{API}/rules", host, query="a=1", headers=browser)
    yield "to the login page", status, headers.get("location", "")
    form = urlencode({"key": keys.read, "next": next}, errors="surrogatepass").encode()
    status, headers = _send(
        app,
        "POST",
        f"{ADMIN_PREFIX}/login",
        host,
        headers=(*browser, ("content-type", "application/x-www-form-urlencoded")),
        body=form,
    )
    yield "after signing in", status, headers.get("location", "")
    status, headers = _send(app, "POST", f"{ADMIN_PREFIX}/logout", host, headers=browser)
    yield "after signing out", status, headers.get("location", "")


def _check(app: Any, keys: Keys, host: str, next: str, base: str = ADMIN_PREFIX) -> None:
    seen = set()
    for what, status, location in _redirects(app, keys, host, next):
        if not 300 <= status < 400:
            continue
        seen.add(what)
        assert browser_destination(location) == (None, None), (what, location)
        if what != "after signing in":  # 'next' may be any path on the site
            assert location.startswith(base + "/"), (what, location)
    assert "to the login page" in seen and "after signing out" in seen


def test_the_trailing_slash_redirect_is_relative(admin: tuple[FastAPI, Keys]) -> None:
    """The report of issue #12, exactly."""
    app, _ = admin
    status, headers = _send(app, "GET", f"{API}/rules/", "evil.example.com")
    assert (status, headers["location"]) == (307, f"{API}/rules")
    status, headers = _send(app, "GET", f"{API}/rules/", "evil.example.com", query="q=a%20b&x")
    assert (status, headers["location"]) == (307, f"{API}/rules?q=a%20b&x")
    assert _send(app, "GET", f"{API}/nothing/", "evil.example.com")[0] == 404


@pytest.mark.parametrize(
    "host",
    ["evil.example.com", "evil.example.com:8080", "evil.example.com/x", "a@evil.example.com", ""],
    ids=["host", "port", "path", "userinfo", "empty"],
)
def test_a_hostile_host_changes_no_location(admin: tuple[FastAPI, Keys], host: str) -> None:
    app, keys = admin
    _check(app, keys, host, f"{API}/rules")
    _status, headers = _send(app, "GET", f"{API}/rules", host, headers=(("accept", HTML),))
    assert headers["location"] == f"{ADMIN_PREFIX}/login?next={API}/rules"


@needs_corpus
@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
def test_no_payload_as_host_or_next_leads_off_the_site(
    admin: tuple[FastAPI, Keys], payload: Payload
) -> None:
    app, keys = admin
    _check(app, keys, payload.text, payload.text)
    _check(app, keys, "example.com", payload.text)


def test_mounted_under_a_root_path_the_locations_keep_the_mount(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "rules.db")
    store.upgrade()
    try:
        keys = make_keys(store)
        outer = FastAPI()
        outer.mount("/_waypost", create_admin_app(store))
        status, headers = _send(
            outer, "GET", "/_waypost/api/rules/", "evil.example.com", root_path="/site"
        )
        assert (status, headers["location"]) == (307, "/site/_waypost/api/rules")
        for payload in ("//evil.example.com", "https://evil.example.com/", "/\\evil.example.com"):
            for what, _status, location in _redirects_mounted(outer, keys, payload):
                assert browser_destination(location) == (None, None), (what, location)
                if what != "after signing in":
                    assert location.startswith("/site/_waypost/"), (what, location)
    finally:
        store.close()


def _redirects_mounted(app: Any, keys: Keys, payload: str) -> Iterator[tuple[str, int, str]]:
    browser = (("accept", HTML),)
    root = "/site"
    status, headers = _send(app, "GET", "/_waypost/api/docs/", payload, root_path=root)
    yield "slash", status, headers["location"]
    status, headers = _send(
        app, "GET", "/_waypost/api/rules", payload, headers=browser, root_path=root
    )
    yield "to the login page", status, headers["location"]
    form = urlencode({"key": keys.read, "next": payload}).encode()
    status, headers = _send(
        app,
        "POST",
        "/_waypost/login",
        payload,
        headers=(*browser, ("content-type", "application/x-www-form-urlencoded")),
        body=form,
        root_path=root,
    )
    yield "after signing in", status, headers["location"]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda tmp: SqliteStore(tmp / "missing" / "secret-name.db"), 503),
        (lambda tmp: SqliteStore(tmp / "secret-name.db", auto_upgrade=False), 503),
    ],
    ids=["unreachable", "schema-missing"],
)
def test_a_store_error_shows_no_path_or_driver_text(
    tmp_path: Path, make: Any, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The store's messages name the database and quote the driver; they are logged, and the
    body (reached before any key is checked) says only what kind of trouble it is."""
    working = SqliteStore(tmp_path / "other.db")
    _, key = working.create_key("read")  # a well-formed key, so that the store is asked
    working.close()
    store = make(tmp_path)
    try:
        app = create_admin_app(store, prefix=ADMIN_PREFIX)
        with caplog.at_level("ERROR", logger="waypost.admin"):
            answer, headers, body = _exchange(
                app,
                "GET",
                f"{API}/rules",
                "example.com",
                headers=(("authorization", f"Bearer {key}"),),
            )
        assert answer == status
        assert headers["retry-after"] == "5"
        assert b"secret-name" not in body and str(tmp_path).encode() not in body, body
        assert b"sqlite" not in body.lower(), body
        assert "secret-name" in caplog.text  # the operator still learns which database
    finally:
        store.close()
