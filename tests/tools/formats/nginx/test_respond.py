"""The nginx export of respond rules, served by a real nginx on loopback, answers every request
exactly as Waypost does: status, body, Content-Type and every other header (GET and HEAD), and
the same priority between exact respond rules, exact redirects and patterns."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.tools.nginx_serving import SERVER_MARKER, serving_nginx
from waypost.engine import Engine
from waypost.exceptions import RulesError
from waypost.responses import decision_response
from waypost.tools.formats import EXPORTERS, IMPORTERS

RULES: list[dict[str, Any]] = [
    {"from": "/gone", "respond": 410},
    {"from": "/missing", "respond": 404},
    {"from": "/ok", "respond": {"status": 200}},
    {
        "from": "/maintenance",
        "respond": {"status": 503, "body": "Back soon", "headers": {"Retry-After": "3600"}},
    },
    # The same response as /maintenance: the same internal URI.
    {
        "from": "/beta",
        "respond": {"status": 503, "body": "Back soon", "headers": {"Retry-After": "3600"}},
    },
    {
        "from": "/api/v1",
        "respond": {
            "status": 410,
            "body": '{"error": "gone"}\n',
            "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        },
    },
    # nginx would type '.html' as text/html and '$' would read as a variable.
    {"from": "/price.html", "respond": {"status": 200, "body": 'costs $5, "now"\n\\n done'}},
    {"from": "/Teapot", "respond": {"status": 418, "body": "short"}, "case": "insensitive"},
    {"from": "/a$b", "respond": {"status": 403, "body": "dollar path"}},
    {"from": "/café", "respond": {"status": 200, "body": "crème brûlée ✓"}},
    # Exact rules: the first that matches wins, whatever its kind.
    {"from": "/closed/", "respond": 410, "trailing_slash": "strict"},
    {"from": "/closed", "to": "/open"},
    {"from": "/CASE", "respond": 403, "trailing_slash": "strict"},
    {"from": "/case", "to": "/lower", "trailing_slash": "strict"},
    {"from": "/Case", "respond": {"status": 404, "body": "third spelling"}},
    {"from": "/promo", "to": "/sale"},
    {"from": "/PROMO", "respond": {"status": 410, "body": "over"}, "case": "insensitive"},
    {"from": "/x-twice", "respond": 404, "case": "insensitive"},
    {"from": "/X-TWICE", "respond": 410, "trailing_slash": "strict"},
    # Patterns come after exact paths, in Waypost and in nginx.
    {"from": "/files/<path:rest>", "respond": {"status": 404, "body": "no such file"}},
    {"from": "/files/kept", "to": "/kept"},
    {"from": "/shop/<name>", "to": "/store/{name}"},
    {"from": "/shop/closed", "respond": {"status": 410, "body": "closed"}},
    {
        "from": "/old/<int:id>",
        "respond": {"status": 451, "headers": {"Link": '</legal>; rel="blocked-by"'}},
    },
]

PATHS = [
    "/gone", "/gone/", "/GONE", "/gone?a=1", "/missing", "/ok", "/ok/", "/maintenance",
    "/maintenance/", "/beta", "/api/v1", "/api/v1/", "/price.html", "/Price.html", "/teapot",
    "/TEAPOT/", "/a$b", "/a%24b", "/A$B", "/caf%C3%A9", "/CAF%C3%A9", "/closed", "/closed/",
    "/CASE", "/case", "/Case", "/Case/", "/cASE", "/promo", "/promo/", "/PROMO", "/Promo/",
    "/x-twice", "/X-TWICE",
    "/files/a", "/files/a/b/", "/files/kept", "/files/kept/", "/shop/x", "/shop/closed",
    "/shop/CLOSED", "/old/12", "/old/12/", "/old/x", "/", "/nothing",
]  # fmt: skip

# What nginx adds of its own to every answer; Waypost's server writes its own.
_NGINX_HEADERS = {"server", "date", "connection", "keep-alive"}
# A site's usual http {} settings, which the respond locations must not take up.
_SITE = """\
    types { text/html html; }
    default_type application/octet-stream;
    charset utf-8;
"""


def test_nginx_exports_every_respond_rule() -> None:
    assert EXPORTERS["nginx"](RULES, None).unsupported == []


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """A private nginx serving the nginx export of RULES; yields its URL and the engine of the
    rules it exported (all of them: see the test above)."""
    exported = EXPORTERS["nginx"](RULES, None)
    refused = {item.index for item in exported.unsupported}
    http, marker, server = exported.text.partition(SERVER_MARKER)
    assert marker
    engine = Engine([rule for index, rule in enumerate(RULES) if index not in refused])
    with serving_nginx(tmp_path_factory.mktemp("nginx-respond"), _SITE + http, server) as base:
        yield base, engine


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in _NGINX_HEADERS}
    return response.status_code, headers, response.content


def _differences(base: str, engine: Engine, method: str, paths: list[str]) -> list[str]:
    found: list[str] = []
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        for path in paths:
            got = client.request(method, path)
            decision = engine.resolve(method, path)
            if decision.action == "respond":
                expected = decision_response(decision, head=method == "HEAD")
                want: tuple[Any, ...] = (expected.status, dict(expected.headers), expected.body)
                answer: tuple[Any, ...] = _answer(got)
            elif decision.action == "redirect":
                want = (decision.status, decision.location)
                answer = (got.status_code, got.headers.get("location"))
            else:
                want, answer = (
                    (200, b"app" if method == "GET" else b""),
                    (got.status_code, got.content),
                )
            if answer != want:
                found.append(f"{method} {path}: nginx {answer}, waypost {want}")
    return found


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_nginx_respond_answers_like_waypost(nginx: tuple[str, Engine], method: str) -> None:
    base, engine = nginx
    assert _differences(base, engine, method, PATHS) == []


def test_nginx_respond_covers_every_kind_of_answer(nginx: tuple[str, Engine]) -> None:
    # The differential above means something only if the paths reach every kind of answer.
    _, engine = nginx
    decisions = [engine.resolve("GET", path) for path in PATHS]
    assert {d.action for d in decisions} == {"respond", "redirect", "pass"}
    responds = [d for d in decisions if d.action == "respond"]
    assert any(d.body == "" and not d.headers for d in responds)  # status only
    assert any(d.body and not d.headers for d in responds)  # with a body
    assert any(len(d.headers) > 1 for d in responds)  # with headers and a Content-Type


def test_nginx_respond_locations_are_internal(nginx: tuple[str, Engine]) -> None:
    # The one path nginx answers differently: an internal URI asked for from outside is a 404
    # (Waypost would pass it to the app). The export reserves /.waypost/respond/.
    base, _ = nginx
    assert httpx.get(base + "/.waypost/respond/410/1").status_code == 404


def test_nginx_respond_export_imports_back_to_the_same_answers() -> None:
    imported = IMPORTERS["nginx"](EXPORTERS["nginx"](RULES, None).text)
    assert imported.skipped == []
    back, engine = Engine(imported.rules), Engine(RULES)
    for path in PATHS:
        want, got = engine.resolve("GET", path), back.resolve("GET", path)
        if want.action == "respond":
            assert decision_response(got) == decision_response(want), path
        else:
            assert (got.action, got.status, got.location) == (
                want.action,
                want.status,
                want.location,
            )


_ANSWERS: list[dict[str, Any]] = [
    {"to": "/one"},
    {"to": "/two", "status": 302},
    {"respond": 410},
    {"respond": 404},
    {"respond": {"status": 503, "body": "Back soon", "headers": {"Retry-After": "60"}}},
]


_WORDS = [f"{a}{b}" for a in "aAbB" for b in ("", "a", "A", "b", "B")]


def _clashing_exact_rules(rng: random.Random, tries: int) -> list[dict[str, Any]]:
    """Exact rules over a few paths in several spellings, every kind and option mixed, so that
    many rules share a path (Waypost refuses only true duplicates, which are left out)."""
    rules: list[dict[str, Any]] = []
    for _ in range(tries):
        rule = {"from": "/" + rng.choice(_WORDS) + rng.choice(["", "/"]), **rng.choice(_ANSWERS)}
        if rng.random() < 0.3:
            rule["case"] = "insensitive"
        if rng.random() < 0.5:
            rule["trailing_slash"] = "strict"
        try:
            Engine([*rules, rule])
        except RulesError:
            continue
        rules.append(rule)
    return rules


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_nginx_takes_the_first_exact_rule_like_waypost(tmp_path: Path, seed: int) -> None:
    # Waypost tries exact rules in file order whatever their kind, case and slash options; nginx
    # must reach the same first rule through its maps, guards and tiers.
    rules = _clashing_exact_rules(random.Random(seed), 150)
    assert len(rules) > 40
    exported = EXPORTERS["nginx"](rules, None)
    assert exported.unsupported == []
    assert "location =" not in exported.text and "_2_path = $uri" in exported.text  # tiers
    http, _, server = exported.text.partition(SERVER_MARKER)
    paths = [f"/{word}{slash}" for word in _WORDS for slash in ("", "/")]
    with serving_nginx(tmp_path, http, server) as base:
        assert _differences(base, Engine(rules), "GET", paths) == []
