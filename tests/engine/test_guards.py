"""The guard layer of the engine: guards run before any rule decides, whatever its priority;
a rewrite is checked again for its new path; path tricks do not slip past; what a failing
client gets; the identity sent on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from waypost.engine import Engine
from waypost.engine._guards import GuardLayer, _safe_next, canonical_path
from waypost.rules.request import Request

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def check(request: Request) -> Mapping[str, Any] | bool | None:
    token = request.headers.get("x-token")
    if token == "ann":
        return {"user": "ann"}
    if token == "eve":
        return False  # known, but not allowed
    return None


def refused(engine: Engine, url: str, headers: Mapping[str, str] | None = None) -> bool:
    """Whether ``url`` is answered 401, at once or after the engine's 308 to the path's normal
    form (dot segments and repeated slashes are redirected before any rule)."""
    decision = engine.resolve("GET", url, headers or JSON)
    if (decision.action, decision.status) == ("redirect", 308):
        assert decision.location is not None
        decision = engine.resolve("GET", decision.location, headers or JSON)
    return (decision.action, decision.status) == ("respond", 401)


@pytest.fixture
def engine() -> Engine:
    return Engine(
        [
            {"from": "/admin/<path:rest>", "require": "staff", "login_url": "/login"},
            {"from": "/admin", "require": "staff", "login_url": "/login"},
            # An exact rule has a higher priority than the guard's pattern: still guarded.
            {"from": "/admin/secret", "to": "/treasure"},
            {
                "from": "/admin/inner",
                "rewrite": "/app/inner",
                "set_headers": {"X-Waypost-User": "x"},
            },
            {"from": "/public", "rewrite": "/admin/reports"},
            {"from": "/open", "rewrite": "/app/open"},
            {"from": "/login", "respond": 200},
        ],
        guards={"staff": check},
    )


@pytest.mark.parametrize(
    "url",
    [
        "/admin/secret",
        "/admin/secret/",
        "/admin",
        "/admin/",
        "/%61dmin/secret",
        "/admin%2Fsecret",
        "//admin/secret",
        "/./admin/secret",
        "/admin/./secret",
        "/public/../admin/secret",
        "/admin;jsessionid=1/secret",
        "/admin\\secret",
        "/x/..%2Fadmin/secret",
    ],
    ids=[
        "exact",
        "trailing-slash",
        "bare",
        "bare-slash",
        "encoded-letter",
        "encoded-slash",
        "double-slash",
        "dot-segment",
        "inner-dot",
        "dot-dot",
        "path-params",
        "backslash",
        "encoded-dot-dot",
    ],
)
def test_a_guarded_path_is_guarded_in_every_spelling(engine: Engine, url: str) -> None:
    assert refused(engine, url), url


@pytest.mark.parametrize(
    "url",
    ["/admin%00/secret", "/%c0%ae%c0%ae/admin/secret", "/open%00"],
    ids=["nul", "overlong", "open"],
)
def test_a_path_with_a_nul_or_bytes_not_utf8_is_refused(engine: Engine, url: str) -> None:
    decision = engine.resolve("GET", url, JSON)
    assert (decision.action, decision.status) == ("respond", 400)
    assert json.loads(decision.body or "")["error"] == "bad_request"


@pytest.mark.parametrize(
    "target",
    ["/admin/{rest}", "/%61dmin/{rest}", "/x/../admin/{rest}", "/x\\..\\admin/{rest}"],
    ids=["plain", "percent-encoded", "dot-segments", "backslashes"],
)
def test_a_rewrite_into_a_guarded_area_is_checked_again_in_every_spelling(target: str) -> None:
    engine = Engine(
        [
            {"from": "/admin/<path:rest>", "require": "staff"},
            {"from": "/open/<path:rest>", "rewrite": target},
        ],
        guards={"staff": check},
    )
    assert engine.resolve("GET", "/open/reports", JSON).status == 401
    passed = engine.resolve("GET", "/open/reports", {**JSON, "X-Token": "ann"})
    assert passed.action == "rewrite"
    assert ("X-Waypost-User", "ann") in passed.headers


def test_an_exact_redirect_inside_a_guarded_area_needs_the_credential(engine: Engine) -> None:
    assert engine.resolve("GET", "/admin/secret", JSON).status == 401
    decision = engine.resolve("GET", "/admin/secret", {"X-Token": "ann"})
    assert (decision.action, decision.location) == ("redirect", "/treasure")
    # What a guarded area answers depends on the credential: no shared cache may keep it.
    assert {"Authorization", "Cookie"} <= set(decision.vary)


def test_a_rewrite_into_a_guarded_area_is_checked_again(engine: Engine) -> None:
    assert engine.resolve("GET", "/public", JSON).status == 401
    decision = engine.resolve("GET", "/public", {"X-Token": "ann"})
    assert (decision.action, decision.path) == ("rewrite", "/admin/reports")
    assert dict(decision.headers)["X-Waypost-User"] == "ann"


def test_a_json_client_gets_a_401_json_body(engine: Engine) -> None:
    decision = engine.resolve("POST", "/admin/x", {"Content-Type": "application/json"})
    assert decision.status == 401
    assert json.loads(decision.body or "") == {
        "error": "unauthorized",
        "message": "this page needs you to log in",
    }
    assert dict(decision.headers)["Content-Type"] == "application/json"


def test_a_browser_is_sent_to_log_in_with_only_the_path_and_query(engine: Engine) -> None:
    decision = engine.resolve("GET", "https://example.com/admin/a%20b?x=1&y=2", BROWSER)
    assert (decision.action, decision.status) == ("redirect", 302)
    assert decision.location == "/login?next=/admin/a%2520b%3Fx%3D1%26y%3D2"
    post = engine.resolve("POST", "/admin/x", BROWSER)
    assert (post.status, post.location) == (303, "/login?next=/admin/x")  # 303 after a POST
    # The next never starts '//' (another site), whatever reaches the guard layer.
    assert _safe_next(Request("GET", "//evil.example/x", "a=1")) == "/evil.example/x?a=1"


def test_authenticated_but_not_allowed_is_403_never_a_login_loop(engine: Engine) -> None:
    for headers in (BROWSER, JSON):
        decision = engine.resolve("GET", "/admin/x", {**headers, "X-Token": "eve"})
        assert (decision.action, decision.status) == ("respond", 403)


def test_the_identity_goes_on_and_no_rule_can_forge_it(engine: Engine) -> None:
    decision = engine.resolve("GET", "/admin/inner", {"X-Token": "ann"})
    assert decision.action == "rewrite"
    assert [v for k, v in decision.headers if k == "X-Waypost-User"] == ["ann"]
    assert dict(decision.headers)["X-Waypost-Guard"] == "staff"
    passed = engine.resolve("GET", "/admin/other", {"X-Token": "ann"})
    assert passed.action == "pass"
    assert dict(passed.headers) == {"X-Waypost-User": "ann", "X-Waypost-Guard": "staff"}
    # Outside the guarded area nothing is set (the adapters strip a client's own copy).
    assert engine.resolve("GET", "/open").headers == ()


def test_a_browser_without_a_login_url_gets_the_401() -> None:
    engine = Engine([{"from": "/a", "require": "g"}], guards={"g": lambda r: None})
    decision = engine.resolve("GET", "/a", BROWSER)
    assert (decision.action, decision.status) == ("respond", 401)


def test_a_strict_slash_guard_still_guards_the_path_with_a_slash() -> None:
    engine = Engine(
        [{"from": "/admin", "require": "g", "trailing_slash": "strict"}],
        guards={"g": lambda r: None},
    )
    assert engine.resolve("GET", "/admin/").status == 401
    assert refused(engine, "/admin//")


def test_guard_conditions_decide_whether_the_guard_runs() -> None:
    engine = Engine(
        [{"from": "/a", "require": "g", "methods": ["POST"]}], guards={"g": lambda r: None}
    )
    assert engine.resolve("GET", "/a").action == "pass"
    assert engine.resolve("POST", "/a").status == 401


def test_all_required_guards_must_pass() -> None:
    engine = Engine(
        [{"from": "/a", "require": ["one", "two"]}],
        guards={"one": lambda r: {"user": "ann"}, "two": lambda r: None},
    )
    assert engine.resolve("GET", "/a").status == 401


def test_explain_shows_which_guards_ran_and_why(engine: Engine) -> None:
    trace = engine.explain("GET", "/admin/secret", {"X-Token": "ann"})
    assert [s.outcome for s in trace.steps] == ["guarded", "applied"]
    assert "guard 'staff' (python) passed: user 'ann'" in trace.render()
    failed = engine.explain("GET", "/admin/secret", {"X-Token": "nope"})
    assert "guard 'staff' (python) failed: the check found no identity" in failed.render()
    assert "nope" not in failed.render()


def test_a_rule_set_without_guards_has_no_guard_layer() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}])
    assert not engine.has_guards
    assert engine._snapshot.guards is None


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/a//b", "/a/b"),
        ("/a/./b/", "/a/b/"),
        ("/a/../../b", "/b"),
        ("/a;x=1/b", "/a/b"),
        ("\\a\\b", "/a/b"),
        ("/", "/"),
        ("//", "/"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_~", min_size=1, max_size=8)


@st.composite
def guarded_spellings(draw: st.DrawFn) -> str:
    """A path inside /admin/, spelt with the tricks servers normalize away."""
    segments = ["admin", *draw(st.lists(_SEGMENT, min_size=1, max_size=4))]
    out: list[str] = []
    for segment in segments:
        trick = draw(st.sampled_from(["", "double", "dot", "dotdot", "param", "encode"]))
        if trick == "double":
            out.append("")  # '//' before the segment
        elif trick == "dot":
            out.append(".")
        elif trick == "dotdot":
            out.extend([draw(_SEGMENT), ".."])
        if trick == "param":
            segment += ";" + draw(_SEGMENT)
        elif trick == "encode":
            at = draw(st.integers(0, len(segment) - 1))
            segment = segment[:at] + f"%{ord(segment[at]):02X}" + segment[at + 1 :]
        out.append(segment)
    path = "/" + "/".join(out)
    return path + "/" if draw(st.booleans()) else path


@settings(max_examples=300, deadline=None)
@given(url=guarded_spellings())
def test_no_spelling_of_a_guarded_path_slips_past(url: str) -> None:
    assert refused(_PROPERTY_ENGINE, url), url


_PROPERTY_ENGINE = Engine(
    [
        {"from": "/admin/<path:rest>", "require": "staff"},
        {"from": "/admin/<path:rest>", "to": "/elsewhere/{rest}"},
    ],
    guards={"staff": check},
)


# The quick search of the guard rules (static segments then '<path:...>' by startswith(), exact
# paths in their dict, other shapes by a matcher of their own) finds what the matcher finds.
# Paths made of the rules' own segments (which random text seldom spells), and random text.
_SEGMENTS = st.sampled_from(["a", "A", "b", "1", "x.b", ".", "..", "", "a;p", "é"])
_PATH_TEXT = st.one_of(
    st.lists(_SEGMENTS, max_size=4).map(lambda segments: "/" + "/".join(segments)),
    st.text(alphabet="/aAb1.;\\%\x00é", max_size=12),
)
_SOURCES = ["/a", "/a/b", "/A", "/", "/a/<path:rest>", "/a/b/<path:rest>", "/<path:rest>"]
_OTHER_SOURCES = ["/a/<int:n>", "/<name>/b", "/a/<path:rest>.b", "/A/<path:rest>"]


def _layer(rules: list[dict[str, Any]]) -> GuardLayer:
    layer = Engine(rules, guards={"g": lambda r: None}).guard_layer
    assert layer is not None
    return layer


@settings(max_examples=300, deadline=None)
@given(
    sources=st.lists(
        st.sampled_from(_SOURCES + _OTHER_SOURCES), min_size=1, max_size=5, unique=True
    ),
    strict=st.lists(st.booleans(), min_size=5, max_size=5),
    insensitive=st.lists(st.booleans(), min_size=5, max_size=5),
    paths=st.lists(_PATH_TEXT, min_size=1, max_size=10),
)
def test_the_quick_search_of_guard_rules_finds_what_the_matcher_finds(
    sources: list[str], strict: list[bool], insensitive: list[bool], paths: list[str]
) -> None:
    layer = _layer(
        [
            {
                "from": source,
                "require": "g",
                "trailing_slash": "strict" if slash else "ignore",
                "case": "insensitive" if fold else "sensitive",
            }
            for source, slash, fold in zip(sources, strict, insensitive, strict=False)
        ]
    )
    for text in paths:
        path = text if text.startswith(("/", "\\")) or not text else "/" + text
        for path_form in (path, text):
            quick = [rule for rule, _ in layer._candidates(path_form, None)]
            found = [rule for rule, _ in layer.matcher.candidates(path_form)]
            assert quick == found, path_form
            if not layer.matches(path_form):
                request = Request("GET", path_form, path=path_form)
                assert layer.required(request, None) == {}
                assert layer.check(request, None) == (None, [])


@pytest.mark.parametrize(
    "source",
    [
        "/a/<int:n>",
        "/a/<path:rest>.html",
        "/a/x-<path:rest>",
        "/<name>/<path:rest>",
        "/a/<string:s>",
    ],
    ids=["int", "text after the tail", "text before the tail", "a variable first", "string"],
)
def test_other_shapes_of_guard_rules_are_searched_by_a_matcher(source: str) -> None:
    for case in ("sensitive", "insensitive"):
        layer = _layer([{"from": source, "require": "g", "case": case}])
        assert layer._tails == ()
        assert layer._others is not None
        assert len(layer._others) == 1


def test_a_case_insensitive_tail_is_searched_by_a_matcher() -> None:
    rules = [
        {"from": "/a/<path:rest>", "require": "g", "case": "insensitive"},
        {"from": "/b/<path:rest>", "require": "g"},
    ]
    layer = _layer(rules)
    assert [rule.path for *_, rule in layer._tails] == ["/b/<path:rest>"]
    assert [rule.path for rule, _ in layer._candidates("/A/x", None)] == ["/a/<path:rest>"]
    assert layer.check(Request("GET", "/A/x"), None)[0] is not None


def _token_check(header: str) -> Any:
    def check(request: Request) -> Mapping[str, Any] | bool | None:
        token = request.headers.get(header)
        return None if token is None else False if token == "no" else {"user": token}

    return check


@settings(max_examples=500, deadline=None)
@example(rules=[("/a/<int:n>", ["a"], False)], path="/a/1", method="GET", tokens={})
@example(rules=[("/a/<path:rest>.b", ["b"], False)], path="/a/x.b", method="GET", tokens={})
@given(
    rules=st.lists(
        st.tuples(
            st.sampled_from(_SOURCES + _OTHER_SOURCES),
            st.sampled_from([["a"], ["b"], ["a", "b"], ["b", "a"]]),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    ),
    path=_PATH_TEXT.map(lambda text: "/" + text.lstrip("/")),
    method=st.sampled_from(["GET", "POST"]),
    tokens=st.fixed_dictionaries(
        {}, optional={"x-a": st.sampled_from(["ann", "no"]), "x-b": st.sampled_from(["bob", "no"])}
    ),
)
def test_the_quick_check_decides_as_the_traced_one(
    rules: list[tuple[str, list[str], bool]], path: str, method: str, tokens: dict[str, str]
) -> None:
    engine = Engine(
        [
            {"from": source, "require": names, **({"methods": ["POST"]} if post else {})}
            for source, names, post in rules
        ],
        guards={"a": _token_check("x-a"), "b": _token_check("x-b")},
    )
    layer = engine.guard_layer
    assert layer is not None
    request = Request(method, path, "", tokens, path=path)
    quick, quick_passed = layer.check(request, None)
    traced, traced_passed = layer.check(request, [])
    assert quick == traced
    assert quick_passed == traced_passed
