"""429 after repeated failures: a sliding window of wrong credentials per guard and client."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.guards.test_session import SECRET, flask_cookie
from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.guards import Allowed, Denied
from waypost.guards._limit import FailureWindow
from waypost.guards.basic import BasicGuard, read_htpasswd
from waypost.guards.session import SessionGuard
from waypost.rules.request import Request

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")


class Clock:
    """time.monotonic and time.time, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_000.0
        self.wall = time.time()
        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        monkeypatch.setattr(time, "time", lambda: self.wall + self.now - 1_000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def from_client(headers: dict[str, str], client: str | None = "192.0.2.1") -> Request:
    return Request("GET", "/admin/x", headers=headers, client_ip=client)


def test_the_window_slides(clock: Clock) -> None:
    window = FailureWindow(max_failures=3, window=60)
    for _ in range(2):
        window.failed("a")
        clock.advance(10)
    assert window.retry_after("a") is None  # two failures: not yet
    window.failed("a")
    # The oldest failure (at 0 s) leaves the window at 60 s; it is now 20 s.
    assert window.retry_after("a") == 40
    assert window.retry_after("b") is None  # another client
    clock.advance(40)
    assert window.retry_after("a") is None  # the oldest left: two in the window
    clock.advance(60)
    assert window.retry_after("a") is None
    assert len(window) == 0  # forgotten once all left


def test_an_unknown_client_is_never_held_back() -> None:
    window = FailureWindow(max_failures=1, window=60)
    window.failed(None)
    assert window.retry_after(None) is None
    assert len(window) == 0


def test_memory_is_bounded_the_oldest_client_is_forgotten(clock: Clock) -> None:
    window = FailureWindow(max_failures=2, window=60, max_clients=3)
    for client in ("a", "b", "c"):
        window.failed(client)
        clock.advance(1)
    window.failed("a")  # 'a' failed last now: 'b' is the oldest
    window.failed("d")
    assert len(window) == 3
    assert window.retry_after("a") is not None  # two failures kept
    window.failed("b")  # 'b' was forgotten: it starts again
    assert window.retry_after("b") is None
    for n in range(1_000):
        window.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(window) == 3
    assert all(len(times) <= 2 for times in window._failures.values())


@pytest.fixture
def staff(htpasswd: Path) -> BasicGuard:
    return BasicGuard("staff", read_htpasswd(htpasswd), "Staff", max_failures=3, window=60)


def test_basic_wrong_passwords_then_429_with_retry_after(staff: BasicGuard, clock: Clock) -> None:
    for _ in range(3):
        outcome = staff.check(from_client(basic("ann", "wrong")))
        assert isinstance(outcome, Denied) and outcome.status == 401
        clock.advance(5)
    held = staff.check(from_client(basic("ann", "s3cret")))  # even the right one, unchecked
    assert held == Denied(429, "too many wrong credentials from this client", None, 45)
    assert isinstance(staff.check(from_client(basic("ann", "s3cret"), "192.0.2.2")), Allowed)
    clock.advance(45)
    assert isinstance(staff.check(from_client(basic("ann", "s3cret"))), Allowed)


def test_basic_an_unknown_user_is_a_failure_and_no_credential_is_not(
    staff: BasicGuard, clock: Clock
) -> None:
    for _ in range(10):
        assert staff.check(from_client({})).status == 401  # type: ignore[union-attr]
    for _ in range(3):
        staff.check(from_client(basic("mallory", "x")))
    assert staff.check(from_client(basic("bob", "hunter2"))).status == 429  # type: ignore[union-attr]


def test_basic_remembered_credentials_still_pass(staff: BasicGuard, clock: Clock) -> None:
    assert isinstance(staff.check(from_client(basic("ann", "s3cret"))), Allowed)
    for _ in range(3):
        staff.check(from_client(basic("ann", "guess")))
    assert isinstance(staff.check(from_client(basic("ann", "s3cret"))), Allowed)


def test_session_forged_cookies_count_expired_and_missing_do_not(clock: Clock) -> None:
    guard = SessionGuard("login", [SECRET], max_age=60, max_failures=2, window=60)
    old = flask_cookie({"_user_id": "42"})
    clock.advance(120)  # 'old' has expired; make the others anew below
    good = flask_cookie({"_user_id": "7"})
    logged_out = flask_cookie({"cart": [1]})

    def status(cookie: str | None) -> int | None:
        headers = {"Cookie": f"session={cookie}"} if cookie else {}
        outcome = guard.check(from_client(headers))
        return None if isinstance(outcome, Allowed) else outcome.status

    for cookie in [None, old, logged_out] * 5:
        assert status(cookie) == 401
    assert status(good) is None
    assert status(good[:-2] + "xx") == 401
    assert status("forged.cookie.value") == 401
    assert status(flask_cookie({"_user_id": "8"})) == 429  # not verified while held back
    assert status(good) is None  # remembered as good
    clock.advance(61)
    assert status(flask_cookie({"_user_id": "8"})) is None


RULES = """\
guards:
  staff:
    basic: {htpasswd: staff.htpasswd, max_failures: 2, window: 30}
rules:
  - from: /admin/<path:rest>
    require: staff
"""


def test_the_engine_answers_429_with_retry_after(
    htpasswd: Path, tmp_path: Path, clock: Clock
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    engine = Engine.from_file(tmp_path / "rules.yaml")
    wrong = {**basic("ann", "nope"), "Accept": "application/json"}
    for _ in range(2):
        assert engine.resolve("GET", "/admin/x", wrong, "198.51.100.9").status == 401
    decision = engine.resolve("GET", "/admin/x", wrong, "198.51.100.9")
    assert decision.status == 429
    headers = dict(decision.headers)
    assert headers["Retry-After"] == "30"
    assert headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in headers
    assert json.loads(decision.body or "")["error"] == "too_many_requests"
    browser = {**basic("ann", "nope"), "Accept": "text/html"}
    page = engine.resolve("GET", "/admin/x", browser, "198.51.100.9")
    assert page.status == 429  # a browser too: no login redirect
    assert (page.body or "").startswith("429 Too many requests:")
    explained = engine.explain("GET", "/admin/x", wrong, "198.51.100.9")
    assert "too many wrong credentials" in explained.steps[-1].reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("max_failures: 0", "'max_failures' is a positive number, got 0"),
        ("window: -5", "'window' is a positive number, got -5"),
        ("max_failure: 3", "did you mean 'max_failures'?"),
    ],
    ids=["zero-failures", "negative-window", "misspelt"],
)
def test_bad_limits_are_load_errors(
    htpasswd: Path, tmp_path: Path, options: str, message: str
) -> None:
    text = RULES.replace("max_failures: 2, window: 30", options)
    (tmp_path / "rules.yaml").write_text(text)
    with pytest.raises(RulesError, match=message):
        Engine.from_file(tmp_path / "rules.yaml")


def test_explaining_a_wrong_credential_does_not_count_against_the_client() -> None:
    from waypost import Engine
    from waypost.guards import AccessKey, KeyRing

    ring = KeyRing([AccessKey("k1", "0" * 64, frozenset({"p"}))])
    engine = Engine(
        [{"from": "/api/<path:rest>", "require": "p"}],
        guards={"p": {"api_key": {"audience": "p", "max_failures": 2}}},
        keys=ring,
    )
    wrong = {"Authorization": "Bearer wp_k1_" + "x" * 24}
    for _ in range(5):
        trace = engine.explain("GET", "/api/x", wrong, client_ip="192.0.2.1")
        assert trace.decision.status == 401
    assert engine.resolve("GET", "/api/x", wrong, client_ip="192.0.2.1").status == 401
    assert engine.resolve("GET", "/api/x", wrong, client_ip="192.0.2.1").status == 401
    assert engine.resolve("GET", "/api/x", wrong, client_ip="192.0.2.1").status == 429
