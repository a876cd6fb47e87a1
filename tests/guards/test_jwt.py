"""The jwt guard: real tokens signed with real RSA and EC keys, against a real JWKS served over
HTTP on 127.0.0.1, through the engine as a site would use it."""

from __future__ import annotations

import base64
import builtins
import gc
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from waypost.decision import Decision
from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.guards import Allowed, Denied, build_guards
from waypost.guards import jwt as jwt_guard
from waypost.guards.jwt import JwksKeys, JwtGuard
from waypost.rules.load import load_rules, parse_rules
from waypost.rules.request import Request

# Each test on both roads: the compiled road, whose gate (waypost/_gate.c) lets through what
# the guards remember, and the Python guard layer alone.
pytestmark = pytest.mark.usefixtures("road")

ISSUER = "https://auth.example.com/"
CLIENT = "198.51.100.9"
JSON = {"Accept": "application/json"}


@cache
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    """The public JWK of ``key``, as an identity provider publishes it."""
    if isinstance(key, rsa.RSAPrivateKey):
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        alg = "RS256"
    else:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        alg = "ES256"
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "alice",
        "iss": ISSUER,
        "aud": "site",
        "iat": now,
        "exp": now + 600,
        "role": "member",
        **extra,
    }


def token(payload: dict[str, Any] | None = None, key: Any = None, kid: str = "k1") -> str:
    key = rsa_key() if key is None else key
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    return jwt.encode(claims() if payload is None else payload, key, alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to write: ``alg: none``, or HS256 keyed with a public key."""
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing + "."
    return signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def bearer(value: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}", **headers}


class JwksServer:
    """A JWKS on 127.0.0.1: ``keys`` are served; ``down`` answers 503."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.down = False
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.down:
                    self.send_error(503)
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    jwks_server.keys = [jwk(rsa_key(), "k1"), jwk(ec_key(), "e1")]
    jwks_server.down = False
    jwks_server.fetches = 0
    return jwks_server


def docs_example() -> str:
    """The jwt example of docs/guards.md, which these tests load."""
    docs = (Path(__file__).parents[2] / "docs" / "guards.md").read_text()
    found = re.search(r"```yaml\n(guards:\n  members:\n    jwt:.*?)```", docs, re.S)
    assert found is not None, "docs/guards.md has no jwt example"
    return found.group(1)


@pytest.fixture
def engine(jwks: JwksServer, tmp_path: Path) -> Engine:
    text = docs_example().replace("https://auth.example.com/.well-known/jwks.json", jwks.url)
    rules = tmp_path / "rules.yaml"
    rules.write_text(text.replace("audience: site", "audience: site, max_failures: 3"))
    return Engine.from_file(rules)


def resolve(engine: Engine, headers: dict[str, str], path: str = "/members/x") -> Decision:
    decision = engine.resolve("GET", path, headers, CLIENT)
    assert decision is not None
    return decision


def user_of(decision: Decision) -> str | None:
    return dict(decision.headers).get("X-Waypost-User")


def reason_of(engine: Engine, headers: dict[str, str]) -> str:
    return engine.explain("GET", "/members/x", headers, CLIENT).steps[-1].reason


@pytest.mark.parametrize("key", [rsa_key, ec_key], ids=["RS256", "ES256"])
def test_a_valid_token_passes_with_the_subject(engine: Engine, key: Any) -> None:
    decision = resolve(engine, bearer(token(key=key(), kid="k1" if key is rsa_key else "e1")))
    assert (decision.action, decision.path) == ("rewrite", "/app/x")
    assert user_of(decision) == "alice"
    assert dict(decision.headers)["X-Waypost-Guard"] == "members"


def test_a_verified_token_is_remembered_never_past_its_exp(
    jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = JwtGuard("members", JwksKeys(jwks.url), ["RS256"], issuer=ISSUER, audience="site")
    now = time.time()
    good = token(claims(exp=int(now) + 20))
    request = Request("GET", "/members/x", headers=bearer(good))
    first = guard.check(request)
    assert isinstance(first, Allowed) and first.reason == "user 'alice'"
    cached = guard.check(request)
    assert isinstance(cached, Allowed) and cached.reason == "user 'alice' (cached)"
    # Past its exp, the remembered token is checked again (PyJWT, on its own clock, still
    # finds it valid; an expired token is refused in the test below).
    monkeypatch.setattr(time, "time", lambda: now + 25)
    again = guard.check(request)
    assert isinstance(again, Allowed) and again.reason == "user 'alice'"
    assert good not in guard._passed  # nor remembered past its exp
    # A failure is never remembered.
    forged = Request("GET", "/members/x", headers=bearer(token(key=rsa_key(1))))
    assert isinstance(guard.check(forged), Denied)
    assert len(guard._passed) == 0
    guard.keys.close()  # type: ignore[attr-defined]


def test_the_cache_of_verified_tokens_is_bounded(
    jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_guard, "_CACHE_SIZE", 3)
    guard = JwtGuard("members", JwksKeys(jwks.url), ["RS256"], audience="site")
    for user in range(10):
        sent = Request("GET", "/m", headers=bearer(token(claims(sub=f"u{user}"))))
        assert isinstance(guard.check(sent), Allowed)
        assert len(guard._passed) <= 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(exp=int(time.time()) - 120), "expired"),
        (claims(iss="https://evil.example.com/"), "wrong issuer"),
        (claims(aud="other-site"), "wrong audience"),
        ({k: v for k, v in claims().items() if k != "exp"}, "no 'exp' claim"),
        ({k: v for k, v in claims().items() if k != "aud"}, "no 'aud' claim"),
        (claims(nbf=int(time.time()) + 3600), "not valid yet"),
    ],
    ids=["expired", "issuer", "audience", "no-exp", "no-aud", "not-yet"],
)
def test_a_genuine_token_that_does_not_fit_is_a_401_not_counted(
    engine: Engine, payload: dict[str, Any], reason: str
) -> None:
    sent = bearer(token(payload), **JSON)
    for _ in range(5):  # more than max_failures: these are not failures of the client
        decision = resolve(engine, sent)
        assert decision.status == 401
        assert dict(decision.headers)["WWW-Authenticate"] == (
            'Bearer realm="members", error="invalid_token"'
        )
    explained = reason_of(engine, sent)
    assert explained == f"guard 'members' (jwt) failed: bearer token rejected: {reason}"


def test_a_json_client_gets_a_bearer_challenge_and_a_browser_the_login_page(
    engine: Engine,
) -> None:
    decision = resolve(engine, JSON)
    assert decision.status == 401
    headers = dict(decision.headers)
    # RFC 6750 3.1: no error code when the request had no token.
    assert headers["WWW-Authenticate"] == 'Bearer realm="members"'
    assert json.loads(decision.body or "")["error"] == "unauthorized"
    page = resolve(engine, {"Accept": "text/html"})
    assert (page.status, page.location) == (302, "/login?next=/members/x")
    expired = token(claims(exp=int(time.time()) - 120))
    assert resolve(engine, bearer(expired, Accept="text/html")).location == "/login?next=/members/x"


def test_a_token_in_the_query_string_is_never_read(engine: Engine) -> None:
    decision = engine.resolve("GET", f"/members/x?access_token={token()}", JSON, CLIENT)
    assert decision is not None and decision.status == 401


@pytest.mark.parametrize(
    "forged",
    [
        lambda: token(key=rsa_key(1)),  # another key under the same kid
        lambda: token()[:-6] + "AAAAAA",
        lambda: ".".join([token().split(".")[0], b64(json.dumps(claims(sub="root")).encode()), ""]),
        lambda: "not-a-jwt",
    ],
    ids=["other-key", "tampered-signature", "changed-payload", "malformed"],
)
def test_a_forged_token_is_a_401_counted_towards_429(engine: Engine, forged: Any) -> None:
    sent = bearer(forged(), **JSON)
    for _ in range(3):
        decision = resolve(engine, sent)
        assert decision.status == 401
        assert 'error="invalid_token"' in dict(decision.headers)["WWW-Authenticate"]
    assert resolve(engine, sent).status == 429


def test_a_remembered_token_passes_while_its_client_is_held_back(engine: Engine) -> None:
    good = bearer(token())
    assert user_of(resolve(engine, good)) == "alice"
    forged = bearer(token(key=rsa_key(1)), **JSON)
    for _ in range(3):
        resolve(engine, forged)
    assert resolve(engine, forged).status == 429
    assert user_of(resolve(engine, good)) == "alice"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(role="guest"), "user 'alice': claim 'role' is none of ['member', 'admin']"),
        ({k: v for k, v in claims().items() if k != "role"}, "claim 'role' is none of"),
        (claims(role=["guest", "viewer"]), "claim 'role' is none of"),
        (claims(role=True), "claim 'role' is none of"),
    ],
    ids=["other-value", "no-claim", "list-without", "not-text"],
)
def test_a_valid_token_without_the_claim_value_is_a_403(
    engine: Engine, payload: dict[str, Any], reason: str
) -> None:
    sent = bearer(token(payload), Accept="text/html")
    decision = resolve(engine, sent)
    assert decision.status == 403  # never 401: the browser would loop through the login page
    assert decision.location is None
    assert reason in reason_of(engine, sent)


def test_a_list_claim_passes_when_any_value_is_allowed(engine: Engine) -> None:
    assert user_of(resolve(engine, bearer(token(claims(role=["guest", "admin"]))))) == "alice"


def test_alg_none_is_refused(engine: Engine) -> None:
    unsigned = handmade({"alg": "none", "typ": "JWT", "kid": "k1"}, claims(), None)
    sent = bearer(unsigned, **JSON)
    assert resolve(engine, sent).status == 401
    assert "algorithm 'none' not allowed" in reason_of(engine, sent)


def test_hs256_signed_with_the_public_key_is_refused(engine: Engine) -> None:
    """Algorithm confusion: the public key, known to all, used as an HMAC secret."""
    public = (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for secret in (public, json.dumps(jwk(rsa_key(), "k1")).encode()):
        confused = handmade({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(), secret)
        trace = engine.explain("GET", "/members/x", bearer(confused, **JSON), CLIENT)
        assert trace.decision is not None and trace.decision.status == 401
        assert "algorithm 'HS256' not allowed" in trace.steps[-1].reason


def test_no_reason_holds_the_token(engine: Engine) -> None:
    for value in (
        token(),
        token(claims(role="guest")),
        token(claims(exp=int(time.time()) - 120)),
        token(key=rsa_key(1)),
        token(kid="unknown"),
        "not-a-jwt",
    ):
        trace = engine.explain("GET", "/members/x", bearer(value), CLIENT)
        assert trace.steps
        for step in trace.steps:
            assert value not in step.reason
            assert value.split(".")[-1] not in step.reason


def test_an_unknown_kid_is_refused_at_once_then_passes_after_the_refresh(
    engine: Engine, jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_guard, "UNKNOWN_KID_SECONDS", 0.05)
    rotated = rsa_key(2)
    fresh = bearer(token(key=rotated, kid="k2"), **JSON)
    jwks.keys = [*jwks.keys, jwk(rotated, "k2")]  # the provider rotated; the guard has not seen it
    started = time.perf_counter()
    decision = resolve(engine, fresh)
    assert time.perf_counter() - started < 0.05  # refused at once: no fetch on the request path
    assert decision.status == 401
    assert "no key for it (kid 'k2')" in reason_of(engine, fresh)
    deadline = time.monotonic() + 5
    while resolve(engine, fresh).status == 401:
        assert time.monotonic() < deadline, "the rotated key was never fetched"
        time.sleep(0.01)
    assert user_of(resolve(engine, fresh)) == "alice"


def test_unknown_kids_do_not_hammer_the_provider(
    jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_guard, "UNKNOWN_KID_SECONDS", 0.3)
    keys = JwksKeys(jwks.url)
    started = jwks.fetches
    deadline = time.monotonic() + 0.25
    while time.monotonic() < deadline:
        assert keys.find("nope") is None
        time.sleep(0.005)
    assert jwks.fetches == started  # not before UNKNOWN_KID_SECONDS after the last fetch
    deadline = time.monotonic() + 5
    while jwks.fetches == started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    keys.close()


def test_a_failed_refresh_keeps_the_keys_and_logs_a_warning(
    jwks: JwksServer, caplog: pytest.LogCaptureFixture
) -> None:
    keys = JwksKeys(jwks.url)
    jwks.down = True
    with caplog.at_level(logging.WARNING, logger="waypost.guards"):
        keys.fetch()
    assert keys.find("k1") is not None
    (record,) = caplog.records
    assert record.name == "waypost.guards"
    assert jwks.url in record.getMessage() and "keeping the 2 keys" in record.getMessage()
    keys.close()


def test_the_jwks_is_refreshed_every_jwks_refresh_seconds(jwks: JwksServer) -> None:
    keys = JwksKeys(jwks.url, refresh=0.05)
    jwks.keys = [jwk(rsa_key(2), "k2")]
    deadline = time.monotonic() + 5
    while keys.find("k2") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert keys.find("k1") is None  # the old key left with the provider's rotation
    keys.close()


def test_a_jwks_down_at_load_is_a_clear_load_error(jwks: JwksServer, tmp_path: Path) -> None:
    jwks.down = True
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"guards:\n  members:\n    jwt: {{jwks_url: '{jwks.url}'}}\n"
        "rules:\n  - {from: /m, require: members}\n"
    )
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules)
    message = str(caught.value)
    assert f"{rules}:2" in message
    assert f"cannot fetch the JWKS from {jwks.url!r}" in message
    assert "503" in message


def test_refresh_threads_are_daemons_and_end_with_their_guard(
    jwks: JwksServer, tmp_path: Path
) -> None:
    def jwks_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == f"waypost-jwks-{jwks.url}"]

    gc.collect()
    before = len(jwks_threads())
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"guards:\n  members:\n    jwt: {{jwks_url: '{jwks.url}'}}\n"
        "rules:\n  - {from: /m, require: members}\n"
    )
    engine = Engine.from_file(rules)
    for _ in range(30):  # reloads, each building a new guard
        engine.reload(rules)
    guards = [build_guards(load_rules(rules).guards)[0] for _ in range(20)]
    assert all(t.daemon for t in jwks_threads())
    del guards
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        if len(jwks_threads()) <= before + 1:  # the engine's current guard only
            break
        assert time.monotonic() < deadline, f"{len(jwks_threads()) - before} threads left"
        time.sleep(0.01)


def test_a_shared_secret_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s" * 32
    monkeypatch.setenv("JWT_SECRET", secret)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "guards:\n  api:\n    jwt: {secret_env: JWT_SECRET, user_claim: email, cookie: auth,"
        " audience: site}\n"
        "rules:\n  - {from: '/api/<path:rest>', require: api, rewrite: '/app/{rest}'}\n"
    )
    engine = Engine.from_file(rules)
    good = jwt.encode(claims(email="ann@example.com"), secret, "HS256")
    assert user_of(resolve(engine, bearer(good), "/api/x")) == "ann@example.com"
    # The cookie is read when there is no bearer token.
    assert user_of(resolve(engine, {"Cookie": f"auth={good}"}, "/api/x")) == "ann@example.com"
    other = jwt.encode(claims(email="ann@example.com"), "t" * 32, "HS256")
    assert resolve(engine, bearer(other, **JSON), "/api/x").status == 401


def test_a_public_key_file_guard(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "auth.pem").write_bytes(
        ec_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "guards:\n  members:\n    jwt: {public_key: keys/auth.pem, audience: site}\n"
        "rules:\n  - {from: '/m/<path:rest>', require: members, rewrite: '/app/{rest}'}\n"
    )
    engine = Engine.from_file(rules)
    assert user_of(resolve(engine, bearer(token(key=ec_key())), "/m/x")) == "alice"
    # Only the algorithms the key can check are accepted: ES256 for a P-256 key.
    assert engine.guard_layer is not None
    guard = engine.guard_layer.guards["members"]
    assert isinstance(guard, JwtGuard) and guard.algorithms == ["ES256"]
    assert resolve(engine, bearer(token(), **JSON), "/m/x").status == 401


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        ("jwt: {secret_env: WAYPOST_TEST_UNSET_SECRET}", "'WAYPOST_TEST_UNSET_SECRET'"),
        ("jwt: {secret_env: SHORT_SECRET}", "shorter than 32 bytes"),
        ("jwt: {public_key: missing.pem}", "cannot read the public key file"),
        ("jwt: {public_key: private.pem}", "it holds a private key"),
        ("jwt: {public_key: private.pem, algorithms: [ES256]}", "it holds a private key"),
        ("jwt: {public_key: rsa.pem, algorithms: [ES256]}", "cannot verify any of the algorithms"),
    ],
    ids=["unset-secret", "short-secret", "no-key-file", "private-key", "private-es", "key-alg"],
)
def test_what_a_jwt_guard_needs_is_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guard: str, message: str
) -> None:
    monkeypatch.setenv("SHORT_SECRET", "too-short-secret")
    (tmp_path / "private.pem").write_bytes(
        rsa_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "rsa.pem").write_bytes(
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"guards:\n  g:\n    {guard}\nrules:\n  - {{from: /a, require: g}}\n")
    with pytest.raises(RulesError) as caught:
        Engine.from_file(rules)
    assert f"{rules}:2" in str(caught.value)
    assert message in str(caught.value)
    assert "too-short-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{issuer: x}", "takes exactly one of 'jwks_url', 'public_key' and 'secret_env'"),
        ("{}", "got none"),
        ("{jwks_url: 'https://a.example/k', secret_env: K}", "got 'jwks_url' and 'secret_env'"),
        ("{jwks_url: 'http://auth.example.com/k'}", "'jwks_url' must be https"),
        ("{jwks_url: 'ftp://auth.example.com/k'}", "'jwks_url' is an https URL"),
        ("{jwks_url: 'https://u:p@auth.example.com/k'}", "holds a user or password"),
        ("{jwks_url: 'https://a.example/k', algorithms: [none]}", "names 'none'"),
        ("{jwks_url: 'https://a.example/k', algorithms: [RS256, None]}", "names 'none'"),
        ("{jwks_url: 'https://a.example/k', algorithms: [HS256]}", "algorithm confusion"),
        ("{secret_env: K, algorithms: [RS256]}", "signs only with HS256, HS384 or HS512"),
        ("{jwks_url: 'https://a.example/k', algorithms: [RS265]}", "did you mean 'RS256'?"),
        ("{jwks_url: 'https://a.example/k', algorithms: RS256x}", "unknown algorithm"),
        ("{jwks_url: 'https://a.example/k', claims: [role]}", "'claims' maps a claim name"),
        ("{jwks_url: 'https://a.example/k', claims: {role: admin}}", "needs a list of the"),
        ("{jwks_url: 'https://a.example/k', claims: {role: []}}", "needs a list of the"),
        ("{jwks_url: 'https://a.example/k', leeway: -1}", "'leeway' is a number of seconds"),
        ("{secret_env: K, jwks_refresh: 60}", "'jwks_refresh' goes with 'jwks_url'"),
        ("{jwks_url: 'https://a.example/k', audiense: x}", "did you mean 'audience'?"),
        ("{jwks_url: 'https://a.example/k', issuer: 'a\"b'}", "'issuer' is text without quotes"),
    ],
    ids=[
        "no-source",
        "empty",
        "two-sources",
        "http",
        "ftp",
        "userinfo",
        "none",
        "None",
        "hs-with-key",
        "rs-with-secret",
        "misspelt-alg",
        "unknown-alg",
        "claims-list",
        "claim-not-list",
        "claim-empty",
        "leeway",
        "refresh-without-url",
        "unknown-option",
        "quote",
    ],
)
def test_jwt_options_are_checked_at_load(options: str, message: str) -> None:
    _, errors = parse_rules(
        f"guards:\n  g:\n    jwt: {options}\nrules: []\n", format="yaml", file="rules.yaml"
    )
    found = [str(e) for e in errors]
    assert any(message in e and e.startswith("rules.yaml:3:") for e in found), found


def test_the_options_as_the_loader_completes_them() -> None:
    ruleset, errors = parse_rules(
        "guards:\n  m:\n    jwt: {jwks_url: 'http://localhost:9/k', leeway: 0}\nrules: []\n",
        format="yaml",
        file="/srv/rules.yaml",
    )
    assert errors == []
    (spec,) = ruleset.guards
    assert spec.options["algorithms"][:3] == ("RS256", "RS384", "RS512")
    assert "none" not in spec.options["algorithms"]
    assert not any(a.startswith("HS") for a in spec.options["algorithms"])
    assert (spec.options["leeway"], spec.options["realm"]) == (0, "m")
    assert (spec.options["user_claim"], spec.options["jwks_refresh"]) == ("sub", 300)
    ruleset, errors = parse_rules(
        "guards:\n  m:\n    jwt: {public_key: k.pem, secret_env: null}\nrules: []\n",
        format="yaml",
        file="/srv/rules.yaml",
    )
    assert errors == []
    assert ruleset.guards[0].options["public_key"] == "/srv/k.pem"


def test_a_missing_library_says_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_jwt(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "jwt":
            raise ImportError("No module named 'jwt'", name="jwt")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "waypost.guards.jwt", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_jwt)
    rules = tmp_path / "rules.yaml"
    rules.write_text("guards:\n  g: {jwt: {secret_env: K}}\nrules:\n  - {from: /a, require: g}\n")
    with pytest.raises(
        RulesError, match=r"needs the 'PyJWT\[crypto\]' library; pip install 'waypost\[guards\]'"
    ):
        Engine.from_file(rules)
