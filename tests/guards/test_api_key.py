"""The api_key guard in the engine: access keys from a KeyRing (no store needed here)."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import pytest

from waypost import Engine
from waypost.exceptions import RulesError
from waypost.guards import AccessKey, KeyRing
from waypost.guards.api_key import secret_hash

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

SECRET = "Zq3" * 8
KEY = f"wp_partner1_{SECRET}"
HOST = "api.example.com"
BROWSER = {"Accept": "text/html", "Host": HOST}
RULES: list[dict[str, Any]] = [
    {"from": "/api/partners/<path:rest>", "require": "partners", "login_url": "/login"},
    {"from": "/api/partners/old", "to": "/api/partners/new"},
    {"from": "/api/staff/<path:rest>", "require": "staff"},
    {"from": "/login", "respond": {"status": 200, "body": "log in"}},
]


def ring_of(*keys: AccessKey) -> KeyRing:
    return KeyRing(keys)


def partner_key(**changes: Any) -> AccessKey:
    fields: dict[str, Any] = {
        "id": "partner1",
        "secret_hash": secret_hash(SECRET),
        "audiences": frozenset({"partners"}),
        "host": HOST,
        "expires_at": None,
    }
    fields.update(changes)
    return AccessKey(**fields)


def engine_with(ring: KeyRing, **guard_options: Any) -> Engine:
    return Engine(
        RULES,
        guards={
            "partners": {"api_key": {"audience": "partners", **guard_options}},
            "staff": {"api_key": {"audience": "staff"}},
        },
        keys=ring,
    )


@pytest.fixture
def ring() -> KeyRing:
    return ring_of(partner_key())


@pytest.fixture
def engine(ring: KeyRing) -> Engine:
    return engine_with(ring)


def bearer(key: str = KEY, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Host": HOST, **more}


@pytest.mark.parametrize(
    "headers",
    [
        bearer(),
        {"X-API-Key": "partner1", "X-Secret-Token": SECRET, "Host": HOST},
        {"X-API-Key": "wp_partner1", "X-Secret-Token": SECRET, "Host": HOST},
        {"X-API-Key": KEY, "Host": HOST},
        {"authorization": f"bearer  {KEY} ", "host": f"{HOST.upper()}:443"},
    ],
    ids=["bearer", "key-id-and-secret-token", "prefixed-id", "whole-key-in-x-api-key", "spelling"],
)
def test_a_good_key_opens_the_area_and_the_app_learns_which(
    engine: Engine, headers: dict[str, str]
) -> None:
    decision = engine.resolve("GET", "/api/partners/report", headers)
    assert decision.action == "pass"
    assert dict(decision.headers) == {
        "X-Waypost-User": "partner1",
        "X-Waypost-Guard": "partners",
        "X-Waypost-Key-Id": "partner1",
    }
    # What the answer depends on, for shared caches: every header a key may come in.
    assert {"Authorization", "X-API-Key", "X-Secret-Token"} <= set(decision.vary)
    # An exact redirect inside the area is reached only with the key (guards are a layer).
    assert engine.resolve("GET", "/api/partners/old", headers).location == "/api/partners/new"


def test_a_json_client_without_a_key_gets_401_json_with_a_bearer_challenge(
    engine: Engine,
) -> None:
    decision = engine.resolve("GET", "/api/partners/old", {"Accept": "application/json"})
    assert decision.status == 401
    assert json.loads(decision.body or "") == {
        "error": "unauthorized",
        "message": "this page needs you to log in",
    }
    assert dict(decision.headers)["WWW-Authenticate"] == 'Bearer realm="partners"'


def test_a_browser_without_a_key_goes_to_the_login_page(engine: Engine) -> None:
    decision = engine.resolve("GET", "/api/partners/x?page=2", BROWSER)
    assert (decision.status, decision.location) == (302, "/login?next=/api/partners/x%3Fpage%3D2")


@pytest.mark.parametrize(
    "secret_or_id",
    [("partner1", "W" * 24), ("nosuchkey", SECRET), ("nosuchkey", "W" * 24)],
    ids=["wrong-secret", "unknown-id", "both"],
)
def test_a_wrong_key_gets_the_same_answer_whatever_was_wrong(
    engine: Engine, secret_or_id: tuple[str, str]
) -> None:
    key_id, secret = secret_or_id
    decision = engine.resolve("GET", "/api/partners/x", bearer(f"wp_{key_id}_{secret}"))
    assert decision.status == 401
    assert dict(decision.headers)["WWW-Authenticate"] == (
        'Bearer realm="partners", error="invalid_token"'
    )
    assert json.loads(decision.body or "")["error"] == "unauthorized"


def test_the_secret_is_compared_in_constant_time_even_for_an_unknown_id(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("waypost.guards.api_key.hmac.compare_digest", spy)
    engine.resolve("GET", "/api/partners/x", bearer(f"wp_nosuchkey_{SECRET}"))
    engine.resolve("GET", "/api/partners/x", bearer(f"wp_partner1_{'W' * 24}"))
    assert len(compared) == 2
    # Both compared a stored-looking hash with the hash of what was sent: the same work.
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_repeated_wrong_keys_from_one_client_get_429(ring: KeyRing) -> None:
    engine = engine_with(ring, max_failures=3, window=60)
    wrong = bearer(f"wp_partner1_{'W' * 24}")
    statuses = [
        engine.resolve("GET", "/api/partners/x", wrong, client_ip="192.0.2.7").status
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    limited = engine.resolve("GET", "/api/partners/x", wrong, client_ip="192.0.2.7")
    assert int(dict(limited.headers)["Retry-After"]) >= 1
    # Another client is not held back; a key checked before still passes.
    assert engine.resolve("GET", "/api/partners/x", wrong, client_ip="192.0.2.8").status == 401


def test_a_key_of_another_audience_is_403_not_a_login_loop(engine: Engine) -> None:
    decision = engine.resolve("GET", "/api/staff/x", bearer(**{"Accept": "text/html"}))
    assert decision.status == 403
    assert decision.location is None


def test_a_key_bound_to_a_host_is_refused_elsewhere(engine: Engine) -> None:
    decision = engine.resolve("GET", "/api/partners/x", {**bearer(), "Host": "evil.example"})
    assert decision.status == 403
    unbound = engine_with(ring_of(partner_key(host=None)))
    assert unbound.resolve("GET", "/api/partners/x", {**bearer(), "Host": "x.example"}).action == (
        "pass"
    )


def test_an_expired_key_stops_working(ring: KeyRing) -> None:
    ring.replace([partner_key(expires_at=time.time() + 3600)])
    engine = engine_with(ring)
    assert engine.resolve("GET", "/api/partners/x", bearer()).action == "pass"
    ring.replace([partner_key(expires_at=time.time() - 1)])
    assert engine.resolve("GET", "/api/partners/x", bearer()).status == 401


def test_a_key_gone_from_the_ring_is_refused_at_once_though_it_passed_before(
    engine: Engine, ring: KeyRing
) -> None:
    assert engine.resolve("GET", "/api/partners/x", bearer()).action == "pass"
    ring.replace([])  # revoked: the store's ring reloads without it
    assert engine.resolve("GET", "/api/partners/x", bearer()).status == 401


@pytest.mark.parametrize(
    "query",
    [f"api_key={KEY}", "access_token=abc", f"q={KEY}", "token=x&page=2"],
    ids=["api_key", "access_token", "a-key-under-any-name", "token"],
)
@pytest.mark.parametrize("client", ["json", "browser"])
def test_a_key_in_the_query_string_is_refused_with_where_to_put_it(
    engine: Engine, query: str, client: str
) -> None:
    headers = BROWSER if client == "browser" else {"Host": HOST}
    decision = engine.resolve("GET", f"/api/partners/x?{query}", headers)
    # Told, never redirected: the login redirect's 'next' would carry the key on.
    assert (decision.status, decision.location) == (401, None)
    assert "Authorization: Bearer" in (decision.body or "")
    assert "X-Secret-Token" in (decision.body or "")


def test_a_malformed_bearer_token_is_told_what_a_key_looks_like(engine: Engine) -> None:
    decision = engine.resolve("GET", "/api/partners/x", bearer("eyJhbGciOi.not-ours.sig"))
    assert decision.status == 401
    assert "Authorization: Bearer" in (decision.body or "")


def test_explain_says_which_key_passed_and_never_shows_the_secret(engine: Engine) -> None:
    trace = engine.explain("GET", "/api/partners/old", bearer())
    text = repr(trace)
    assert "guard 'partners' (api_key) passed: key 'partner1'" in text
    assert SECRET not in text
    failed = engine.explain("GET", "/api/partners/old", bearer(f"wp_partner1_{'W' * 24}"))
    assert "guard 'partners' (api_key) failed: unknown, revoked or wrong key" in repr(failed)
    assert "W" * 24 not in repr(failed)


def test_last_use_is_noted_in_memory_for_the_store_to_write(engine: Engine, ring: KeyRing) -> None:
    before = time.time()
    for _ in range(3):
        engine.resolve("GET", "/api/partners/x", bearer())
    used = ring.take_uses()
    assert list(used) == ["partner1"] and used["partner1"] >= before
    assert ring.take_uses() == {}


def test_an_api_key_guard_without_a_store_is_a_load_error_that_says_what_to_do() -> None:
    with pytest.raises(RulesError) as raised:
        Engine(RULES, guards={"partners": {"api_key": {"audience": "partners"}}})
    message = str(raised.value)
    assert "an 'api_key' guard checks the access keys of a rule store" in message
    assert "--db" in message and "keys=" in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"audience": "part ners"}, "an audience is letters, digits"),
        ({"audience": "partners", "max_failures": 0}, "'max_failures' is a positive number"),
        ({"audiense": "partners"}, "did you mean 'audience'?"),
    ],
    ids=["bad-audience", "bad-max_failures", "misspelt-option"],
)
def test_bad_api_key_options_are_load_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(RulesError, match=message):
        Engine(RULES[:1], guards={"partners": {"api_key": options}}, keys=KeyRing())


def test_a_remembered_key_is_found_by_every_header_a_key_may_come_in(engine: Engine) -> None:
    """A Basic header sent for another guard, the same on two requests, must not make the
    second request's wrong X-API-Key pass on the first one's remembered check."""
    basic = {"Authorization": "Basic YW5uOnMzY3JldA==", "Host": HOST}
    good = {**basic, "X-API-Key": "partner1", "X-Secret-Token": SECRET}
    assert engine.resolve("GET", "/api/partners/x", good).action == "pass"
    wrong = {**basic, "X-API-Key": "partner1", "X-Secret-Token": "W" * 24}
    assert engine.resolve("GET", "/api/partners/x", wrong).status == 401
    assert engine.resolve("GET", "/api/partners/x", basic).status == 401
