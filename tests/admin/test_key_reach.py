"""A key made through the admin API never reaches further than the key or the sign-in session
making it: not another host, not a later expiry, not a wider scope. Against SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin.test_sessions_api import sign_in
from waypost.admin import COOKIE_NAME, CSRF_HEADER
from waypost.store._sql import SqlStore
from waypost.store.keys import KeyReach, limit_new_key

HOST = "testserver"  # the Host the TestClient sends
SOON = datetime.now(UTC) + timedelta(days=1)  # computed once: later than any test runs


def _maker(store: SqlStore, **reach: Any) -> str:
    """An admin key with ``reach`` (host=, expires_at=): its text."""
    return store.create_key("admin", note="maker", **reach)[1]


def _create(client: TestClient, maker: str, **body: Any) -> Any:
    return client.post(
        "/_waypost/api/keys",
        json={"scope": "admin", **body},
        headers={"Authorization": f"Bearer {maker}"},
    )


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("reach", "body", "host", "expires"),
    [
        ({"host": HOST}, {}, HOST, None),
        ({"host": HOST, "expires_at": SOON}, {"host": "TESTSERVER:443"}, HOST, SOON),
        ({"expires_at": SOON}, {}, None, SOON),
        ({"host": HOST, "expires_at": SOON}, {"expires": "10m"}, HOST, "10m"),
        ({"host": HOST, "expires_at": SOON}, {"note": "ci"}, HOST, SOON),
    ],
    ids=["host-inherited", "same-host", "expiry-inherited", "earlier-expiry", "both"],
)
def test_a_key_made_by_a_narrow_key_is_as_narrow(
    client: TestClient,
    store: SqlStore,
    reach: dict[str, Any],
    body: dict[str, Any],
    host: str | None,
    expires: Any,
) -> None:
    made = _create(client, _maker(store, **reach), **body)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key["host"] == host
    expires_at = _moment(key["expires_at"])
    if expires == "10m":
        assert expires_at is not None and expires_at < SOON
    else:
        assert expires_at == expires


@pytest.mark.parametrize(
    ("reach", "body", "path"),
    [
        ({"host": HOST}, {"host": "elsewhere.example"}, "host"),
        ({"expires_at": SOON}, {"expires": "30d"}, "expires"),
        ({"expires_at": SOON}, {"expires": "2999-01-01"}, "expires"),
    ],
    ids=["another-host", "later-expiry", "far-date"],
)
def test_a_key_cannot_make_a_broader_key(
    client: TestClient, store: SqlStore, reach: dict[str, Any], body: dict[str, Any], path: str
) -> None:
    before = len(store.list_keys())
    refused = _create(client, _maker(store, **reach), **body)
    assert refused.status_code == 403, refused.text
    answer = refused.json()
    assert answer["error"] == "too_broad"
    assert [p["path"] for p in answer["problems"]] == [path]
    assert "leave" in answer["message"] or "earlier" in answer["message"]
    assert len(store.list_keys()) == before + 1  # only the maker


def _post_with_cookie(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    """``POST /api/keys`` signed in by the login cookie ``token`` alone (as the web page)."""
    client.cookies.clear()
    headers = {
        "Accept": "application/json",
        "Cookie": f"{COOKIE_NAME}={token}",
        CSRF_HEADER: "1",
        "Origin": f"http://{HOST}",
    }
    return client.post("/_waypost/api/keys", json=body, headers=headers)


def test_a_key_made_in_a_sign_in_session_ends_with_it(client: TestClient, store: SqlStore) -> None:
    token = sign_in(client, _maker(store))  # an unbound admin key that never expires
    (session,) = store.list_sessions()
    refused = _post_with_cookie(client, token, {"scope": "read", "expires": "30d"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["problems"][0]["path"] == "expires"
    made = _post_with_cookie(client, token, {"scope": "read"})
    assert made.status_code == 201, made.text
    assert _moment(made.json()["key"]["expires_at"]) == session.expires_at


def test_a_sign_in_session_ends_no_later_than_its_key(store: SqlStore) -> None:
    key, _ = store.create_key("admin", expires_at=SOON)
    session, _ = store.create_session(key.id, lifetime=30 * 24 * 3600)
    assert session.expires_at == SOON
    (listed,) = store.list_sessions()
    assert listed.expires_at == SOON


@pytest.mark.parametrize(
    ("maker", "scope", "problems"),
    [
        (KeyReach("admin"), "admin", []),
        (KeyReach("write"), "read", []),
        (KeyReach("write"), "admin", ["scope"]),
        (KeyReach("read", "a.example", SOON), "write", ["scope", "expires"]),
    ],
    ids=["admin-admin", "write-read", "write-admin", "everything"],
)
def test_limit_new_key_never_widens_the_scope(
    maker: KeyReach, scope: Any, problems: list[str]
) -> None:
    far = SOON + timedelta(days=1) if maker.expires_at else None
    _, _, found = limit_new_key(maker, scope, None, far)
    assert [path for path, _ in found] == problems


def test_the_login_cookie_ends_no_later_than_its_key(client: TestClient, store: SqlStore) -> None:
    client.cookies.clear()
    signed = client.post(
        "/_waypost/login",
        data={"key": _maker(store, expires_at=datetime.now(UTC) + timedelta(hours=1)), "next": "/"},
        headers={"Origin": f"http://{HOST}"},
    )
    assert signed.status_code == 303, signed.text
    max_age = int(signed.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert 3000 < max_age <= 3600  # the key's hour, not the cookie's usual 8 hours


# -- access keys (api_key guards) -------------------------------------------------------------


def test_an_access_key_is_made_listed_and_never_opens_the_admin_api(
    client: TestClient, store: SqlStore
) -> None:
    maker = _maker(store)
    made = client.post(
        "/_waypost/api/keys",
        json={"audiences": ["partners"], "note": "ACME", "host": "api.example.com"},
        headers={"Authorization": f"Bearer {maker}"},
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert (key["scope"], key["audiences"], key["host"]) == (None, ["partners"], "api.example.com")
    listed = client.get("/_waypost/api/keys", headers={"Authorization": f"Bearer {maker}"})
    assert listed.status_code == 200
    assert [k["audiences"] for k in listed.json() if k["id"] == key["id"]] == [["partners"]]
    refused = client.get(
        "/_waypost/api/rules", headers={"Authorization": f"Bearer {made.json()['secret']}"}
    )
    assert refused.status_code == 401
    assert "does not open the admin API" in refused.text
    # Neither a scope nor an audience: refused, saying both.
    empty = client.post("/_waypost/api/keys", json={}, headers={"Authorization": f"Bearer {maker}"})
    assert empty.status_code == 422
    assert "audience" in empty.text
    bad = client.post(
        "/_waypost/api/keys",
        json={"audiences": ["has space"]},
        headers={"Authorization": f"Bearer {maker}"},
    )
    assert bad.status_code == 422
