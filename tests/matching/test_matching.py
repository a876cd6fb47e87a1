"""The matcher's priority: exact paths, then specificity, then file order; failed conditions
fall through to the next candidate."""

from __future__ import annotations

from typing import Any

import pytest

from waypost import Engine, RulesError
from waypost.matching import compile_matcher
from waypost.rules.load import rules_from_mappings


def winner(rules: list[dict[str, Any]], url: str, **request: Any) -> str | None:
    """The ``to`` of the rule that decides ``url`` (None when no rule applies)."""
    decision = Engine(rules).resolve("GET", url, **request)
    return decision.location if decision.action == "redirect" else None


def to(path: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"from": path, "to": target, **extra}


@pytest.mark.parametrize(
    ("rules", "url", "expected"),
    [
        ([to("/<slug>", "/string"), to("/about", "/exact")], "/about", "/exact"),
        ([to("/<path:p>", "/path"), to("/about", "/exact")], "/about", "/exact"),
        ([to("/a/<x>", "/string"), to("/a/<int:x>", "/int")], "/a/5", "/int"),
        ([to("/a/<path:x>", "/path"), to("/a/<x>", "/string")], "/a/5", "/string"),
        ([to("/a/<x>", "/string"), to("/a/b", "/static")], "/a/b", "/static"),
        ([to("/a/<x>", "/string"), to("/a/<float:x>", "/float")], "/a/1.5", "/float"),
        (
            [to("/a/<x>", "/string"), to("/a/<uuid:x>", "/uuid")],
            "/a/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            "/uuid",
        ),
        ([to("/<int:x>", "/int"), to("/<any(5,6):x>", "/any")], "/5", "/any"),
        ([to("/<x>", "/bare"), to("/<x>.html", "/mixed")], "/a.html", "/mixed"),
        ([to("/<int:x>", "/bare"), to("/item-<int:x>", "/mixed")], "/item-5", "/mixed"),
        ([to("/<x>/b", "/string-first"), to("/a/<y>", "/static-first")], "/a/b", "/static-first"),
        ([to("/a/<path:p>", "/short"), to("/a/b/<path:p>", "/long")], "/a/b/c", "/long"),
        ([to("/<path:p>", "/path"), to("/<a>/<b>", "/segments")], "/x/y", "/segments"),
        (
            [to("/a/<x>", "/first"), to("/a/<y>", "/second", when={"methods": ["GET"]})],
            "/a/1",
            "/first",
        ),
        (
            [to("/a/<x>", "/first", when={"methods": ["POST"]}), to("/a/<y>", "/second")],
            "/a/1",
            "/second",
        ),
        (
            [to("/a/<int:x>", "/typed", when={"methods": ["POST"]}), to("/a/<x>", "/string")],
            "/a/1",
            "/string",
        ),
        (
            [to("/a", "/conditional", when={"methods": ["POST"]}), to("/<x>", "/pattern")],
            "/a",
            "/pattern",
        ),
        ([to("/a", "/first", when={"query": {"v": "1"}}), to("/a", "/second")], "/a", "/second"),
        (
            [to("/a", "/first", when={"query": {"v": "1"}}), to("/a", "/second")],
            "/a?v=1",
            "/first?v=1",
        ),
        ([to("/a/<int:x>", "/int")], "/a/x", None),
    ],
    ids=[
        "exact-before-string",
        "exact-before-path",
        "int-before-string",
        "string-before-path",
        "static-segment-before-string",
        "float-before-string",
        "uuid-before-string",
        "any-before-int",
        "mixed-before-bare-string",
        "mixed-before-bare-int",
        "leftmost-segment-decides",
        "longer-static-prefix-before-path",
        "segments-before-path",
        "file-order-on-ties",
        "failed-condition-gives-next-its-turn",
        "typed-fails-then-string",
        "exact-fails-then-pattern",
        "exact-rules-in-file-order",
        "exact-conditional-first",
        "typed-refuses",
    ],
)
def test_priority(rules: list[dict[str, Any]], url: str, expected: str | None) -> None:
    assert winner(rules, url) == expected


def test_candidates_come_in_priority_order() -> None:
    ruleset, errors = rules_from_mappings(
        [
            to("/<path:p>", "/1"),
            to("/docs/<x>", "/2"),
            to("/docs/<int:x>", "/3"),
            to("/docs/5", "/4"),
            to("/docs/<int:y>", "/5", when={"methods": ["POST"]}),
        ]
    )
    assert errors == []
    matcher = compile_matcher(ruleset.rules)
    order = [(rule.index, values) for rule, values in matcher.candidates("/docs/5")]
    assert order == [(3, {}), (2, {"x": 5}), (4, {"y": 5}), (1, {"x": "5"}), (0, {"p": "docs/5"})]


@pytest.mark.parametrize(
    ("rules", "url", "expected"),
    [
        ([to("/a", "/b")], "/a/", "/b"),
        ([to("/a/", "/b")], "/a", "/b"),
        ([to("/a", "/b", trailing_slash="strict")], "/a/", None),
        ([to("/a/", "/b", trailing_slash="strict")], "/a", None),
        ([to("/a/", "/b", trailing_slash="strict")], "/a/", "/b"),
        ([to("/A", "/b", case="insensitive")], "/a", "/b"),
        ([to("/a", "/b", case="insensitive")], "/A/", "/b"),
        ([to("/A", "/b")], "/a", None),
        ([to("/", "/home")], "/", "/home"),
        ([to("/", "/home")], "//", "/home"),  # an exact path: no 308 to the normal form first
    ],
    ids=[
        "ignore-request-slash",
        "ignore-pattern-slash",
        "strict-refuses-extra-slash",
        "strict-refuses-missing-slash",
        "strict-exact",
        "insensitive",
        "insensitive-and-ignore",
        "sensitive",
        "root",
        "root-with-extra-slash",
    ],
)
def test_exact_paths_with_options(
    rules: list[dict[str, Any]], url: str, expected: str | None
) -> None:
    assert winner(rules, url) == expected


def test_rules_with_different_options_share_one_engine() -> None:
    rules = [
        to("/Strict/", "/1", trailing_slash="strict"),
        to("/loose", "/2"),
        to("/CASE/<x>", "/3/{x}", case="insensitive"),
        to("/case/<x>", "/4/{x}"),
    ]
    assert winner(rules, "/Strict/") == "/1"
    assert winner(rules, "/Strict") is None
    assert winner(rules, "/loose/") == "/2"
    assert winner(rules, "/case/X") == "/3/X"
    assert winner(rules, "/CaSe/X") == "/3/X"


@pytest.mark.parametrize(
    ("rules", "count"),
    [
        ([to("/a", "/b"), to("/a", "/c")], 1),
        ([to("/a", "/b"), to("/a/", "/c")], 1),
        ([to("/a/<int:x>", "/b"), to("/a/<int:y>", "/c")], 1),
        ([to("/a/<x>", "/b"), to("/a/<string:y>", "/c")], 1),
        ([to("/a", "/b", when={"host": "x.com"}), to("/a", "/c", when={"host": "x.com"})], 1),
        ([to("/a", "/b", when={"host": "x.com"}), to("/a", "/c")], 0),
        ([to("/a/<int:x>", "/b"), to("/a/<x>", "/c")], 0),
        ([to("/a", "/b"), to("/a/", "/c", trailing_slash="strict")], 0),
        ([to("/a", "/b"), to("/A", "/c")], 0),
        ([to("/a", "/b", case="insensitive"), to("/A", "/c", case="insensitive")], 1),
        ([to("/a", "/b"), to("/a", "/c"), to("/a", "/d")], 2),
    ],
    ids=[
        "same-exact-path",
        "same-path-trailing-slash-ignored",
        "same-pattern-other-names",
        "string-is-default",
        "same-conditions",
        "different-conditions",
        "different-converters",
        "different-slash-modes",
        "different-case-sensitive",
        "same-case-insensitive",
        "three-copies",
    ],
)
def test_duplicates_are_errors(rules: list[dict[str, Any]], count: int) -> None:
    if count == 0:
        Engine(rules)
        return
    with pytest.raises(RulesError) as caught:
        Engine(rules)
    assert len(caught.value.errors) == count
    assert all("duplicate rule" in e.message for e in caught.value.errors)


def test_a_duplicate_names_both_rules() -> None:
    with pytest.raises(RulesError) as caught:
        Engine([to("/x", "/1"), to("/a/<int:n>", "/b"), to("/a/<int:m>", "/c")])
    (error,) = caught.value.errors
    assert "'/a/<int:m>'" in error.message and "<rules>#2" in error.message
    assert "remove one or give them different conditions" in error.message


def test_the_matcher_is_sized_and_named() -> None:
    ruleset, _ = rules_from_mappings([to("/a", "/b", name="a"), to("/c/<x>", "/d", name="c")])
    matcher = compile_matcher(ruleset.rules)
    assert len(matcher) == 2
    assert set(matcher.by_name) == {"a", "c"}
    assert repr(matcher) == "<Matcher 2 rules>"


# -- first match: defaults {order: first_match} --------------------------------------------------

FIRST_MATCH = [
    {"from": "/splat/<path:rest>", "to": "/general"},
    {"from": "/splat/foo/<path:rest>", "to": "/specific"},
    {"from": "/x/<y>", "to": "/pattern"},
    {"from": "/x/b", "to": "/exact"},
    {"from": "/x/b", "to": "/again"},
    {"from": "/c", "to": "/for-posts", "when": {"methods": ["POST"]}},
    {"from": "/c", "to": "/everyone"},
]


@pytest.mark.parametrize(
    ("path", "method", "first_match", "specificity"),
    [
        ("/splat/foo/x", "GET", "/general", "/specific"),
        ("/splat/bar", "GET", "/general", "/general"),
        ("/x/b", "GET", "/pattern", "/exact"),
        ("/x/z", "GET", "/pattern", "/pattern"),
        ("/c", "POST", "/for-posts", "/for-posts"),
        ("/c", "GET", "/everyone", "/everyone"),
    ],
    ids=[
        "an-earlier-general-pattern-wins",
        "only-one-matches",
        "a-pattern-listed-first-beats-an-exact-path",
        "the-exact-path-does-not-match",
        "a-condition-that-holds",
        "a-condition-that-fails-gives-the-next-in-file-order",
    ],
)
def test_first_match_takes_the_first_matching_line(
    path: str, method: str, first_match: str, specificity: str
) -> None:
    ordered = Engine(FIRST_MATCH, defaults={"order": "first_match"})
    assert ordered.resolve(method, path).location == first_match
    assert ordered.explain(method, path).decision.location == first_match
    # The same rules without the duplicate load in specificity order, as before.
    by_weight = Engine([r for r in FIRST_MATCH if r["to"] != "/again"])
    assert by_weight.resolve(method, path).location == specificity


def test_first_match_lists_candidates_in_file_order_and_allows_rules_alike() -> None:
    engine = Engine(FIRST_MATCH, defaults={"order": "first_match"})
    assert [rule.index for rule, _ in engine.candidates("/x/b")] == [2, 3, 4]
    with pytest.raises(RulesError, match="duplicate rule"):
        Engine(FIRST_MATCH)  # in specificity order two rules alike are a load error


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "plain"])
def test_first_match_with_a_big_exact_table(pack: bool) -> None:
    rules = [{"from": "/<path:any>", "to": "/catch-all"}]
    rules += [{"from": f"/p/{i}", "to": f"/n/{i}"} for i in range(300)]
    rules += [{"from": "/p/7", "to": "/later"}]
    engine = Engine(rules, defaults={"order": "first_match"}, pack_rules=pack)
    assert engine.resolve("GET", "/p/7").location == "/catch-all"
    assert [rule.index for rule, _ in engine.candidates("/p/7")] == [0, 8, 301]


def test_order_is_a_file_setting_with_a_clear_error() -> None:
    with pytest.raises(RulesError, match="order"):
        Engine([{"from": "/a", "to": "/b"}], defaults={"order": "first"})
    with pytest.raises(RulesError, match="order"):
        Engine([{"from": "/a", "to": "/b", "order": "first_match"}])
