"""Waypost's patterns against Werkzeug's routing (installed for the tests) as the oracle.

Hypothesis generates patterns from the converters both share (with their options), paths that
fit them or nearly do, and values to build URLs from; each case is asked of a one-rule Werkzeug
``Map`` and of a one-rule Waypost engine, and the answers must agree: whether the path matches
and with which values, and which URL a build gives (or that it fails). The differences the
README documents (its table of Werkzeug's routing features) are kept out of the generated
cases and each is pinned by a test of its own below, so that a difference that is not
documented fails the suite.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waypost import Engine
from waypost.exceptions import RulesError, UrlBuildError

werkzeug_routing = pytest.importorskip("werkzeug.routing")
Map, Rule = werkzeug_routing.Map, werkzeug_routing.Rule
NotFound = pytest.importorskip("werkzeug.exceptions").NotFound
BuildError = werkzeug_routing.BuildError

# Text both read the same way in a URL path (no '%', no dot segments, ASCII).
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
NAMES = st.sampled_from(["a", "b", "c", "slug", "year", "item_id"])


@st.composite
def converters(draw: st.DrawFn) -> tuple[str, Any]:
    """A converter spec and a strategy for the values it takes (within its options)."""
    kind = draw(st.sampled_from(["string", "int", "float", "any", "uuid"]))
    if kind == "string":
        length = draw(st.none() | st.integers(1, 6))
        spec = "string" if length is None else f"string(length={length})"
        low, high = (length, length) if length else (1, 8)
        return spec, st.text(alphabet="abcxyz019_", min_size=low, max_size=high)
    if kind == "int":
        signed = draw(st.booleans())
        fixed = draw(st.sampled_from([0, 0, 2, 4]))
        lo = draw(st.none() | st.integers(0, 50))  # Werkzeug cannot read min=-1
        options = [f"signed={signed}"] if signed else []
        if fixed:
            options.append(f"fixed_digits={fixed}")
        if lo is not None and (signed or lo >= 0):
            options.append(f"min={lo}")
        spec = f"int({', '.join(options)})" if options else "int"
        low = lo if lo is not None and (signed or lo >= 0) else (-999 if signed else 0)
        high = 10 ** (fixed - 1) - 1 if fixed and not signed else 99999
        if fixed and signed:
            low, high = max(low, 0), 10 ** (fixed - 1) - 1
        return spec, st.integers(low, max(low, high))
    if kind == "float":
        signed = draw(st.booleans())
        spec = "float(signed=True)" if signed else "float"
        lo = -1000.0 if signed else 0.0
        return spec, st.floats(lo, 1000.0, allow_nan=False).map(lambda f: round(f, 3))
    if kind == "any":
        # Words, not numbers: Werkzeug turns any(0) into int 0 and fails on it.
        words = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), min_size=1,
                              max_size=4, unique=True))  # fmt: skip
        return f"any({', '.join(words)})", st.sampled_from(words)
    return "uuid", st.uuids()


@st.composite
def patterns(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A pattern of 1 to 4 segments (static, one variable, or text around one variable), an
    optional ``path`` variable last, and a value strategy per variable."""
    segments: list[str] = []
    values: dict[str, Any] = {}
    names = iter(["a", "b", "c", "d", "e"])
    for _ in range(draw(st.integers(1, 4))):
        shape = draw(st.sampled_from(["static", "variable", "around"]))
        if shape == "static":
            segments.append(draw(WORD))
            continue
        spec, strategy = draw(converters())
        name = next(names)
        values[name] = strategy
        variable = f"<{spec}:{name}>" if spec != "string" or draw(st.booleans()) else f"<{name}>"
        if shape == "around":
            variable = f"{draw(WORD)}-{variable}.{draw(st.sampled_from(['html', 'php']))}"
        segments.append(variable)
    if draw(st.booleans()):
        segments.append("<path:rest>")
        values["rest"] = st.lists(WORD, min_size=1, max_size=3).map("/".join)
    return "/" + "/".join(segments), values


def engines(pattern: str) -> tuple[Any, Engine]:
    adapter = Map([Rule(pattern, endpoint="r")]).bind("example.com")
    return adapter, Engine([{"name": "r", "from": pattern, "to": "/x"}])


def werkzeug_match(adapter: Any, path: str) -> dict[str, Any] | None:
    try:
        endpoint, values = adapter.match(path)
    except NotFound:
        return None
    except werkzeug_routing.RequestRedirect:  # a slash or merge redirect: not a match
        return None
    assert endpoint == "r"
    return dict(values)


def waypost_match(engine: Engine, path: str) -> dict[str, Any] | None:
    found = list(engine.candidates(path))
    return dict(found[0][1]) if found else None


def werkzeug_build(adapter: Any, values: dict[str, Any]) -> str | None:
    try:
        return str(adapter.build("r", values))
    except BuildError:
        return None


def waypost_build(engine: Engine, values: dict[str, Any]) -> str | None:
    try:
        return engine.url_for("r", **values)
    except UrlBuildError:
        return None


def same_url(built: str | None, oracle: str | None) -> bool:
    """The same path and the same query parameters (the two encode some characters apart)."""
    if built is None or oracle is None:
        return built == oracle
    ours, theirs = urlsplit(built), urlsplit(oracle)
    return ours.path == theirs.path and parse_qsl(ours.query) == parse_qsl(theirs.query)


CASES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CASES
@given(st.data())
def test_a_built_url_and_a_near_miss_match_alike(data: st.DataObject) -> None:
    pattern, strategies = data.draw(patterns())
    adapter, engine = engines(pattern)
    values = {name: data.draw(strategy) for name, strategy in strategies.items()}
    built = werkzeug_build(adapter, values)
    assert built is not None, (pattern, values)
    assert same_url(waypost_build(engine, values), built), (pattern, values)
    path = urlsplit(built).path
    assert waypost_match(engine, path) == werkzeug_match(adapter, path), (pattern, path)
    # a near miss: one character changed, dropped or added
    index = data.draw(st.integers(1, max(1, len(path) - 1)))
    edit = data.draw(st.sampled_from(["x", "7", "-", "", "a9"]))
    near = path[:index] + edit + path[index + 1 :]
    if "//" in near or near.endswith("/") or "/." in near:
        return  # normalized by Waypost first (see the documented differences)
    assert waypost_match(engine, near) == werkzeug_match(adapter, near), (pattern, near)


@CASES
@given(st.data())
def test_builds_agree_with_extra_values_lists_and_none(data: st.DataObject) -> None:
    pattern, strategies = data.draw(patterns())
    adapter, engine = engines(pattern)
    values = {name: data.draw(strategy) for name, strategy in strategies.items()}
    extra = data.draw(
        st.dictionaries(
            st.sampled_from(["q", "page", "tag"]),
            st.none() | WORD | st.lists(WORD | st.integers(0, 99), max_size=3),
            max_size=3,
        )
    )
    values.update(extra)
    if values and data.draw(st.booleans()):
        values[data.draw(st.sampled_from(sorted(strategies) or ["q"]))] = None
    assert same_url(waypost_build(engine, values), werkzeug_build(adapter, values)), (
        pattern,
        values,
    )


# -- the documented differences, one test each (the README's table) ----------------------


def test_difference_text_around_a_string_variable_stops_at_the_first_separator() -> None:
    adapter, engine = engines("/<a>-<b>")
    assert werkzeug_match(adapter, "/x-y-z") == {"a": "x-y", "b": "z"}
    assert waypost_match(engine, "/x-y-z") == {"a": "x", "b": "y-z"}  # linear, no backtracking


def test_difference_two_path_variables_are_refused() -> None:
    Map([Rule("/<path:a>/x/<path:b>", endpoint="r")])  # Werkzeug takes it
    with pytest.raises(RulesError, match="two variables that span slashes"):
        Engine([{"from": "/<path:a>/x/<path:b>", "to": "/y"}])


def test_difference_a_build_must_route_back() -> None:
    adapter, engine = engines("/<int(min=10):n>")
    assert werkzeug_build(adapter, {"n": 3}) == "/3"  # a URL the rule itself would not match
    assert waypost_build(engine, {"n": 3}) is None
    adapter, engine = engines("/<int:n>")
    assert werkzeug_build(adapter, {"n": -3}) == "/-3"
    assert waypost_build(engine, {"n": -3}) is None


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("/<any(ab, cd):w>", "/ab"), ("/<uuid:w>", "/6f1c2a44-1b5e-4d3a-9c7e-0d2f4a6b8c10")],
    ids=["any", "uuid"],
)
def test_difference_any_and_uuid_rank_above_a_string(pattern: str, path: str) -> None:
    rules = [("/<s>", "string"), (pattern, "typed")]
    werkzeug = Map([Rule(p, endpoint=e) for p, e in rules]).bind("example.com")
    engine = Engine([{"name": e, "from": p, "to": f"/{e}"} for p, e in rules])
    assert werkzeug.match(path)[0] == "string"  # Werkzeug: same weight, the first rule wins
    assert engine.resolve("GET", path).location == "/typed"  # Waypost: the narrower converter


def test_difference_a_trailing_slash_is_ignored_by_default() -> None:
    adapter, engine = engines("/page")
    with pytest.raises(werkzeug_routing.RequestRedirect):
        Map([Rule("/page/", endpoint="r")]).bind("example.com").match("/page")
    assert werkzeug_match(adapter, "/page/") is None
    assert waypost_match(engine, "/page/") == {}  # trailing_slash: ignore (the default)


# -- the bugs this test found, pinned -----------------------------------------------------


def test_converter_arguments_may_hold_slash_question_mark_and_hash() -> None:
    from waypost.rules.converters import BaseConverter

    class RegexConverter(BaseConverter):  # the one in Flask's documentation
        def __init__(self, regex: str) -> None:
            self.regex = regex

    pattern = "/files/<regex('[^/:]+\\.[^/:#?]+'):name>"
    engine = Engine([{"from": pattern, "to": "/f/{name}"}], converters={"regex": RegexConverter})
    assert engine.resolve("GET", "/files/a.txt").location == "/f/a.txt"


def test_a_regex_set_in_init_is_checked_for_groups() -> None:
    from waypost.exceptions import ConverterError
    from waypost.rules.converters import BaseConverter

    class Grouped(BaseConverter):
        def __init__(self) -> None:
            self.regex = "(a|b)+"

    with pytest.raises((RulesError, ConverterError), match="capturing groups"):
        Engine([{"from": "/<g:x>", "to": "/y"}], converters={"g": Grouped})


def test_a_converter_whose_regex_spans_slashes_matches_across_them() -> None:
    from waypost.rules.converters import BaseConverter

    class Pair(BaseConverter):
        regex = r"\d+/\d+"

    werkzeug = Map([Rule("/p/<pair:x>", endpoint="r")], converters={"pair": werkzeug_pair()})
    engine = Engine([{"from": "/p/<pair:x>", "to": "/q/{x}"}], converters={"pair": Pair})
    assert werkzeug.bind("example.com").match("/p/1/2") == ("r", {"x": "1/2"})
    assert engine.resolve("GET", "/p/1/2").location == "/q/1/2"


def werkzeug_pair() -> Any:
    """A Werkzeug converter like Pair, made where Werkzeug is present."""

    class Pair(werkzeug_routing.BaseConverter):
        regex = r"\d+/\d+"

    return Pair


def test_none_is_no_value_and_a_list_is_repeated() -> None:
    adapter, engine = engines("/flob/<x>")
    assert waypost_build(engine, {"x": None}) is None
    assert werkzeug_build(adapter, {"x": None}) is None
    assert engine.url_for("r", x="a", v=[1, 2]) == "/flob/a?v=1&v=2"


# -- trailing_slash: redirect, Werkzeug's strict slashes ----------------------------------


def test_trailing_slash_redirect_answers_as_werkzeugs_strict_slashes() -> None:
    werkzeug = Map([Rule("/docs/", endpoint="docs")]).bind("example.com")
    with pytest.raises(werkzeug_routing.RequestRedirect) as moved:
        werkzeug.match("/docs", query_args="v=2")
    assert moved.value.code == 308 and moved.value.new_url.endswith("/docs/?v=2")
    engine = Engine(
        [
            {"from": "/docs/", "to": "/manual/", "trailing_slash": "redirect"},
            {"from": "/blog/<slug>/", "rewrite": "/posts/{slug}", "trailing_slash": "redirect"},
            {"from": "/plain", "to": "/elsewhere", "trailing_slash": "redirect"},
            {"from": "/loose", "to": "/l"},
        ]
    )

    def answer(url: str) -> tuple[int | None, str | None]:
        decision = engine.resolve("GET", url)
        return decision.status, decision.location

    assert answer("/docs?v=2") == (308, "/docs/?v=2")  # to the rule's own form, query kept
    assert answer("/docs/") == (301, "/manual/")
    assert answer("/blog/hello") == (308, "/blog/hello/")
    assert engine.resolve("GET", "/blog/hello/").path == "/posts/hello"
    assert answer("/plain/") == (308, "/plain")  # the reverse too
    assert answer("/loose/") == (301, "/l")  # trailing_slash: ignore, as before
    assert engine.resolve("GET", "/nothing/").action == "pass"


def test_trailing_slash_redirect_as_a_default() -> None:
    engine = Engine(
        [{"from": "/a/", "to": "/b/"}, {"from": "/c", "to": "/d"}],
        defaults={"trailing_slash": "redirect"},
    )
    assert engine.resolve("GET", "/a").location == "/a/"
    assert engine.resolve("GET", "/c/").location == "/c"
    assert engine.resolve("GET", "/c").location == "/d"


# -- merge_slashes ------------------------------------------------------------------------


def test_merge_slashes_as_werkzeugs() -> None:
    merged = Map([Rule("/a/b", endpoint="r")]).bind("example.com")
    with pytest.raises(werkzeug_routing.RequestRedirect) as moved:
        merged.match("/a//b")
    assert moved.value.code == 308 and moved.value.new_url.endswith("/a/b")
    assert Engine([{"from": "/a/b", "to": "/c"}]).resolve("GET", "/a//b").location == "/a/b"

    kept = Map([Rule("/a/b", endpoint="r")], merge_slashes=False).bind("example.com")
    with pytest.raises(NotFound):
        kept.match("/a//b")
    engine = Engine([{"from": "/a/b", "to": "/c"}], defaults={"merge_slashes": False})
    assert engine.resolve("GET", "/a//b").action == "pass"  # to the app, as it came
    assert engine.resolve("GET", "/a/./b").location == "/a/b"  # dot segments: always normalized
    assert engine.resolve("GET", "/a/b").location == "/c"


@pytest.mark.parametrize(
    "gate",
    [
        {"from": "/admin/<path:rest>", "respond": 403},
        {"from": "/admin/<path:rest>", "require": "staff"},
    ],
    ids=["respond", "require"],
)
def test_merge_slashes_off_is_refused_with_rules_that_keep_clients_out(
    gate: dict[str, Any],
) -> None:
    with pytest.raises(RulesError, match="merge_slashes: false cannot go with rules that keep"):
        Engine([gate], defaults={"merge_slashes": False}, guards={"staff": lambda request: None})
