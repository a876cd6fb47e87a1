"""The session guard, against cookies made by real Flask (and Flask-Login's ``_user_id``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import flask
import pytest

from waypost.guards import Allowed, Denied
from waypost.guards.session import SessionGuard
from waypost.rules.request import Request

SECRET = "flask-secret"


def flask_cookie(data: dict[str, Any], secret: str = SECRET, cookie: str = "session") -> str:
    """The session cookie a real Flask app sets for ``data``."""
    app = flask.Flask(__name__)
    app.secret_key = secret
    app.config["SESSION_COOKIE_NAME"] = cookie

    @app.post("/set")
    def set_session() -> str:
        flask.session.update(data)
        return "ok"

    client = app.test_client()
    client.post("/set")
    found = client.get_cookie(cookie)
    assert found is not None
    return found.value


def check(guard: SessionGuard, cookie: str, name: str = "session") -> Allowed | Denied:
    return guard.check(Request("GET", "/account", headers={"Cookie": f"{name}={cookie}"}))


def test_a_flask_login_session_passes_with_the_user_id() -> None:
    cookie = flask_cookie({"_user_id": "42", "_fresh": True, "when": (1, uuid.UUID(int=5))})
    outcome = check(SessionGuard("login", [SECRET]), cookie)
    assert outcome == Allowed("42", {"user": "42"}, "session '_user_id' = '42'")


def test_a_large_compressed_session_passes() -> None:
    cookie = flask_cookie({"_user_id": "ann", "blob": "x" * 2000})
    assert cookie.startswith(".")  # itsdangerous compressed it
    assert isinstance(check(SessionGuard("login", [SECRET]), cookie), Allowed)


def test_another_cookie_name_and_key() -> None:
    cookie = flask_cookie({"uid": "7"}, cookie="app_session")
    guard = SessionGuard("login", [SECRET], cookie="app_session", key="uid")
    assert check(guard, cookie, "app_session") == Allowed("7", {"user": "7"}, "session 'uid' = '7'")


@pytest.mark.parametrize(
    ("cookie", "reason"),
    [
        (None, "no 'session' cookie"),
        ("tampered", "bad signature"),
        ("other-secret", "bad signature"),
        ("no-user", "the session has no '_user_id'"),
    ],
    ids=["none", "tampered", "other-secret", "not-logged-in"],
)
def test_a_failure_is_a_401_that_never_shows_the_cookie(cookie: str | None, reason: str) -> None:
    guard = SessionGuard("login", [SECRET])
    value = {
        None: "",
        "tampered": flask_cookie({"_user_id": "42"})[:-2] + "xx",
        "other-secret": flask_cookie({"_user_id": "42"}, secret="another"),
        "no-user": flask_cookie({"cart": [1, 2]}),
    }[cookie]
    outcome = check(guard, value) if value else guard.check(Request("GET", "/account"))
    assert isinstance(outcome, Denied)
    assert outcome.status == 401
    assert reason in outcome.reason
    assert not value or value not in outcome.reason


def test_an_expired_session_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = flask_cookie({"_user_id": "42"})
    guard = SessionGuard("login", [SECRET], max_age=60)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 120)
    outcome = check(guard, cookie)
    assert isinstance(outcome, Denied)
    assert "expired" in outcome.reason


def test_a_verified_cookie_is_remembered_and_a_failure_is_not() -> None:
    guard = SessionGuard("login", [SECRET])
    cookie = flask_cookie({"_user_id": "42"})
    assert check(guard, cookie) == Allowed("42", {"user": "42"}, "session '_user_id' = '42'")
    again = check(guard, cookie)
    assert again == Allowed("42", {"user": "42"}, "session '_user_id' = '42' (cached)")
    tampered = cookie[:-2] + "xx"
    for _ in range(2):
        outcome = check(guard, tampered)
        assert isinstance(outcome, Denied) and "bad signature" in outcome.reason


@pytest.mark.parametrize(
    ("max_age", "later", "passes"),
    [
        (3600, 30, True),  # within the cache and the session
        (3600, 90, True),  # the cache ran out: verified again, still valid
        (45, 50, False),  # the session ran out before the cache would have
        (45, 90, False),
    ],
    ids=["cached", "cache-ran-out", "session-expired-within-cache", "both-ran-out"],
)
def test_a_remembered_cookie_never_outlives_max_age(
    monkeypatch: pytest.MonkeyPatch, max_age: int, later: float, passes: bool
) -> None:
    cookie = flask_cookie({"_user_id": "42"})
    guard = SessionGuard("login", [SECRET], max_age=max_age)
    assert isinstance(check(guard, cookie), Allowed)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + later)
    outcome = check(guard, cookie)
    assert isinstance(outcome, Allowed) is passes
    if not passes:
        assert isinstance(outcome, Denied) and "expired" in outcome.reason


def test_the_cache_of_verified_cookies_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from waypost.guards import session

    monkeypatch.setattr(session, "_CACHE_SIZE", 3)
    guard = SessionGuard("login", [SECRET])
    for user in range(10):
        assert isinstance(check(guard, flask_cookie({"_user_id": str(user)})), Allowed)
        assert len(guard._passed) <= 3
