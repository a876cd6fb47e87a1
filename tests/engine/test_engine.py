"""The engine: decisions for every action, query handling, url_for, atomic replace, explain."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from waypost import Decision, Engine, RulesError, UrlBuildError
from waypost.rules.request import Request, normal_path


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308], ids=lambda s: f"status-{s}")
def test_redirect_with_every_status(status: int) -> None:
    decision = Engine([{"from": "/a", "to": "/b", "status": status}]).resolve("GET", "/a")
    assert (decision.action, decision.status, decision.location) == ("redirect", status, "/b")


@pytest.mark.parametrize(
    ("rule", "url", "fields"),
    [
        (
            {"from": "/old/<path:rest>", "rewrite": "/new/{rest}"},
            "/old/a/b",
            {"action": "rewrite", "status": None, "path": "/new/a/b", "query": "", "headers": ()},
        ),
        (
            {
                "from": "/old/<path:rest>",
                "rewrite": "/new/{rest}?v=2",
                "set_headers": {"X-Old": "1"},
            },
            "/old/a?q=1",
            {
                "action": "rewrite",
                "path": "/new/a",
                "query": "v=2&q=1",
                "headers": (("X-Old", "1"),),
            },
        ),
        (
            {"from": "/r", "rewrite": "/s?v=2", "query": "drop"},
            "/r?q=1",
            {"action": "rewrite", "path": "/s", "query": "v=2"},
        ),
        (
            {"from": "/gone", "respond": 410},
            "/gone",
            {"action": "respond", "status": 410, "body": "", "headers": (), "location": None},
        ),
        (
            {
                "from": "/maintenance",
                "respond": {"status": 503, "body": "Back soon", "headers": {"Retry-After": 3600}},
            },
            "/maintenance",
            {
                "action": "respond",
                "status": 503,
                "body": "Back soon",
                "headers": (("Retry-After", "3600"),),
            },
        ),
        (
            {"from": "/api", "respond": {"status": "204"}},
            "/api",
            {"action": "respond", "status": 204},
        ),
        (
            {"from": "/health", "pass": True},
            "/health",
            {"action": "pass", "status": None, "location": None},
        ),
    ],
    ids=[
        "rewrite-path",
        "rewrite-query-and-set-headers",
        "rewrite-drops-query",
        "respond-int",
        "respond-mapping",
        "respond-status-as-text",
        "pass",
    ],
)
def test_actions(rule: dict[str, Any], url: str, fields: dict[str, Any]) -> None:
    decision = Engine([rule]).resolve("GET", url)
    assert {k: getattr(decision, k) for k in fields} == fields
    assert decision.rule is not None and decision.rule.path == rule["from"]


def test_pass_carves_an_exception_out_of_a_broader_rule() -> None:
    engine = Engine(
        [
            {"from": "/blog/<path:rest>", "to": "https://blog.example.com/{rest}"},
            {"from": "/blog/feed.xml", "pass": True},
            {"from": "/blog/drafts/<path:rest>", "pass": True},
        ]
    )
    assert engine.resolve("GET", "/blog/feed.xml").action == "pass"
    assert engine.resolve("GET", "/blog/drafts/x").action == "pass"
    assert engine.resolve("GET", "/blog/post").location == "https://blog.example.com/post"
    assert engine.resolve("GET", "/blog/feed.xml").rule is not None


def test_no_rule_is_a_plain_pass() -> None:
    decision = Engine([{"from": "/a", "to": "/b"}]).resolve("GET", "/elsewhere")
    assert decision == Decision("pass")
    assert decision.rule is None


@pytest.mark.parametrize(
    ("target", "query", "url", "location"),
    [
        ("/b", "keep", "/a?x=1&y=2", "/b?x=1&y=2"),
        ("/b?x=own", "keep", "/a?x=1&y=2", "/b?x=own&y=2"),
        ("/b?x=own", "keep", "/a?x=1", "/b?x=own"),
        ("/b#top", "keep", "/a?x=1", "/b?x=1#top"),
        ("/b", "keep", "/a?next=%2F%2Fevil.com", "/b?next=%2F%2Fevil.com"),
        ("/b", "keep", "/a?q=a b", "/b?q=a%20b"),
        ("/b", "keep", "/a?q=caf\u00e9", "/b?q=caf%C3%A9"),
        ("/b", "keep", "/a?", "/b"),
        ("/b", "drop", "/a?x=1", "/b"),
        ("/b?v=1", "drop", "/a?x=1", "/b?v=1"),
        ("https://example.com/b", "keep", "/a?x=1", "https://example.com/b?x=1"),
    ],
    ids=[
        "keep",
        "target-params-win",
        "target-params-win-only",
        "before-the-fragment",
        "escapes-kept",
        "spaces-encoded",
        "non-ascii-encoded",
        "empty-query",
        "drop",
        "drop-keeps-own",
        "absolute-target",
    ],
)
def test_query_keep_and_drop(target: str, query: str, url: str, location: str) -> None:
    engine = Engine([{"from": "/a", "to": target, "query": query}])
    assert engine.resolve("GET", url).location == location


def test_resolve_accepts_absolute_urls_and_header_pairs() -> None:
    engine = Engine([{"from": "/a", "to": "/b", "when": {"host": "example.com"}}])
    assert engine.resolve("GET", "https://example.com/a").location == "/b"
    assert engine.resolve("GET", "/a", [("Host", "example.com")]).location == "/b"
    assert engine.resolve("GET", "/a", {"Host": "other.com"}).action == "pass"


def test_resolve_takes_a_request_built_by_middleware() -> None:
    engine = Engine([{"from": "/caf\u00e9/<int:n>", "to": "/c/{n}"}])
    request = Request("GET", "/caf%C3%A9/05", "x=1")
    assert engine.resolve(request).location == "/c/5?x=1"


def test_decision_to_dict() -> None:
    engine = Engine([{"name": "home", "from": "/a", "to": "/b"}])
    data = engine.resolve("GET", "/a").to_dict()
    assert data["action"] == "redirect"
    assert data["location"] == "/b"
    assert data["rule"] == {"name": "home", "source": "<rules>#1"}


# -- url_for ---------------------------------------------------------------------------------

NAMED = [
    {"name": "article", "from": "/<int:year>/<int:month>/<title>", "to": "/articles/{title}"},
    {"name": "docs", "from": "/docs/<path:rest>", "to": "https://docs.example.com/{rest}"},
    {"name": "item", "from": "/item-<int:id>.html", "to": "/items/{id}"},
    {"name": "about", "from": "/about us", "to": "/about"},
    {"name": "lang", "from": "/<any(de,en):lang>/", "to": "/"},
]


@pytest.mark.parametrize(
    ("name", "values", "url"),
    [
        ("article", {"year": 2024, "month": 5, "title": "hello"}, "/2024/5/hello"),
        ("article", {"year": "2024", "month": "05", "title": "hi there"}, "/2024/5/hi%20there"),
        (
            "article",
            {"year": 2024, "month": 5, "title": "hello", "ref": "a b"},
            "/2024/5/hello?ref=a%20b",
        ),
        ("docs", {"rest": "a/b c.html"}, "/docs/a/b%20c.html"),
        ("item", {"id": 7}, "/item-7.html"),
        ("about", {}, "/about%20us"),
        ("lang", {"lang": "de"}, "/de"),
    ],
    ids=[
        "article",
        "values-as-text",
        "extra-values-become-query",
        "path",
        "mixed",
        "static",
        "any",
    ],
)
def test_url_for(name: str, values: dict[str, Any], url: str) -> None:
    assert Engine(NAMED).url_for(name, **values) == url


@pytest.mark.parametrize(
    ("name", "values", "words"),
    [
        ("artcile", {}, "no rule named 'artcile'; did you mean 'article'?"),
        ("zzz", {}, "named rules: about, article, docs, item, lang"),
        ("article", {"year": 2024}, "needs a value for 'month', 'title'"),
        ("article", {"year": "x", "month": 5, "title": "t"}, "bad value for 'year' (int)"),
        ("article", {"year": -1, "month": 5, "title": "t"}, "bad value for 'year'"),
        ("article", {"year": 2024, "month": 5, "title": "a/b"}, "bad value for 'title'"),
        ("article", {"year": 2024, "month": 5.5, "title": "t"}, "expected an int, got float"),
        ("docs", {"rest": "/etc/passwd"}, "not a valid <path> value"),
        ("lang", {"lang": "fr"}, "'fr' is not one of 'de', 'en'"),
    ],
    ids=[
        "unknown-name-did-you-mean",
        "unknown-name-lists-names",
        "missing-values",
        "ill-typed",
        "negative-int",
        "slash-in-segment",
        "float-for-int",
        "path-leading-slash",
        "any-not-listed",
    ],
)
def test_url_for_errors(name: str, values: dict[str, Any], words: str) -> None:
    with pytest.raises(UrlBuildError) as caught:
        Engine(NAMED).url_for(name, **values)
    assert words in str(caught.value)


def test_url_for_without_named_rules_says_how_to_name_one() -> None:
    with pytest.raises(UrlBuildError, match="add name: to a rule"):
        Engine([{"from": "/a", "to": "/b"}]).url_for("a")


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("article", {"year": 2024, "month": 5, "title": "caf\u00e9 & co"}),
        ("docs", {"rest": "a/b/c"}),
        ("item", {"id": 42}),
    ],
    ids=["article", "docs", "item"],
)
def test_url_for_routes_back_to_its_rule(name: str, values: dict[str, Any]) -> None:
    engine = Engine(NAMED)
    trace = engine.explain("GET", engine.url_for(name, **values))
    (step,) = trace.steps
    assert step.rule.name == name
    assert dict(step.values) == values


# -- replace, reload -------------------------------------------------------------------------


def test_replace_swaps_the_rules() -> None:
    engine = Engine([{"from": "/a", "to": "/b", "name": "a"}])
    engine.replace([{"from": "/a", "to": "/c"}], defaults={"status": 302})
    decision = engine.resolve("GET", "/a")
    assert (decision.status, decision.location) == (302, "/c")
    assert list(engine.names()) == []


def test_replace_with_bad_rules_raises_and_keeps_the_old_rules() -> None:
    engine = Engine([{"from": "/a", "to": "/b", "name": "a"}])
    before = engine.ruleset
    with pytest.raises(RulesError) as caught:
        engine.replace([{"from": "/a", "to": "/c"}, {"from": "/<itn:x>", "to": "/d"}])
    assert "unknown converter 'itn'" in str(caught.value)
    assert engine.ruleset is before
    assert engine.resolve("GET", "/a").location == "/b"
    assert engine.url_for("a") == "/a"
    with pytest.raises(RulesError, match="duplicate rule"):
        engine.replace([{"from": "/x", "to": "/1"}, {"from": "/x", "to": "/2"}])
    assert engine.resolve("GET", "/a").location == "/b"


def test_reload_keeps_the_old_rules_on_error(write_rules: Callable[[str, str], Path]) -> None:
    path = write_rules("rules.yaml", "rules: [{from: /a, to: /b}]\n")
    engine = Engine.from_file(path)
    path.write_text("rules: [{from: /a, to: /c, status: 305}]\n", encoding="utf-8")
    with pytest.raises(RulesError, match="got 305"):
        engine.reload(path)
    assert engine.resolve("GET", "/a").location == "/b"
    path.write_text("rules: [{from: /a, to: /c}]\n", encoding="utf-8")
    engine.reload(path)
    assert engine.resolve("GET", "/a").location == "/c"


def test_requests_during_replace_see_the_old_or_the_new_rules() -> None:
    old = [{"from": f"/p{i}", "to": "/old"} for i in range(50)]
    new = [{"from": f"/p{i}", "to": "/new"} for i in range(50)]
    engine = Engine(old)
    seen: set[str | None] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(engine.resolve("GET", "/p7").location)

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(20):
        engine.replace(new)
        engine.replace(old)
    stop.set()
    reader.join()
    assert seen <= {"/old", "/new"}


# -- explain ---------------------------------------------------------------------------------


def test_explain_traces_every_candidate_and_why() -> None:
    engine = Engine(
        [
            {"name": "posts", "from": "/<path:p>", "to": "/all"},
            {"from": "/docs/<int:n>", "to": "/n/{n}", "when": {"methods": ["POST"]}},
            {"from": "/docs/<x>", "to": "/x/{x}"},
        ]
    )
    trace = engine.explain("get", "/docs/5")
    assert (trace.method, trace.path, trace.rule_count) == ("GET", "/docs/5", 3)
    assert [(s.rule.path, s.outcome) for s in trace.steps] == [
        ("/docs/<int:n>", "skipped"),
        ("/docs/<x>", "applied"),
    ]
    assert trace.steps[0].reason == "condition failed: methods: method is GET"
    assert dict(trace.steps[0].values) == {"n": 5}
    assert trace.decision == engine.resolve("GET", "/docs/5")
    text = trace.render()
    assert text.splitlines()[0] == "GET /docs/5  (3 rules loaded)"
    assert "condition failed" in text and text.endswith("=> redirect 301 /x/5")
    data = trace.to_dict()
    assert data["steps"][1]["outcome"] == "applied"
    assert data["steps"][0]["values"] == {"n": "5"}


def test_explain_says_when_a_target_is_refused() -> None:
    engine = Engine([{"from": "/go/<path:u>", "to": "https://{u}/"}], allowed_hosts=["good.com"])
    trace = engine.explain("GET", "/go/evil.com")
    (step,) = trace.steps
    assert step.outcome == "refused"
    assert "not in allowed_hosts" in step.reason
    assert trace.decision.status == 400


def test_explain_with_no_candidate() -> None:
    trace = Engine([{"from": "/a", "to": "/b"}]).explain("GET", "/zzz")
    assert trace.steps == ()
    assert "no rule matches this path" in trace.render()


def test_engine_repr_and_size(rules_data: Path) -> None:
    engine = Engine.from_file(rules_data / "site.yaml")
    assert len(engine) == 6
    assert repr(engine) == f"<Engine 6 rules from {rules_data / 'site.yaml'}>"
    assert repr(Engine()) == "<Engine 0 rules from Python>"


def test_url_for_leaves_out_none_values_as_flask_does() -> None:
    engine = Engine([{"name": "post", "from": "/p/<int:id>", "to": "/x"}])
    assert engine.url_for("post", id=3, ref=None, page=2) == "/p/3?page=2"


@pytest.mark.parametrize(
    ("stage", "action", "outcome"),
    [
        ("all", "redirect", "applied"),
        ("before", "pass", "skipped"),
        ("missing", "redirect", "applied"),
    ],
    ids=["all", "before-the-app", "after-a-404"],
)
def test_explain_by_stage_for_only_if_missing_rules(stage: str, action: str, outcome: str) -> None:
    engine = Engine([{"from": "/old", "to": "/new", "only_if_missing": True}])
    trace = engine.explain("GET", "/old", stage=stage)  # type: ignore[arg-type]
    assert trace.decision.action == action
    assert trace.steps[0].outcome == outcome


@pytest.mark.parametrize("pattern", ["/a/<int:x>", "/a/n<int:x>"], ids=["bare-int", "mixed-int"])
def test_an_int_too_long_for_int_is_refused_not_raised(pattern: str) -> None:
    # int() takes at most sys.get_int_max_str_digits() digits (4300); longer text is no match.
    engine = Engine([{"from": pattern, "to": "/int/{x}"}, {"from": "/a/<y>", "to": "/text"}])
    prefix = "n" if "n<" in pattern else ""
    assert engine.resolve("GET", f"/a/{prefix}12").location == "/int/12"
    assert engine.resolve("GET", f"/a/{prefix}{'1' * 5000}").location == "/text"
    assert engine.explain("GET", f"/a/{prefix}{'1' * 5000}").decision.location == "/text"


def test_a_replaced_rule_set_is_freed_at_once() -> None:
    # No reference cycle through the compiled index: with a million rules, waiting for the
    # cyclic garbage collector would keep the old set in memory beside the new one.
    engine = Engine([{"from": "/a/<x>", "to": "/b/{x}"}, {"from": "/c", "to": "/d"}])
    assert engine.resolve("GET", "/a/1").location == "/b/1"
    gc.collect()
    gc.disable()
    try:
        engine.replace([{"from": "/e/<x>", "to": "/f/{x}"}])
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/a/b", None),
        ("/", None),
        ("/a/b/", None),
        ("/.well-known/x", None),
        ("/a/.b/..c", None),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../x", "/x"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("//admin/x", "/admin/x"),
        ("/a//b", "/a/b"),
        ("/a/b//", "/a/b/"),
        ("//", "/"),
    ],
)
def test_the_normal_form_of_a_path(path: str, normal: str | None) -> None:
    assert normal_path(path) == normal


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/public/../admin/x?q=1", "/admin/x?q=1"),
        ("/%2e%2e/admin", "/admin"),
        ("/public%2F..%2Fadmin", "/admin"),
        ("//evil.com", "/evil.com"),
        ("/caf%C3%A9/../x%20y", "/x%20y"),
    ],
)
def test_a_path_not_in_normal_form_is_sent_there_before_any_rule(url: str, location: str) -> None:
    engine = Engine([{"from": "/<path:p>", "to": "/caught/{p}"}])
    for decision in (engine.resolve("POST", url), engine.explain("POST", url).decision):
        assert (decision.action, decision.status, decision.location) == (
            "redirect",
            308,
            location,
        )
        assert decision.rule is None


@pytest.mark.parametrize(
    ("url", "location"),
    [("/a//b?\tx=1", "/a/b?%09x=1"), ("/a/../b?q=%0d%0a", "/b?q=%0d%0a"), ("//x?é", "/x?%C3%A9")],
)
def test_the_normal_form_keeps_the_query_encoded(url: str, location: str) -> None:
    decision = Engine([{"from": "/<path:p>", "to": "/c/{p}"}]).resolve("GET", url)
    assert (decision.status, decision.location) == (308, location)


@pytest.mark.parametrize("url", ["/x/0007", "/x/1234"])
def test_a_fixed_digits_value_is_written_zero_padded_in_a_target(url: str) -> None:
    engine = Engine([{"from": "/x/<int(fixed_digits=4):n>", "to": "/y/{n}?n={n}"}])
    digits = url.rsplit("/", 1)[1]
    assert engine.resolve("GET", url).location == f"/y/{digits}?n={digits}"
