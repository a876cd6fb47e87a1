"""Sign-in sessions over the admin API, against SQLite and PostgreSQL: listed by id (never a
token) with the user agent and address that signed in (no control character, whatever a client
sends: every payload of the hostile-input corpus), ended one at a time or for a whole key, with
the admin scope; an ended session's cookie stops working at once, though its last check was
cached."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin.admin_support import API, Keys
from tests.test_security import PAYLOADS, needs_corpus
from waypost.admin import ADMIN_PREFIX, COOKIE_NAME, CSRF_HEADER
from waypost.store._sql import SqlStore
from waypost.store.sessions import hash_token, token_session_id

Api = Callable[..., Any]
LOGIN = f"{ADMIN_PREFIX}/login"
JSON = {"Accept": "application/json"}


def sign_in(client: TestClient, key: str, headers: Mapping[str, str | bytes] | None = None) -> str:
    """Sign in at the login page (a browser of its own); the session token of the cookie set."""
    client.cookies.clear()
    signed = client.post(LOGIN, data={"key": key, "next": "/"}, headers=headers)
    assert signed.status_code == 303, signed.text
    client.cookies.clear()
    return str(signed.cookies[COOKIE_NAME])


def with_cookie(client: TestClient, token: str, method: str = "GET", path: str = "/me") -> Any:
    """A request signed in by the login cookie ``token`` alone."""
    client.cookies.clear()
    headers = {**JSON, "Cookie": f"{COOKIE_NAME}={token}"}
    if method != "GET":
        headers |= {CSRF_HEADER: "1", "Origin": "http://testserver"}
    return client.request(method, f"{API}{path}", headers=headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sessions"),
        ("DELETE", "/sessions/0123456789abcdef"),
        ("DELETE", "/keys/{read}/sessions"),
    ],
    ids=["list", "end-one", "end-a-key-s"],
)
def test_only_the_admin_scope_sees_or_ends_sessions(
    client: TestClient, keys: Keys, store: SqlStore, method: str, path: str
) -> None:
    token = sign_in(client, keys.read)
    path = path.format(read=keys.id("read"))
    if path.startswith("/sessions/"):
        path = f"/sessions/{token_session_id(token)}"
    assert client.request(method, f"{API}{path}", headers=JSON).status_code == 401
    for scope in ("read", "write"):
        refused = client.request(method, f"{API}{path}", headers=keys.bearer(scope))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden"
    assert with_cookie(client, token).status_code == 200  # nothing was ended
    assert len(store.list_sessions()) == 1
    allowed = client.request(method, f"{API}{path}", headers=keys.bearer("admin"))
    assert allowed.status_code == 200, allowed.text


def test_the_list_shows_ids_keys_and_times_never_tokens(
    client: TestClient, api: Api, keys: Keys
) -> None:
    assert api("GET", "/sessions").json() == []
    mine = sign_in(client, keys.admin)
    theirs = sign_in(client, keys.write)
    assert with_cookie(client, theirs).status_code == 200  # seen now

    listed = with_cookie(client, mine, path="/sessions")
    assert listed.status_code == 200
    sessions = listed.json()
    assert [(s["id"], s["key_id"], s["current"]) for s in sessions] == [
        (token_session_id(mine), keys.id("admin"), True),
        (token_session_id(theirs), keys.id("write"), False),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{16}", s["id"]) for s in sessions)
    assert set(sessions[0]) == {
        "id",
        "key_id",
        "created_at",
        "expires_at",
        "last_seen_at",
        "user_agent",
        "client_address",
        "current",
    }
    assert sessions[1]["last_seen_at"] is not None
    for secret in (mine, theirs, mine[4:], hash_token(mine), hash_token(theirs)):
        assert secret not in listed.text

    only = api("GET", f"/sessions?key_id={keys.id('write')}").json()
    assert [s["id"] for s in only] == [token_session_id(theirs)]
    assert not only[0]["current"]  # a bearer request has no session of its own
    unknown = api("GET", "/sessions?key_id=nosuchkey")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_ending_a_session_stops_its_cookie_at_once(
    client: TestClient, api: Api, keys: Keys
) -> None:
    token = sign_in(client, keys.write)
    other = sign_in(client, keys.write)
    assert with_cookie(client, token).status_code == 200  # the check is cached now
    session_id = token_session_id(token)

    ended = api("DELETE", f"/sessions/{session_id}")
    assert ended.status_code == 200, ended.text
    assert (ended.json()["id"], ended.json()["key_id"]) == (session_id, keys.id("write"))
    refused = with_cookie(client, token)  # at once, not after the cache's two seconds
    assert refused.status_code == 401 and refused.json()["reason"] == "unknown"
    assert with_cookie(client, other).status_code == 200  # another sign-in goes on
    assert api("GET", "/me", scope="write").status_code == 200  # and so does the key

    again = api("DELETE", f"/sessions/{session_id}")
    assert again.status_code == 404
    assert again.json()["error"] == "not_found"
    assert "no sign-in session" in again.json()["message"]
    assert api("DELETE", "/sessions/not-a-session-id").status_code == 404


def test_ending_a_key_s_sessions_stops_every_cookie_of_it_at_once(
    client: TestClient, api: Api, keys: Keys
) -> None:
    first = sign_in(client, keys.read)
    second = sign_in(client, keys.read)
    spare = sign_in(client, keys.admin)
    for token in (first, second, spare):
        assert with_cookie(client, token).status_code == 200  # cached now

    ended = api("DELETE", f"/keys/{keys.id('read')}/sessions")
    assert ended.status_code == 200, ended.text
    body = ended.json()
    assert body["key_id"] == keys.id("read")
    assert {s["id"] for s in body["ended"]} == {token_session_id(first), token_session_id(second)}
    for token in (first, second):
        refused = with_cookie(client, token)
        assert refused.status_code == 401 and refused.json()["reason"] == "unknown"
    assert with_cookie(client, spare).status_code == 200
    assert api("GET", "/me", scope="read").status_code == 200  # the key itself stays valid
    assert sign_in(client, keys.read)  # and signs in again

    assert api("DELETE", f"/keys/{keys.id('write')}/sessions").json()["ended"] == []
    missing = api("DELETE", "/keys/nosuchkey/sessions")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_a_person_may_end_their_own_session_but_not_by_a_cross_site_request(
    client: TestClient, keys: Keys
) -> None:
    token = sign_in(client, keys.admin)
    path = f"/sessions/{token_session_id(token)}"
    client.cookies.clear()
    forged = client.delete(f"{API}{path}", headers={**JSON, "Cookie": f"{COOKIE_NAME}={token}"})
    assert forged.status_code == 403 and forged.json()["error"] == "csrf"
    ended = with_cookie(client, token, "DELETE", path)
    assert ended.status_code == 200 and ended.json()["current"] is True
    assert with_cookie(client, token).status_code == 401


# -- what signed in ---------------------------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def shows_only_text(value: str) -> bool:
    return not any(unicodedata.category(char) in _UNSHOWN for char in value)


def test_the_list_shows_the_user_agent_and_address_that_signed_in(
    client: TestClient, api: Api, keys: Keys
) -> None:
    # X-Forwarded-For is the client's to write: the admin app records the peer it saw.
    mine = sign_in(client, keys.admin, {"User-Agent": FIREFOX, "X-Forwarded-For": "203.0.113.9"})
    localized = sign_in(client, keys.read, {"User-Agent": "Navigateur/2.0 (Français)".encode()})
    hostile = sign_in(client, keys.write, {"User-Agent": b"evil\x1b[2J\tagent\x00"})
    listed = {s["id"]: s for s in api("GET", "/sessions").json()}

    assert listed[token_session_id(mine)]["user_agent"] == FIREFOX
    assert {s["client_address"] for s in listed.values()} == {"testclient"}  # TestClient's peer
    assert "203.0.113.9" not in str(listed)
    assert listed[token_session_id(localized)]["user_agent"] == "Navigateur/2.0 (Français)"
    assert listed[token_session_id(hostile)]["user_agent"] == "evil\ufffd[2J\ufffdagent\ufffd"
    ended = api("DELETE", f"/sessions/{token_session_id(mine)}").json()
    assert (ended["user_agent"], ended["client_address"]) == (FIREFOX, "testclient")


def test_a_long_user_agent_is_cut(client: TestClient, api: Api, keys: Keys) -> None:
    sign_in(client, keys.read, {"User-Agent": "Agent/1.0 " + "x" * 10_000})
    (session,) = api("GET", "/sessions").json()
    assert len(session["user_agent"]) == 512 and session["user_agent"].endswith("\u2026")


def test_the_openapi_document_describes_what_signed_in(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()["components"]["schemas"]["SessionOut"]
    for field in ("user_agent", "client_address"):
        assert field in schema["properties"] and field in schema["required"]
        assert schema["properties"][field]["description"]
        assert {"type": "null"} in schema["properties"][field]["anyOf"]


@needs_corpus
def test_no_corpus_payload_as_user_agent_is_listed_with_a_control_character(
    client: TestClient, api: Api, keys: Keys
) -> None:
    sent = {}
    for payload in PAYLOADS:  # as raw header bytes: the client need not be a polite one
        token = sign_in(client, keys.read, {"User-Agent": payload.text.encode()})
        sent[token_session_id(token)] = payload
    listed = api("GET", "/sessions")
    assert listed.status_code == 200
    failures = []
    for session in listed.json():
        payload, agent = sent[session["id"]], session["user_agent"]
        if agent is not None and (not shows_only_text(agent) or len(agent) > 512):
            failures.append((payload.id, payload.text, agent))
        elif shows_only_text(payload.text) and agent != (payload.text.strip() or None):
            failures.append((payload.id, payload.text, "plain text changed", agent))
    assert len(listed.json()) == len(sent) == len(PAYLOADS) and not failures, failures[:10]
