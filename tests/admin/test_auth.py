"""Who may do what: scopes, the ways of sending a key, host-bound keys, revocation, the answer a
refused client gets (JSON or the login page), the login cookie, CSRF, the failure limit, and no
open redirect through the login page's ``next``."""

from __future__ import annotations

import importlib.util
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.admin.admin_support import API, Keys, make_keys
from waypost.admin import ADMIN_PREFIX, COOKIE_NAME, CSRF_HEADER, create_admin_app
from waypost.store._sql import SqlStore

Api = Callable[..., Any]
LOGIN = f"{ADMIN_PREFIX}/login"

SCOPED = [
    ("GET", "/rules", None, "read"),
    ("GET", "/revisions", None, "read"),
    ("POST", "/validate", {"rules": []}, "read"),
    ("POST", "/resolve", {"url": "/x"}, "read"),
    ("GET", "/export", None, "read"),
    ("POST", "/rules", {"rule": {"from": "/a", "to": "/b"}}, "write"),
    ("POST", "/rules/bulk", {"changes": []}, "write"),
    ("POST", "/import", {"format": "yaml", "content": "rules: []"}, "write"),
    ("POST", "/revisions/0/rollback", None, "write"),
    ("PUT", "/settings", {"allowed_hosts": []}, "write"),
    ("GET", "/keys", None, "admin"),
    ("POST", "/keys", {"scope": "read"}, "admin"),
    ("GET", "/sessions", None, "admin"),
    ("DELETE", "/sessions/0123456789abcdef", None, "admin"),
    ("DELETE", "/keys/nosuchkey/sessions", None, "admin"),
]
ORDER = ["read", "write", "admin"]


@pytest.mark.parametrize(
    ("method", "path", "body", "needs"),
    SCOPED,
    ids=[f"{method} {path}" for method, path, _, _ in SCOPED],
)
def test_each_scope_allows_what_it_should(
    client: TestClient, keys: Keys, method: str, path: str, body: Any, needs: str
) -> None:
    for scope in ORDER:
        response = client.request(method, f"{API}{path}", json=body, headers=keys.bearer(scope))
        allowed = ORDER.index(scope) >= ORDER.index(needs)
        if allowed:
            assert response.status_code not in (401, 403), (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert response.json()["error"] == "forbidden"


def _pair(keys: Keys, scope: str = "read") -> dict[str, str]:
    _, public, secret = str(getattr(keys, scope)).split("_", 2)
    return {"X-API-Key": public, "X-Secret-Token": secret}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (lambda k: k.bearer("read"), 200),
        (lambda k: _pair(k), 200),
        (lambda k: {**_pair(k), "X-API-Key": "wp_" + _pair(k)["X-API-Key"]}, 200),
        (lambda k: {"X-API-Key": k.read}, 200),
        (lambda k: {**_pair(k), "X-Secret-Token": "x" * 43}, 401),
        (lambda k: {"X-Secret-Token": _pair(k)["X-Secret-Token"]}, 401),
        (lambda k: {"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        (lambda k: {"Authorization": "Bearer wp_nope"}, 401),
        (lambda k: {}, 401),
    ],
    ids=[
        "bearer",
        "id-and-secret",
        "id-with-prefix",
        "whole-key-in-x-api-key",
        "wrong-secret",
        "secret-alone",
        "basic",
        "malformed",
        "none",
    ],
)
def test_ways_of_sending_a_key(
    client: TestClient, keys: Keys, headers: Callable[[Keys], dict[str, str]], status: int
) -> None:
    response = client.get(f"{API}/me", headers=headers(keys))
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "wp_" not in response.json()["message"] or "wp_<id>" in response.json()["message"]


@pytest.mark.parametrize(
    ("headers", "browser"),
    [
        ({"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, True),
        ({"Accept": "application/json"}, False),
        ({"Accept": "*/*"}, False),
        ({}, False),
        ({"Accept": "text/html", "Content-Type": "application/json"}, False),
    ],
    ids=["browser", "json-client", "curl", "no-accept", "sends-json"],
)
def test_a_refused_client_gets_what_it_can_use(
    client: TestClient, headers: dict[str, str], browser: bool
) -> None:
    response = client.get(f"{API}/rules?limit=5", headers=headers)
    if browser:
        assert response.status_code == 303
        location = urlsplit(response.headers["location"])
        assert location.path == LOGIN
        assert parse_qs(location.query)["next"] == [f"{API}/rules?limit=5"]
    else:
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthorized"
        assert response.json()["message"]


def test_a_host_bound_key_works_only_for_its_host(client: TestClient, store: SqlStore) -> None:
    _, key = store.create_key("read", host="admin.example.com")
    headers = {"Authorization": f"Bearer {key}"}
    good = client.get(f"{API}/me", headers={**headers, "Host": "admin.example.com:8443"})
    assert good.status_code == 200
    bad = client.get(f"{API}/me", headers={**headers, "Host": "evil.example.com"})
    assert bad.status_code == 401
    assert bad.json()["reason"] == "wrong_host"


def test_revocation_elsewhere_takes_effect_within_seconds(
    make_store: Callable[..., SqlStore],
) -> None:
    serving, other = make_store(), make_store()
    serving.upgrade()
    _, key = serving.create_key("read")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_admin_app(serving, prefix=ADMIN_PREFIX)) as client:
        assert client.get(f"{API}/me", headers=headers).status_code == 200  # cached now
        other.revoke_key(key.split("_")[1])  # another process: this one's cache does not know
        revoked_at = time.monotonic()
        while client.get(f"{API}/me", headers=headers).status_code == 200:
            assert time.monotonic() - revoked_at < 3.5, "a revoked key still works"
            time.sleep(0.1)
        assert client.get(f"{API}/me", headers=headers).json()["reason"] == "revoked"


def test_repeated_failures_from_one_address_get_429(sqlite_store: SqlStore) -> None:
    keys = make_keys(sqlite_store)
    with TestClient(create_admin_app(sqlite_store, prefix=ADMIN_PREFIX)) as client:
        bad = {"Authorization": f"Bearer {keys.read[:-4]}xxxx"}
        for _ in range(10):
            assert client.get(f"{API}/me", headers=bad).status_code == 401
        slowed = client.get(f"{API}/me", headers=bad)
        assert slowed.status_code == 429
        assert 1 <= int(slowed.headers["retry-after"]) <= 60
        assert slowed.json()["error"] == "too_many_failures"
        # Even a good key waits: the address is guessing.
        assert client.get(f"{API}/me", headers=keys.bearer("read")).status_code == 429
        login = client.post(LOGIN, data={"key": keys.read, "next": "/"})
        assert login.status_code == 429
        assert "retry-after" in login.headers
        # A request without any key is not a guess: it is told to sign in, not slowed down.
        assert client.get(f"{API}/me").status_code == 401


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    client.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    return client


def _sign_in(client: TestClient, key: str, next: str) -> Any:
    return client.post(LOGIN, data={"key": key, "next": next})


def test_the_login_flow_sets_a_safe_cookie_that_signs_the_browser_in(
    browser: TestClient, keys: Keys
) -> None:
    sent = browser.get(f"{API}/rules")
    assert sent.status_code == 303
    page = browser.get(sent.headers["location"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert f'value="{API}/rules"' in page.text
    wrong = _sign_in(browser, keys.read + "x", f"{API}/rules")
    assert wrong.status_code == 401
    assert COOKIE_NAME not in wrong.cookies
    signed = _sign_in(browser, keys.write, f"{API}/rules")
    assert signed.status_code == 303
    assert signed.headers["location"] == f"{API}/rules"
    cookie = signed.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", f"Path={ADMIN_PREFIX}"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()
    assert browser.get(f"{API}/rules").status_code == 200
    rule = {"rule": {"from": "/a", "to": "/b"}}
    forged = browser.post(f"{API}/rules", json=rule)
    assert forged.status_code == 403
    assert forged.json()["error"] == "csrf"
    cross = browser.post(
        f"{API}/rules", json=rule, headers={CSRF_HEADER: "1", "Origin": "https://evil.com"}
    )
    assert cross.status_code == 403
    made = browser.post(
        f"{API}/rules", json=rule, headers={CSRF_HEADER: "1", "Origin": "http://testserver"}
    )
    assert made.status_code == 201, made.text
    out = browser.post(f"{ADMIN_PREFIX}/logout")
    assert out.status_code == 303
    assert browser.get(f"{API}/rules").status_code == 303


def test_the_cookie_is_secure_over_https(app: Any, keys: Keys) -> None:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        signed = _sign_in(client, keys.read, "/")
        assert "secure" in signed.headers["set-cookie"].lower()


def test_login_from_another_site_is_refused(browser: TestClient, keys: Keys) -> None:
    response = browser.post(
        LOGIN, data={"key": keys.read, "next": "/"}, headers={"Origin": "https://evil.com"}
    )
    assert response.status_code == 403
    assert COOKIE_NAME not in response.cookies


# -- the login cookie is a server-side session ---------------------------------------------


def _session_of(signed: Any) -> str:
    """The session token a sign-in answer sets in the login cookie."""
    assert signed.status_code == 303, signed.text
    return str(signed.cookies[COOKIE_NAME])


def _with_cookie(client: TestClient, token: str, path: str = "/me", **kwargs: Any) -> Any:
    """A request carrying only ``token`` as the login cookie (a replayed or stolen copy)."""
    client.cookies.clear()
    headers = {"Cookie": f"{COOKIE_NAME}={token}", **kwargs.pop("headers", {})}
    return client.request(kwargs.pop("method", "GET"), f"{API}{path}", headers=headers, **kwargs)


def test_the_cookie_holds_a_session_never_the_key(browser: TestClient, keys: Keys) -> None:
    signed = _sign_in(browser, keys.read, f"{API}/rules")
    token = _session_of(signed)
    assert token.startswith("wps_")
    secret = keys.read.split("_", 2)[2]
    assert secret not in signed.headers["set-cookie"] and keys.id("read") not in token
    assert _with_cookie(browser, token).json()["id"] == keys.id("read")
    browser.cookies.set(COOKIE_NAME, token, path=ADMIN_PREFIX)
    again = _session_of(_sign_in(browser, keys.read, "/"))
    assert again != token  # each sign-in is a session of its own,
    assert _with_cookie(browser, token).status_code == 303  # and ends the browser's last one
    # The session may do what its key may do, no more.
    rule = {"rule": {"from": "/a", "to": "/b"}}
    csrf = {CSRF_HEADER: "1", "Origin": "http://testserver"}
    denied = _with_cookie(browser, again, "/rules", method="POST", json=rule, headers=csrf)
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"


def test_signing_out_ends_the_session_even_if_the_cookie_is_replayed(
    browser: TestClient, keys: Keys
) -> None:
    token = _session_of(_sign_in(browser, keys.write, "/"))
    browser.cookies.clear()  # the same key signed in from another browser, which signs out:
    copy = _session_of(_sign_in(browser, keys.write, "/"))
    assert browser.cookies[COOKIE_NAME] == copy
    out = browser.post(f"{ADMIN_PREFIX}/logout")
    assert out.status_code == 303 and out.headers["location"] == LOGIN
    assert f"{COOKIE_NAME}=" in out.headers["set-cookie"]  # deleted in the browser too
    replayed = _with_cookie(browser, copy, headers={"Accept": "application/json"})
    assert replayed.status_code == 401
    assert replayed.json()["reason"] == "unknown"
    assert _with_cookie(browser, token).status_code == 200  # the other sign-in goes on


def test_revoking_the_key_ends_its_sessions(browser: TestClient, keys: Keys) -> None:
    token = _session_of(_sign_in(browser, keys.write, "/"))
    assert _with_cookie(browser, token).status_code == 200
    browser.cookies.clear()
    revoked = browser.delete(f"{API}/keys/{keys.id('write')}", headers=keys.bearer("admin"))
    assert revoked.status_code == 200
    refused = _with_cookie(browser, token, headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert refused.json()["reason"] == "unknown"


def test_an_expired_session_is_refused(sqlite_store: SqlStore) -> None:
    keys = make_keys(sqlite_store)
    app = create_admin_app(sqlite_store, prefix=ADMIN_PREFIX, cookie_max_age=1)
    with TestClient(app, follow_redirects=False) as client:
        signed = _sign_in(client, keys.admin, "/")
        assert "max-age=1" in signed.headers["set-cookie"].lower()
        token = _session_of(signed)
        assert _with_cookie(client, token).status_code == 200
        time.sleep(1.1)
        expired = _with_cookie(client, token)
        assert expired.status_code == 401
        assert expired.json()["reason"] == "expired"


@pytest.mark.parametrize(
    "cookie",
    [
        lambda keys: keys.admin,  # what the cookie held before sessions: refused, not a key
        lambda keys: "wps_" + secrets.token_urlsafe(32),
        lambda keys: "not-a-session",
    ],
    ids=["old-cookie-with-the-key", "forged-session", "garbage"],
)
def test_a_forged_or_old_cookie_is_refused_and_forgotten(
    browser: TestClient, keys: Keys, cookie: Callable[[Keys], str]
) -> None:
    value = cookie(keys)
    as_program = _with_cookie(browser, value, headers={"Accept": "application/json"})
    assert as_program.status_code == 401
    assert as_program.json()["reason"] in ("malformed", "unknown")
    assert keys.admin not in as_program.text
    as_browser = _with_cookie(browser, value, "/rules")
    assert as_browser.status_code == 303
    assert urlsplit(as_browser.headers["location"]).path == LOGIN
    forgotten = as_browser.headers["set-cookie"].lower()
    assert forgotten.startswith(f"{COOKIE_NAME}=") and "max-age=0" in forgotten


def test_a_session_of_a_host_bound_key_works_only_for_its_host(
    client: TestClient, store: SqlStore
) -> None:
    _, key = store.create_key("read", host="admin.example.com")
    host = {"Host": "admin.example.com"}
    signed = client.post(LOGIN, data={"key": key, "next": "/"}, headers=host)
    token = _session_of(signed)
    good = _with_cookie(client, token, headers=host)
    assert good.status_code == 200
    bad = _with_cookie(client, token, headers={"Host": "evil.example.com"})
    assert bad.status_code == 401 and bad.json()["reason"] == "wrong_host"


def test_sign_out_and_revocation_elsewhere_take_effect_within_seconds(
    make_store: Callable[..., SqlStore],
) -> None:
    serving, other = make_store(), make_store()
    serving.upgrade()
    keys = make_keys(serving)
    with TestClient(create_admin_app(serving, prefix=ADMIN_PREFIX)) as client:
        client.follow_redirects = False
        signed_out = _session_of(_sign_in(client, keys.read, "/"))
        client.cookies.clear()  # another browser
        revoked = _session_of(_sign_in(client, keys.write, "/"))
        for token, end in [
            (signed_out, lambda: other.end_session(signed_out)),
            (revoked, lambda: other.revoke_key(keys.id("write"))),
        ]:
            assert _with_cookie(client, token).status_code == 200  # cached now
            end()  # another process: this one's cache does not know
            ended_at = time.monotonic()
            while _with_cookie(client, token).status_code == 200:
                assert time.monotonic() - ended_at < 3.5, "an ended session still works"
                time.sleep(0.1)
            assert _with_cookie(client, token).json()["reason"] == "unknown"


# -- no open redirect through next ----------------------------------------------------------


def _security_module() -> ModuleType:
    """tests/test_security.py: its corpus reader and its independent browser-URL checker."""
    path = Path(__file__).parents[1] / "test_security.py"
    spec = importlib.util.spec_from_file_location("waypost_security_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SECURITY = _security_module()


@pytest.fixture(scope="module")
def login_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    from waypost.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path_factory.mktemp("login") / "rules.db")
    _, key = store.create_key("read")
    app = create_admin_app(store, prefix=ADMIN_PREFIX)
    with TestClient(app, follow_redirects=False) as client:
        yield client, key
    store.close()


@pytest.mark.skipif(not SECURITY.PAYLOADS, reason="the hostile-input corpus is not beside the repo")
def test_no_payload_as_next_leads_off_the_site(login_client: tuple[TestClient, str]) -> None:
    client, key = login_client
    failures = []
    for payload in SECURITY.PAYLOADS:
        signed = client.post(LOGIN, data={"key": key, "next": payload.text})
        location = signed.headers.get("location", "")
        if signed.status_code != 303 or SECURITY.browser_destination(location) != (None, None):
            failures.append((payload.id, payload.text, signed.status_code, location))
        elif any(ord(c) < 0x21 or ord(c) > 0x7E for c in location):
            failures.append((payload.id, payload.text, "raw character", location))
        page = client.get(LOGIN, params={"next": payload.text})
        if page.status_code != 200 or f'value="{escape(payload.text)}"' not in page.text:
            failures.append((payload.id, payload.text, "page", page.status_code))
    assert not failures, failures[:10]


def test_a_plain_next_is_kept(login_client: tuple[TestClient, str]) -> None:
    client, key = login_client
    signed = client.post(LOGIN, data={"key": key, "next": "/_waypost/api/rules?limit=5"})
    assert signed.headers["location"] == "/_waypost/api/rules?limit=5"
    fallback = client.post(LOGIN, data={"key": key, "next": "//evil.com"})
    assert fallback.headers["location"] == f"{ADMIN_PREFIX}/"
