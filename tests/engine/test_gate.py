"""The compiled road's guard gate (waypost/_gate.c) against the Python guard layer.

The gate lets a request through when every guard its guard rules require remembers its
credential (a session cookie, an access key, a bearer token that passed before), and answers
nothing else: whatever it does not let through, a denial above all, is the Python guard layer's.
So wherever it answers, its decision must be the Python road's, field by field; where it answers
None, the engine's resolve() gives the Python road's. Generated rule sets, guard rules and
requests check that, with every kind of credential a client sends (good, forged, twice, in
another case), every path trick of the bypass corpus, and the memories running out or revoked.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.engine.test_compiled import fields, python_road, rule_mappings, urls_for
from tests.guards.test_session import flask_cookie
from tests.server.test_path_normal_form import PATHS
from waypost import Engine
from waypost.decision import Decision
from waypost.engine._compiled import FastPath
from waypost.exceptions import RulesError
from waypost.guards import AccessKey, KeyRing
from waypost.guards.api_key import secret_hash
from waypost.rules.request import LazyHeaders, Request

pytestmark = pytest.mark.skipif(
    FastPath is None and not os.environ.get("WAYPOST_TEST_COMPILED"),
    reason="built without a C compiler: the Python road answers every request",
)

SESSION_SECRET = "gate-session-secret"
JWT_SECRET = "gate-jwt-secret-of-at-least-32-bytes!"
KEY_SECRET = "Zq3" * 8
KEY = f"wp_partner1_{KEY_SECRET}"
GUARDS: dict[str, Any] = {
    "login": {
        "session": {"cookie": "session", "secret_env": "WAYPOST_GATE_SESSION", "key": "_user_id"}
    },
    "partners": {"api_key": {"audience": "partners"}},
    "members": {"jwt": {"secret_env": "WAYPOST_GATE_JWT", "audience": "site"}},
    "code": lambda request: {"user": "ann"} if request.headers.get("x-pass") else None,
}
_clients = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def secrets() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAYPOST_GATE_SESSION", SESSION_SECRET)
        patch.setenv("WAYPOST_GATE_JWT", JWT_SECRET)
        yield


PARTNER = AccessKey("partner1", secret_hash(KEY_SECRET), frozenset({"partners"}))


def ring_of(**changes: Any) -> KeyRing:
    return KeyRing([dataclasses.replace(PARTNER, **changes)])


def token(**claims: Any) -> str:
    payload = {"sub": "bea", "aud": "site", "exp": int(time.time()) + 3600, **claims}
    return str(jwt.encode(payload, JWT_SECRET, algorithm="HS256"))


COOKIE = flask_cookie({"_user_id": "42"}, secret=SESSION_SECRET)
TOKEN = token()
#: What clients send: each kind of credential, good and bad, and the ways it may be sent.
CREDENTIALS: list[list[tuple[str, str]]] = [
    [],
    [("Cookie", f"session={COOKIE}; theme=dark")],
    [("cookie", f"theme=dark; session={COOKIE}"), ("Accept", "application/json")],
    [("Cookie", f"session={COOKIE}"), ("Cookie", "theme=dark")],  # joined by Python
    [("Cookie", f"session={COOKIE[:-2]}xx")],  # forged
    [("Authorization", f"Bearer {KEY}")],
    [("authorization", f"  bearer   {KEY} ")],
    [("X-API-Key", "partner1"), ("X-Secret-Token", KEY_SECRET)],
    [("x-api-key", "wp_partner1"), ("X-SECRET-TOKEN", KEY_SECRET), ("Host", "a.example")],
    [("X-API-Key", KEY)],
    [("Authorization", f"Bearer {KEY[:-1]}x")],  # a wrong secret
    [("Authorization", f"Bearer {KEY}"), ("Authorization", f"Bearer {KEY}")],
    [("Authorization", f"Bearer {TOKEN}")],
    [("Authorization", f"BEARER {TOKEN}"), ("Cookie", f"session={COOKIE}")],
    [("Authorization", f"Bearer {token(aud='other')}")],
    [("Authorization", f"Basic {TOKEN}")],
    [("Authorization", f"Bearer {TOKEN}"), ("X-Pass", "1")],
    [("Co\u212akie", f"session={COOKIE}")],  # 'K' (Kelvin) lower-cases to 'k'
]
GUARD_RULES: list[dict[str, Any]] = [
    {"from": "/a/<path:p>", "require": "login"},
    {"from": "/k/<path:p>", "require": "partners"},
    {"from": "/b/<path:p>", "require": "members"},
    {"from": "/x", "require": "partners"},
    {"from": "/X", "require": "login", "case": "insensitive"},
    {"from": "/s/", "require": "login", "trailing_slash": "strict"},
    {"from": "/c/<path:p>", "require": ["login", "partners"]},
    {"from": "/d/<path:p>", "require": "code"},
    {"from": "/r/<path:p>", "require": "members", "rewrite": "/internal/{p}"},
    {"from": "/<v>/q/<path:p>", "require": "login"},  # a shape of its own: no gate
    {"from": "/5/<path:p>", "require": "partners", "methods": ["GET"]},  # conditional: no gate
]
#: Rules that send a request from one area into another.
MOVES: list[dict[str, Any]] = [
    {"from": "/m/<path:p>", "rewrite": "/a/{p}"},
    {"from": "/m2/<path:p>", "rewrite": "/x"},
    {"from": "/m3/<path:p>", "rewrite": "/open/{p}"},
    {"from": "/a/old", "to": "/a/new"},
    {"from": "/a/set", "rewrite": "/internal", "set_headers": {"X-Rule": "1"}},
]
EXTRA_URLS = ["/a/1", "/k/c", "/a/b/c", "/x", "/X", "/a/", "/a//b", "/a/./b", "/a/../x", "/a/b;x",
              "/a\\b", "/A/b", "/c/d", "/r/q", "/s/", "/s", "/a/%41", "/a/é", "/a/\x00",
              "/m/1", "/m2/1", "/m3/1", "/a/old", "/a/set", "/d/1", "/y/q/z", "/b/t?x=1",
              "/5/a"]  # fmt: skip


def engine_of(rules: list[dict[str, Any]], ring: KeyRing | None = None) -> Engine:
    return Engine(rules, guards=GUARDS, keys=ring or ring_of())


def request_of(url: str, headers: Any, client: str | None = None) -> Request:
    path, _, query = url.partition("?")
    return Request("GET", path, query, headers, None, client or "198.51.100.1")


def ask(engine: Engine, url: str, headers: list[tuple[str, str]]) -> bool:
    """Whether the gate answered ``url`` with ``headers`` (the guards having seen them once);
    asserts its answer is the Python road's, and that resolve() gives the Python road's."""
    n = next(_clients)
    client = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"  # failures counted apart
    with python_road(engine):
        engine.resolve(request_of(url, list(headers), client))  # the guards remember
    fast = engine._snapshot.fast
    if fast is None:  # a rule set the compiled road leaves alone (see fast_path())
        return False
    answer = fast.resolve(request_of(url, list(headers), client), None, "all")
    with python_road(engine):
        reference = engine.resolve(request_of(url, list(headers), client))
    assert fields(engine.resolve(request_of(url, list(headers), client))) == fields(reference)
    if answer is None:
        return False
    assert isinstance(answer, Decision)
    assert fields(answer) == fields(reference), (url, headers)
    assert answer == reference
    return True


#: The credentials the guards pass (most requests of a signed-in client carry one), and two at
#: once (a session and a key or token: each guard reads its own).
GOOD = [CREDENTIALS[k] for k in (1, 2, 5, 6, 7, 8, 9, 12, 13)] + [
    [*CREDENTIALS[1], *CREDENTIALS[5]],
    [*CREDENTIALS[7], *CREDENTIALS[1]],
    [*CREDENTIALS[12], *CREDENTIALS[2]],
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    guard_rules=st.lists(st.sampled_from(GUARD_RULES[:9]), min_size=1, max_size=3, unique_by=str),
    odd=st.lists(st.sampled_from(GUARD_RULES[9:]), max_size=1),
    rules=st.lists(st.one_of(rule_mappings(), st.sampled_from(MOVES)), max_size=6, unique_by=str),
    data=st.data(),
)
def test_the_gate_gives_the_guard_layers_decision(
    guard_rules: list[dict[str, Any]],
    odd: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    data: st.DataObject,
) -> None:
    try:
        engine = engine_of([*guard_rules, *odd, *rules])
    except RulesError:
        assume(False)
        return
    urls = st.one_of(urls_for([*guard_rules, *rules]), st.sampled_from(EXTRA_URLS))
    credentials = st.one_of(st.sampled_from(GOOD), st.sampled_from(CREDENTIALS))
    for url in data.draw(st.lists(urls, min_size=1, max_size=6)):
        ask(engine, url, data.draw(credentials))


def test_each_remembered_credential_takes_the_gate() -> None:
    engine = engine_of([*GUARD_RULES[:4], *MOVES])
    cases = [
        ("/a/1", CREDENTIALS[1]),
        ("/a/1", CREDENTIALS[2]),
        ("/k/c", CREDENTIALS[5]),
        ("/k/c", CREDENTIALS[6]),
        ("/x", CREDENTIALS[7]),
        ("/x", CREDENTIALS[8]),
        ("/x", CREDENTIALS[9]),
        ("/b/t?x=1", CREDENTIALS[12]),
        ("/b/t", CREDENTIALS[13]),
        ("/a/old", CREDENTIALS[1]),  # a redirect inside the area: Vary, no identity
        ("/m3/1", CREDENTIALS[0]),  # no guard rule matches: the rules alone, credential or not
        ("/m3/1", CREDENTIALS[4]),
        ("/nothing", CREDENTIALS[0]),
    ]
    for url, headers in cases:
        assert ask(engine, url, headers), (url, headers)
    passed = engine.resolve(request_of("/k/c", CREDENTIALS[5]))
    assert passed.headers == (
        ("X-Waypost-User", "partner1"),
        ("X-Waypost-Guard", "partners"),
        ("X-Waypost-Key-Id", "partner1"),
    )
    assert "Authorization" in passed.vary and "Cookie" in passed.vary


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/a/1", CREDENTIALS[0]),  # no credential: a denial, the Python layer's
        ("/a/1", CREDENTIALS[3]),  # the Cookie header sent twice
        ("/a/1", CREDENTIALS[4]),  # forged
        ("/a/1", CREDENTIALS[17]),  # a header name str.lower() turns into 'cookie'
        ("/k/c", CREDENTIALS[10]),  # a wrong secret
        ("/k/c", CREDENTIALS[11]),  # Authorization sent twice
        ("/b/t", CREDENTIALS[14]),  # a token of another audience (403)
        ("/b/t", CREDENTIALS[15]),  # not a bearer token
        ("/c/d", CREDENTIALS[1] + CREDENTIALS[5]),  # two guards: identities merged in Python
        ("/d/1", CREDENTIALS[16]),  # a Python check: nothing to remember
        ("/a/", CREDENTIALS[1]),  # a trailing slash, dot segments, ';', '\\': their forms
        ("/a/./1", CREDENTIALS[1]),
        ("/a//1", CREDENTIALS[1]),
        ("/a/1;x", CREDENTIALS[1]),
        ("/a\\1", CREDENTIALS[1]),
        ("/a/é", CREDENTIALS[1]),
        ("/m/1", CREDENTIALS[1]),  # a rewrite into a guarded area is checked again in Python
        ("/m2/1", CREDENTIALS[7]),
        ("/a/set", CREDENTIALS[1]),  # a rule's own headers, merged with the identity in Python
    ],
)
def test_what_the_gate_leaves_to_the_guard_layer(url: str, headers: list[tuple[str, str]]) -> None:
    engine = engine_of([*GUARD_RULES[:4], GUARD_RULES[6], GUARD_RULES[7], *MOVES])
    assert not ask(engine, url, headers)


def test_a_layer_the_gate_cannot_read_gets_none() -> None:
    for extra in (GUARD_RULES[9], GUARD_RULES[10]):  # another shape; conditions
        engine = engine_of([GUARD_RULES[0], extra])
        assert engine._snapshot.guards is not None
        assert engine._snapshot.guards.memories() is None
        assert not ask(engine, "/a/1", CREDENTIALS[1])


def test_the_bypass_corpus_never_slips_through_the_gate() -> None:
    """A client with a remembered key for /api must not reach /admin (a session's area) by a
    path trick: the gate leaves every unusual form to the Python layer, and what it answers is
    the Python layer's."""
    engine = engine_of(
        [
            {"from": "/admin", "require": "login"},
            {"from": "/admin/<path:rest>", "require": "login"},
            {"from": "/api/<path:rest>", "require": "partners"},
            {"from": "/api/<path:rest>", "rewrite": "/internal/{rest}"},
        ]
    )
    answered = 0
    for target in PATHS:
        path = target if target.startswith("/") else "/" + target
        answered += ask(engine, path, CREDENTIALS[5])
        answer = engine.resolve(request_of(path, CREDENTIALS[5]))
        if answer.action in ("pass", "rewrite") and answer.headers:
            assert not (answer.path or path).startswith("/admin"), (target, answer)
    answered += ask(engine, "/api/x", CREDENTIALS[5])
    assert answered >= 1


def test_a_memory_that_ran_out_is_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_of([GUARD_RULES[0], GUARD_RULES[2]])
    assert ask(engine, "/a/1", CREDENTIALS[1])
    assert ask(engine, "/b/1", CREDENTIALS[12])
    later = time.time() + 3 * 3600  # past the memory (a minute) and the token (an hour)
    monkeypatch.setattr(time, "time", lambda: later)
    fast = engine._snapshot.fast
    assert fast.resolve(request_of("/a/1", CREDENTIALS[1]), None, "all") is None
    assert fast.resolve(request_of("/b/1", CREDENTIALS[12]), None, "all") is None
    # The session cookie is still valid: checked again, remembered again, through the gate.
    assert engine.resolve(request_of("/a/1", CREDENTIALS[1])).action == "pass"
    assert fast.resolve(request_of("/a/1", CREDENTIALS[1]), None, "all") is not None
    # The token's memory never outlives the token (its exp is past by this clock).
    engine.resolve(request_of("/b/1", CREDENTIALS[12]))
    assert fast.resolve(request_of("/b/1", CREDENTIALS[12]), None, "all") is None


def test_a_revoked_key_is_refused_at_once_and_each_use_is_noted() -> None:
    ring = ring_of()
    engine = engine_of([GUARD_RULES[1]], ring)
    assert ask(engine, "/k/c", CREDENTIALS[5])
    ring.take_uses()
    fast = engine._snapshot.fast
    assert fast.resolve(request_of("/k/c", CREDENTIALS[5]), None, "all") is not None
    assert set(ring.take_uses()) == {"partner1"}  # noted by the gate
    ring.replace([])  # revoked (a refresh that no longer finds it)
    assert fast.resolve(request_of("/k/c", CREDENTIALS[5]), None, "all") is None
    assert engine.resolve(request_of("/k/c", CREDENTIALS[5])).status == 401


def test_a_key_with_more_to_check_is_checked_each_time() -> None:
    """A key bound to a host, or one that expires: each request is the Python layer's."""
    for changes in ({"host": "a.example"}, {"expires_at": time.time() + 3600}):
        engine = engine_of([GUARD_RULES[1]], ring_of(**changes))
        headers = [*CREDENTIALS[5], ("Host", "a.example")]
        assert not ask(engine, "/k/c", headers)
        assert engine.resolve(request_of("/k/c", headers)).action == "pass"


def test_a_ring_of_its_own_notes_each_use_itself() -> None:
    class Noting(KeyRing):
        def __init__(self, keys: Any) -> None:
            super().__init__(keys)
            self.noted: list[str] = []

        def note_use(self, key_id: str) -> None:
            self.noted.append(key_id)
            super().note_use(key_id)

    ring = Noting([PARTNER])
    engine = engine_of([GUARD_RULES[1]], ring)
    assert ask(engine, "/k/c", CREDENTIALS[5])
    ring.noted.clear()
    assert engine._snapshot.fast.resolve(request_of("/k/c", CREDENTIALS[5]), None, "all")
    assert ring.noted == ["partner1"]


def test_headers_as_the_middlewares_give_them() -> None:
    engine = engine_of([GUARD_RULES[0]])
    ask(engine, "/a/1", CREDENTIALS[1])
    fast = engine._snapshot.fast
    lazy = LazyHeaders(CREDENTIALS[1], list)
    assert fast.resolve(request_of("/a/1", lazy), None, "all") is not None
    as_tuple = tuple(CREDENTIALS[1])
    assert fast.resolve(request_of("/a/1", as_tuple), None, "all") is not None
    # A mapping is read by Request.headers: the Python layer's.
    assert fast.resolve(request_of("/a/1", dict(CREDENTIALS[1])), None, "all") is None
    assert engine.resolve(request_of("/a/1", dict(CREDENTIALS[1]))).action == "pass"
    # The convenience form (method, URL, headers): the Python road.
    assert fast.resolve("GET", "/a/1", "all") is None
    assert engine.resolve("GET", "/a/1", CREDENTIALS[1]).action == "pass"


def test_headers_of_other_shapes_are_left_to_the_guard_layer() -> None:
    engine = engine_of([GUARD_RULES[0]])
    ask(engine, "/a/1", CREDENTIALS[1])

    class Pairs(list):  # type: ignore[type-arg]
        pass

    fast = engine._snapshot.fast
    assert fast.resolve(request_of("/a/1", Pairs(CREDENTIALS[1])), None, "all") is None
    for pair in [("Cookie", 5), (b"Cookie", "x"), ("Cookie",), ["Cookie", "x"]]:
        assert fast.resolve(request_of("/a/1", [*CREDENTIALS[1], pair]), None, "all") is None
