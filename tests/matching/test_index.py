"""The compiled first-candidate index (matching/_index.py) gives exactly what the trie gives.

``Matcher.first_pattern()`` walks the index to the first pattern candidate, the shortcut
``Engine.resolve()`` takes; ``Matcher.pattern_candidates()`` collects them all from the trie
(matching/_trie.py) and sorts them. Each test here sets the index's answer beside the trie's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from waypost import Engine, RulesError
from waypost.rules.converters import BaseConverter, IntConverter, merge_converters
from waypost.rules.load import rules_from_mappings
from waypost.rules.model import RuleSet
from waypost.rules.request import Request

# -- the first pattern candidate --------------------------------------------------------------
# Matcher.first_pattern() walks a compiled index (matching._index) to the first candidate;
# Matcher.pattern_candidates() collects them all from the trie and sorts them. They must agree,
# and resolve() (which uses the first) must decide what explain() (which uses them all) decides.


def to(path: str, target: str = "/t", **extra: Any) -> dict[str, Any]:
    return {"from": path, "to": target, **extra}


def assert_first_is_the_first_of_all(engine: Engine, url: str) -> None:
    path = Request("GET", url.partition("?")[0]).path
    matcher = engine.matcher
    every = matcher.pattern_candidates(path)
    hit = matcher.first_pattern(path)
    if not every:
        assert hit is None, (url, hit)
    else:
        rule, values = every[0]
        assert hit is not None, (url, every[0])
        assert hit[0] is rule, (url, hit[0], rule)
        assert rule.pattern is not None
        assert dict(zip(rule.pattern.converters, hit[2], strict=True)) == values, url
        assert [type(v) for v in hit[2]] == [type(v) for v in values.values()], url
    assert engine.resolve("GET", url) == engine.explain("GET", url).decision, url
    raw_path, _, query = url.partition("?")
    for stage in ("all", "before", "missing"):
        # resolve(request) (the middleware's) takes the same shortcut, stage by stage.
        request = Request("GET", raw_path, query)
        expected = engine.explain("GET", url, stage=stage).decision
        assert engine.resolve(request, stage=stage) == expected, (url, stage)


TRICKY: list[tuple[str, list[dict[str, Any]], list[str]]] = [
    (
        "404-fallbacks-wait-for-their-stage",
        [
            to("/gone", "/fallback", only_if_missing=True),
            to("/live/<int:n>", "/fallback/{n}", only_if_missing=True),
            to("/<x>/<int:n>", "/any/{x}/{n}"),
            to("/plain", "/p"),
        ],
        ["/gone", "/live/5", "/other/5", "/plain", "/live/x", "/nothing"],
    ),
    (
        "static-first-segment-beats-variable",
        [to("/<x>/b", "/var/{x}"), to("/a/<y>", "/static/{y}"), to("/a/<int:n>", "/int/{n}")],
        ["/a/b", "/a/5", "/z/b", "/a", "/a/b/c", "/a/", "/z/b/"],
    ),
    (
        "a static first segment that fails gives the variable ones their turn",
        [to("/z/<int:n>", "/z/{n}"), to("/<x>/b", "/var/{x}"), to("/x/<int:n>/b", "/xb/{n}")],
        ["/z/b", "/z/5", "/z/5/", "/x/5/b", "/x/5b", "/x/5/b/"],
    ),
    (
        "case-insensitive-everywhere",
        [
            to("/Blog/<int:x>", "/ci/{x}", case="insensitive"),
            to("/blog/<x>", "/ci-text/{x}", case="insensitive"),
            to("/Straße/<x>", "/sz/{x}", case="insensitive"),
        ],
        ["/BLOG/5", "/blog/5", "/blog/x", "/BLOG/X", "/STRASSE/x", "/straße/x", "/STRAẞE/x"],
    ),
    (
        "single-rule-subtrees",
        [
            to("/archive/<int:year>/<slug>", "/blog/{year}/{slug}"),
            to("/shop/category-<int:cat>/item-<int:id>.html", "/store/{cat}/{id}"),
            to("/files/<path:rest>", "/static/{rest}"),
            to("/forum/t/<int:topic>", "https://forum.example.com/t/{topic}"),
        ],
        [
            "/archive/2020/a-b",
            "/archive/x/a-b",
            "/archive/2020",
            "/archive/2020/a/b",
            "/archive/02020/a",
            "/archive/" + "1" * 5000 + "/a",
            "/shop/category-5/item-7.html",
            "/shop/category-5/item-7.htm",
            "/files/a/b/c.png",
            "/files/a/b//",
            "/files/caf%C3%A9/x%20y",
            "/files/a/%3F/b",
            "/files/",
            "/files",
            "/files//x",
            "/forum/t/12",
            "/forum/t/12/",
            "/forum/t/",
            "/archive/2020/caf%C3%A9",
            "/archive/2020/a%2Fb",
            "/archive/2020/a%20b",
            "/archive/2020/%FF",
            "/archive/2020/a?x=1",
            "/archive/2020/a//",
            "//archive/2020/a",
        ],
    ),
    (
        "variable-first-segments",
        [
            to("/<lang>/guide/<slug>", "/guides/{slug}?lang={lang}"),
            to("/<int:year>/report.pdf", "/reports/{year}.pdf"),
            to("/<int:year>/<slug>", "/y/{year}/{slug}"),
            to("/<any(en,de):lang>/guide/<slug>", "/any/{lang}/{slug}"),
        ],
        [
            "/en/guide/x",
            "/fr/guide/x",
            "/2020/report.pdf",
            "/2020/x",
            "/x/report.pdf",
            "/de/guide/y",
        ],
    ),
    (
        "overlapping-shapes-and-weights",
        [
            to("/a/<x>", "/string/{x}"),
            to("/a/<int:x>", "/int/{x}"),
            to("/a/<float:x>", "/float/{x}"),
            to("/a/<uuid:x>", "/uuid/{x}"),
            to("/a/item-<int:x>", "/mixed/{x}"),
            to("/a/<path:x>", "/path/{x}"),
            to("/a/<x>/<int:y>", "/two/{x}/{y}"),
            to("/a/b/<path:p>", "/long/{p}"),
        ],
        [
            "/a/5",
            "/a/1.5",
            "/a/x",
            "/a/item-5",
            "/a/item-x",
            "/a/x/y",
            "/a/x/5",
            "/a/b/c",
            "/a/b",
            "/a/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        ],
    ),
    (
        "equal-rank-alternatives",  # the order is decided further right: the full search decides
        [
            to("/<a>-<b>/x", "/dash/{a}/{b}"),
            to("/<a>.<b>/<int:n>", "/dot/{a}/{b}/{n}"),
            to("/<a>.<b>/x", "/dotx/{a}/{b}"),
        ],
        ["/p-q/x", "/p.q/x", "/p.q/5", "/p-q.r/x", "/p.q-r/x"],
    ),
    (
        "equal-rank-alternatives-decided-further-right",
        [to("/<a>-<b>/<c>", "/dash/{a}/{b}/{c}"), to("/<a>.<b>/x", "/dot/{a}/{b}")],
        ["/p-q.r/x", "/p-q.r/y"],
    ),
    (
        "equal-rank-alternatives-after-a-static-leaf-fails",
        [
            to("/z/<int:n>", "/z/{n}"),
            to("/<a>/<b>-<c>/<d>", "/dash/{a}/{b}/{c}/{d}"),
            to("/<a>/<b>.<c>/x", "/dot/{a}/{b}/{c}"),
        ],
        ["/z/p-q.r/x", "/z/5", "/y/p-q.r/x"],
    ),
    (
        "conditions-let-the-next-one-try",
        [
            to("/c/<int:x>", "/post/{x}", when={"methods": ["POST"]}),
            to("/c/<x>", "/any/{x}"),
            to("/d/<x>", "/query/{x}", when={"query": {"v": "1"}}),
        ],
        ["/c/5", "/c/x", "/d/x", "/d/x?v=1"],
    ),
    (
        "same-shape-in-file-order",
        [
            to("/s/<x>", "/first/{x}", when={"methods": ["PUT"]}),
            to("/s/<y>", "/second/{y}"),
            to("/s/<z>", "/third/{z}", when={"methods": ["GET"]}),
            to("/t/<path:p>", "/tail-first/{p}", when={"methods": ["PUT"]}),
            to("/t/<path:q>", "/tail-second/{q}"),
        ],
        ["/s/1", "/t/a/b"],
    ),
    (
        "actions-and-queries",
        [
            {"from": "/r/<x>", "rewrite": "/internal/{x}?a=1", "set_headers": {"X-A": "1"}},
            {"from": "/q/<x>", "to": "/kept/{x}?own=1"},
            {"from": "/drop/<x>", "to": "/dropped/{x}", "query": "drop"},
            {"from": "/gone/<x>", "respond": {"status": 410, "body": "gone"}},
            {"from": "/pass/<x>", "pass": True},
            {"from": "/lit/<x>", "to": "/literal"},
            {"from": "/pct/<x>", "to": "/100%25/{x}"},
            {"from": "/open/<x>", "to": "/{x}"},
            {"from": "/host/<h>", "to": "https://{h}.example.com/"},
        ],
        [
            "/r/a?b=2",
            "/q/a?own=2&other=3",
            "/drop/a?x=1",
            "/gone/a",
            "/pass/a",
            "/lit/a?z=1",
            "/pct/a",
            "/open/a",
            "/open/%2Fevil.com",
            "/open/%5Cevil.com",
            "/host/a",
            "/host/a.b%40c",
        ],
    ),
    (
        "strict-slashes",
        [to("/s/<x>/", "/slash/{x}", trailing_slash="strict"), to("/s/<x>", "/none/{x}")],
        ["/s/a/", "/s/a", "/s/a//"],
    ),
    (
        "case-insensitive",
        [to("/Blog/<x>", "/ci/{x}", case="insensitive"), to("/blog/<int:x>", "/cs/{x}")],
        ["/BLOG/5", "/blog/5", "/blog/x", "/BLOG/x"],
    ),
    (
        "bounded-and-sized-converters",
        [
            to("/n/<int(min=5,max=10):x>", "/bounded/{x}"),
            to("/n/<string(length=2):x>", "/two/{x}"),
            to("/n/<x>", "/other/{x}"),
        ],
        ["/n/7", "/n/3", "/n/ab", "/n/abc", "/n/11"],
    ),
    (
        "exact-rules-and-slashes",  # resolve() skips the exact lookup for unknown first segments
        [
            to("/", "/home"),
            to("/a", "/exact-a"),
            to("/a/b/", "/exact-ab"),
            to("/<x>", "/one/{x}"),
            to("/<x>/<y>", "/two/{x}/{y}"),
        ],
        ["/", "//", "///", "/a", "/a/", "/a//", "/a/b", "/a/b/", "//x", "/b", "/b/c", "/%61"],
    ),
    (
        "exact-paths-of-one-segment-or-none",
        [to("/about", "/exact-about"), to("/<x>", "/one/{x}")],
        ["/about", "/about/", "//x", "/x", "/abou"],
    ),
    (
        "exact-rules-first",
        [
            to("/e/<x>", "/pattern/{x}"),
            to("/e/fixed", "/exact"),
            to("/e/cond", "/c", methods=["POST"]),
        ],
        ["/e/fixed", "/e/fixed/", "/e/cond", "/e/other"],
    ),
]


@pytest.mark.parametrize(
    ("rules", "urls"), [(r, u) for _, r, u in TRICKY], ids=[t[0] for t in TRICKY]
)
def test_the_fast_path_agrees_with_the_full_search(
    rules: list[dict[str, Any]], urls: list[str]
) -> None:
    engine = Engine(rules, allowed_hosts=["a.example.com"])
    for url in urls:
        assert_first_is_the_first_of_all(engine, url)


def test_the_fast_path_is_taken_for_plain_rule_sets() -> None:
    engine = Engine(next(rules for name, rules, _ in TRICKY if name == "single-rule-subtrees"))
    hit = engine.matcher.first_pattern("/archive/2020/a-b")
    assert hit is not None and hit[1] is not None  # the engine's plan came back with the hit
    assert engine.resolve("GET", "/archive/2020/a-b").location == "/blog/2020/a-b"


# Random rule sets over a few segments, so that patterns overlap a lot.
SEGMENTS = [
    "a",
    "b",
    "A",
    "<{}>",
    "<int:{}>",
    "<float:{}>",
    "<any(a,b5):{}>",
    "<string(maxlength=2):{}>",
    "<int(min=5):{}>",
    "n<int:{}>",
    "<{}>.html",
    "<{}>-x",
]
TAILS = ["", "", "/<path:{}>", "/x<path:{}>", "/"]
REQUEST_SEGMENTS = ["a", "b", "A", "5", "12", "1.5", "b5", "n5", "x.html", "y-x", "", "ab", "%41"]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3))
    tail = draw(st.sampled_from(TAILS))
    names = iter(f"v{i}" for i in range(10))
    return "".join("/" + part.format(next(names)) for part in parts) + tail.format(next(names))


@st.composite
def rule_mappings(draw: st.DrawFn) -> dict[str, Any]:
    pattern = draw(patterns())
    names = [f"v{i}" for i in range(pattern.count("<"))]
    shape = draw(st.sampled_from(["path", "absolute", "query", "literal", "open", "rewrite"]))
    used = "/".join("{" + name + "}" for name in names)
    rule: dict[str, Any] = {"from": pattern}
    if shape == "path":
        rule["to"] = f"/t/{used}"
    elif shape == "absolute":
        rule["to"] = f"https://example.com/{used}"
    elif shape == "query":
        rule["to"] = "/q?" + "&".join(f"{n}={{{n}}}" for n in names)
    elif shape == "literal":
        rule["to"] = "/literal"
    elif shape == "open":
        rule["to"] = "/" + used
    else:
        rule["rewrite"] = f"/r/{used}"
    if draw(st.integers(0, 4)) == 0:
        rule["methods"] = ["POST"]
    # Mostly one mode for all: rules of several modes are left to the full search.
    if draw(st.integers(0, 20)) == 0:
        rule["trailing_slash"] = "strict"
    if draw(st.integers(0, 20)) == 0:
        rule["case"] = "insensitive"
    if draw(st.integers(0, 5)) == 0:
        rule["query"] = "drop"
    return rule


_VARIABLE = re.compile(r"<[^>]*>")


_FITTING = {"int": ["5", "12"], "float": ["1.5"], "any": ["a", "b5"], "path": ["a/b", "a"]}


def _samples_for(variable: str) -> st.SearchStrategy[str]:
    """Text for ``variable`` ('<int:v0>'): mostly text its converter takes, sometimes any."""
    kind = variable[1:].partition(":")[0].partition("(")[0] if ":" in variable else "string"
    fitting = _FITTING.get(kind, ["ab", "x", "A"])
    return st.one_of(st.sampled_from(fitting), st.sampled_from([*REQUEST_SEGMENTS, "a/b"]))


@st.composite
def requests_for(draw: st.DrawFn, rules: list[dict[str, Any]]) -> str:
    """A URL near one of ``rules``: its pattern with sample text for each variable, or noise."""
    if draw(st.integers(0, 3)) == 0:
        parts = draw(st.lists(st.sampled_from(REQUEST_SEGMENTS), min_size=1, max_size=5))
        path = "/" + "/".join(parts)
    else:
        pattern = draw(st.sampled_from([rule["from"] for rule in rules]))
        path = _VARIABLE.sub(lambda found: draw(_samples_for(found.group())), pattern)
    slash = draw(st.sampled_from(["", "", "/"]))
    return path + slash + draw(st.sampled_from(["", "?k=1", "?v0=x&z=2"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_mappings(), min_size=1, max_size=8), strict=st.booleans(), data=st.data()
)
def test_the_fast_path_agrees_with_the_full_search_on_random_rules(
    rules: list[dict[str, Any]], strict: bool, data: st.DataObject
) -> None:
    try:
        engine = Engine(rules, defaults={"trailing_slash": "strict" if strict else "ignore"})
    except RulesError:  # duplicates, or a shape the loader refuses
        assume(False)
        return
    for url in data.draw(st.lists(requests_for(rules), min_size=1, max_size=8)):
        assert_first_is_the_first_of_all(engine, url)


class _LightConverter(BaseConverter):
    """Lower letters, weighing less than static text: its segments are tried first."""

    regex = "[a-z]+"
    weight = 0


def test_a_converter_lighter_than_static_text_is_tried_first() -> None:
    engine = Engine(
        [to("/xa/<int:n>", "/static/{n}"), to("/x<light:v>/<int:n>", "/light/{v}/{n}")],
        converters={"light": _LightConverter},
    )
    assert engine.resolve("GET", "/xa/5").location == "/light/a/5"
    for url in ["/xa/5", "/xb/5", "/xa/x"]:
        assert_first_is_the_first_of_all(engine, url)


class _TextInt(IntConverter):
    """An int converter that keeps the text ('05' stays '05')."""

    def to_python(self, value: str) -> Any:
        return value


def test_rule_sets_loaded_with_other_converters_share_an_edge() -> None:
    # Patterns of one shape share a trie edge, converted by the first one's converters; here the
    # first file's 'int' keeps text, so the second rule gets '05' where its own would give 5.
    first, errors = rules_from_mappings(
        [to("/m/<int:x>/a", "/c/{x}")], converters=merge_converters({"int": _TextInt})
    )
    second, more = rules_from_mappings([to("/m/<int:y>/b", "/d/{y}")])
    assert errors == more == []
    rules = first.rules + tuple(rule.replace(index=rule.index + 1) for rule in second.rules)
    engine = Engine(RuleSet(rules))
    assert engine.resolve("GET", "/m/05/b").location == "/d/5"
    for url in ["/m/05/a", "/m/05/b", "/m/5/b"]:
        assert_first_is_the_first_of_all(engine, url)


@pytest.mark.parametrize(
    ("heads", "count"),
    [(10, 10), (10, 20_000), (40, 20_000)],
    ids=["few-rules", "many-rules-few-first-segments", "many-rules-many-first-segments"],
)
def test_exact_rules_win_with_or_without_the_first_segment_shortcut(heads: int, count: int) -> None:
    rules = [to(f"/e{i % heads}/x{i // heads}", f"/exact/{i}") for i in range(count)] + [
        to("/solo", "/exact-solo"),
        to("/<a>/x0", "/pattern/{a}"),
        to("/e1/<int:n>", "/e1/{n}"),
        to("/<a>", "/one/{a}"),
    ]
    engine = Engine(rules)
    assert (engine.matcher.exact_prefixes is None) == (count < 20_000 or heads > 16)
    for url in ["/e1/x0", "/e1/5", "/e5/x0", "/z/x0", "/e1/x0/", "/z", "/", "/e11/x0", "/solo"]:
        assert_first_is_the_first_of_all(engine, url)
    assert engine.resolve("GET", "/e5/x0").location == "/exact/5"
    assert engine.resolve("GET", "/z/x0").location == "/pattern/z"
