"""The compiled road of resolve() (waypost._plainstore.FastPath) against the Python road.

The Python road is the reference: on generated rule sets and requests, whatever the compiled road
answers must be the Python road's decision, field by field and the same rule object; where it
answers None, the Python road answers (and the engine's resolve() gives that). Random bytes as
path and query must never crash it.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import random
import re
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from waypost import Engine
from waypost.decision import Decision
from waypost.engine import _compiled
from waypost.engine._compiled import ENV_SWITCH, FastPath
from waypost.exceptions import RulesError
from waypost.rules.request import Request

pytestmark = pytest.mark.skipif(
    FastPath is None and not os.environ.get("WAYPOST_TEST_COMPILED"),
    reason="built without a C compiler: the Python road answers every request",
)


@contextmanager
def python_road(engine: Engine) -> Iterator[None]:
    snapshot = engine._snapshot
    fast, snapshot.fast = snapshot.fast, None
    try:
        yield
    finally:
        snapshot.fast = fast


def fields(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.action,
        decision.status,
        decision.location,
        decision.path,
        decision.query,
        decision.headers,
        decision.body,
        id(decision.rule),
        decision.vary,
        decision.auth,
        type(decision),
    )


def compare(engine: Engine, request: Any, url: str | None, stage: str = "all") -> bool:
    """Whether the compiled road answered; asserts its answer is the Python road's."""
    fast = engine._snapshot.fast
    assert fast is not None
    answer = fast.resolve(request, url, stage)
    with python_road(engine):
        reference = engine.resolve(request, url, stage=stage)  # type: ignore[arg-type]
    if answer is None:
        assert fields(engine.resolve(request, url, stage=stage)) == fields(reference)  # type: ignore[arg-type]
        return False
    assert fields(answer) == fields(reference), (url, stage)
    assert answer == reference
    return True


# -- generated rule sets ---------------------------------------------------------------------

SEGMENTS = [
    "a",
    "b",
    "c-1",
    "<{}>",
    "<int:{}>",
    "<int(signed=True):{}>",
    "<int(fixed_digits=2):{}>",
    "<int(min=5,max=99):{}>",
    "<float:{}>",
    "<uuid:{}>",
    "<any(a,b5,long):{}>",
    "<string(maxlength=2):{}>",
    "<string(length=3):{}>",
    "n<int:{}>",
    "<{}>.html",
    "item-<int:{}>.html",
    "<{}>-<{}>",
]
TAILS = ["", "", "", "/<path:{}>", "/x<path:{}>", "/<path:{}>.pdf", "/"]
TARGETS = ["/t/{used}", "https://example.com/{used}", "/q?{pairs}", "/literal", "/{used}",
           "/t/%41/{used}", "/a%%b/{used}"]  # fmt: skip


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3))
    tail = draw(st.sampled_from(TAILS))
    names = iter(f"v{i}" for i in range(20))
    out = ""
    for part in parts:
        out += "/" + part.format(*(next(names) for _ in range(part.count("{}"))))
    return out + tail.format(next(names))


@st.composite
def rule_mappings(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:  # an exact rule
        path = "/" + "/".join(
            draw(st.lists(st.sampled_from(["a", "b", "x", "5"]), min_size=1, max_size=3))
        )
        rule: dict[str, Any] = {"from": path}
        kind = draw(st.sampled_from(["to", "to", "rewrite", "respond", "pass", "proxy", "named"]))
        if kind in ("to", "named"):
            rule["to"] = draw(st.sampled_from(["/new", "/n?x=1", "/n#f", "https://e.com/p"]))
            if draw(st.booleans()):
                rule["status"] = draw(st.sampled_from([302, 307, 308]))
            if kind == "named":
                rule["name"] = f"n{draw(st.integers(0, 10**6))}"
        elif kind == "rewrite":
            rule["rewrite"] = draw(st.sampled_from(["/r", "/r?k=1", "/r?k=1#f"]))
        elif kind == "proxy":
            rule["rewrite"] = "https://api.example.com/x"
        elif kind == "respond":
            rule["respond"] = {"status": 410, "body": "gone"}
        else:
            rule["pass"] = True
    else:
        pattern = draw(patterns())
        names = re.findall(r"<(?:[^:>]*:)?(v\d+)>", pattern)
        used = "/".join("{" + name + "}" for name in names)
        pairs = "&".join(f"{n}={{{n}}}" for n in names)
        kind = draw(st.sampled_from(["to", "to", "to", "rewrite", "respond", "pass", "proxy"]))
        rule = {"from": pattern}
        if kind == "to":
            rule["to"] = draw(st.sampled_from(TARGETS)).format(used=used, pairs=pairs)
            if draw(st.booleans()):
                rule["status"] = draw(st.sampled_from([302, 307, 308]))
        elif kind == "rewrite":
            rule["rewrite"] = draw(
                st.sampled_from(["/r/{used}", "/r/{used}?k=1", "/fixed"])
            ).format(used=used)
        elif kind == "proxy":
            rule["rewrite"] = f"https://api.example.com/{used}"
        elif kind == "respond":
            rule["respond"] = {"status": draw(st.sampled_from([404, 410, 451])), "body": "gone"}
        else:
            rule["pass"] = True
    if draw(st.integers(0, 5)) == 0:
        rule["methods"] = ["POST"]
    if draw(st.integers(0, 8)) == 0:
        rule["only_if_missing"] = True
    if draw(st.integers(0, 20)) == 0:
        rule["trailing_slash"] = "strict"
    if draw(st.integers(0, 30)) == 0:
        rule["case"] = "insensitive"
    if draw(st.integers(0, 4)) == 0:
        rule["query"] = "drop"
    return rule


REQUEST_SEGMENTS = ["a", "b", "c-1", "5", "12", "007", "-3", "1.5", "b5", "long", "n5", "x.html",
                    "item-4.html", "y-x", "", "ab", "abc", "%41", ".", "..", "é", "a b",
                    "12345678901234567890123", "6f1c2a44-1b5e-4d3a-9c7e-0d2f4a6b8c10",
                    "x;p=1"]  # fmt: skip
QUERIES = ["", "", "?k=1", "?v0=x&z=2", "?a b=ü", "?x=%2F&y", "?", "#frag", "?q=1#f", "?k=\x00"]


@st.composite
def urls_for(draw: st.DrawFn, rules: list[dict[str, Any]]) -> str:
    if draw(st.integers(0, 3)) == 0:
        parts = draw(st.lists(st.sampled_from(REQUEST_SEGMENTS), min_size=0, max_size=5))
        path = "/" + "/".join(parts)
    else:
        pattern = draw(st.sampled_from([rule["from"] for rule in rules]))
        path = re.sub(
            r"<[^>]*>", lambda _: draw(st.sampled_from([*REQUEST_SEGMENTS, "a/b"])), pattern
        )
    slash = draw(st.sampled_from(["", "", "/", "//"]))
    return path + slash + draw(st.sampled_from(QUERIES))


def _engine(rules: list[dict[str, Any]], pack: bool = True, **defaults: Any) -> Engine:
    try:
        return Engine(rules, defaults=defaults or None, pack_rules=pack)
    except RulesError:  # duplicates, or a shape the loader refuses
        assume(False)
        raise


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_mappings(), min_size=1, max_size=10),
    strict=st.booleans(),
    pack=st.booleans(),
    exact_max=st.sampled_from([50_000, 50_000, 0]),
    data=st.data(),
)
def test_the_compiled_road_gives_the_python_roads_decision(
    rules: list[dict[str, Any]], strict: bool, pack: bool, exact_max: int, data: st.DataObject
) -> None:
    # exact_max 0: the exact rules stay in their dict, which the compiled road looks in
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_compiled, "EXACT_MAX", exact_max)
        engine = _engine(rules, pack, trailing_slash="strict" if strict else "ignore")
    assume(engine._snapshot.fast is not None)
    for url in data.draw(st.lists(urls_for(rules), min_size=1, max_size=10)):
        stage = data.draw(st.sampled_from(["all", "all", "before", "missing"]))
        compare(engine, "GET", url, stage)
        path, _, query = url.partition("?")
        if "#" not in url and "%" not in path:
            compare(engine, Request("GET", path, query), None, stage)


# -- what it covers --------------------------------------------------------------------------

BENCH_LIKE = [
    {"from": "/old/page-1", "to": "/new/page-1"},
    {"from": "/old/page-2", "to": "/new/page-2", "status": 308},
    {"from": "/archive-1/<int:year>/<slug>", "to": "/blog/{year}/{slug}"},
    {"from": "/shop-1/category-<int:cat>/item-<int:id>.html", "to": "/shop/{cat}/{id}"},
    {"from": "/files-1/<path:rest>", "rewrite": "/static/1/{rest}"},
    {"from": "/user-1/<string:name>/posts/<int:post>", "to": "/people/{name}/p/{post}"},
    {"from": "/forum-1/t/<int:topic>", "to": "https://forum.example.com/t/{topic}"},
    {"from": "/<lang>/guide-1/<slug>", "to": "/guides/1/{slug}?lang={lang}"},
    {"from": "/<int:year>/report-1.pdf", "to": "/reports/{year}/1.pdf"},
    {"from": "/gone/<any(a,b):x>", "respond": {"status": 410, "body": "gone"}},
    {"from": "/moved", "rewrite": "/here?k=1", "name": "moved"},
    {"from": "/closed", "respond": {"status": 451, "body": "no"}},
]


@pytest.mark.parametrize(
    "url",
    [
        "/old/page-1",
        "/old/page-2/",
        "/old/page-1?utm=1&x=a b",
        "/archive-1/2020/hello",
        "/archive-1/0020/hello?k=1",
        "/shop-1/category-3/item-44.html",
        "/files-1/css/site.css",
        "/user-1/ann/posts/7",
        "/forum-1/t/9",
        "/en/guide-1/intro",
        "/2024/report-1.pdf",
        "/gone/a",
        "/moved",
        "/closed/?x=1",
        "/nothing/here",
        "/",
    ],
)
def test_the_common_requests_take_the_compiled_road(url: str) -> None:
    engine = Engine(BENCH_LIKE)
    assert compare(engine, "GET", url)
    path, _, query = url.partition("?")
    assert compare(engine, Request("GET", path, query), None)


@pytest.mark.parametrize(
    "url",
    [
        "/old/./page-1",  # a dot segment: its normal form first
        "//old/page-1",  # repeated slashes
        "/archive-1/2020/h%C3%A9",  # percent-encoded: decoded on the Python road
        "/archive-1/2020/hé",  # non-ASCII
        "/archive-1/2020/a b",  # a value that needs quoting in the target
        "/archive-1/123456789012345678901/x",  # an int too long for 64 bits
        "https://example.com/old/page-1",  # an absolute URL
        "/old/page-1#top",
        "/moved?x=1",  # a query to merge with the target's own
    ],
)
def test_what_the_compiled_road_leaves_to_python(url: str) -> None:
    engine = Engine(BENCH_LIKE)
    assert not compare(engine, "GET", url)


def test_guards_conditions_and_other_stages_take_the_python_road() -> None:
    guarded = Engine(
        [{"from": "/admin/<path:p>", "require": "staff"}, *BENCH_LIKE],
        guards={"staff": lambda request: None},
    )
    # A Python check has no memory the compiled road could read: a request it guards is the
    # Python layer's; one outside every guarded area is the rules' (see test_gate.py). The
    # convenience form and path-and-query alone are never enough with guards.
    assert not compare(guarded, Request("GET", "/admin/x"), None)
    for url in ("/old/page-1", "/archive-1/2020/hello"):
        assert not compare(guarded, "GET", url)
        assert compare(guarded, Request("GET", url), None)
    assert guarded._snapshot.fast.resolve_path("/old/page-1", "", "all") is None
    conditional = Engine([{"from": "/a/<x>", "to": "/b", "methods": ["POST"]}])
    assert not compare(conditional, "GET", "/a/x")
    engine = Engine(BENCH_LIKE)
    assert not compare(engine, "GET", "/old/page-1", "before")  # a stored rule: the full search
    assert compare(engine, "GET", "/archive-1/2020/hello", "before")
    assert not compare(engine, "GET", "/archive-1/2020/hello", "missing")  # not its stage


def test_the_switch_turns_the_compiled_road_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SWITCH, "0")
    engine = Engine(BENCH_LIKE)
    assert engine._snapshot.fast is None
    assert engine.resolve("GET", "/archive-1/2020/hello").location == "/blog/2020/hello"


# -- random bytes ----------------------------------------------------------------------------

_ALPHABET = "/abc-1.%?#&=;:é\x00\r\n \t~+05"


def test_random_bytes_as_path_and_query_never_crash_it() -> None:
    engine = Engine(BENCH_LIKE)
    rng = random.Random(20)
    answered = 0
    for _ in range(20_000):
        size = rng.randrange(0, 40)
        if rng.random() < 0.5:
            text = "".join(rng.choice(_ALPHABET) for _ in range(size))
        else:
            raw = bytes(rng.randrange(256) for _ in range(size))
            text = raw.decode("utf-8", "surrogateescape")
        url = "/" + text if rng.random() < 0.9 else text
        answered += compare(engine, "GET", url)
        path, _, query = url.partition("?")
        answered += compare(engine, Request("GET", path, query), None)
    assert answered > 1_000  # the cases it covers are met too


def test_a_larger_rule_set_agrees_on_every_kind_of_request() -> None:
    """The benchmark's shapes at scale: every kind of request of a larger rule set."""
    rules = [{"from": f"/old/page-{i}", "to": f"/new/page-{i}"} for i in range(2_000)]
    for k in range(200):
        for rule in BENCH_LIKE[2:9]:
            rules.append({**rule, "from": rule["from"].replace("-1", f"-{k}")})
    engine = Engine(rules)
    rng = random.Random(7)
    for _ in range(5_000):
        k = rng.randrange(200)
        url = rng.choice(
            [
                f"/old/page-{rng.randrange(2_100)}",
                f"/archive-{k}/{rng.randrange(3000)}/s{k}",
                f"/shop-{k}/category-{k}/item-{rng.randrange(99)}.html",
                f"/files-{k}/a/{k}.css",
                f"/user-{k}/u{k}/posts/{k}",
                f"/forum-{k}/t/{k}",
                f"/de/guide-{k}/x",
                f"/{k}/report-{k}.pdf",
                f"/{k}/report-{k + 1}.pdf",
                f"/missing-{k}/x",
            ]
        )
        compare(engine, "GET", url)


def _passes(request: Request) -> dict[str, str] | None:
    return {"user": "ann"} if request.headers.get("x-pass") else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_mappings(), min_size=1, max_size=8),
    guarded=st.sampled_from(["/<path:p>", "/a/<path:p>", "/b", "/<x>/<path:p>"]),
    data=st.data(),
)
def test_behind_guards_the_rules_decision_is_the_python_roads(
    rules: list[dict[str, Any]], guarded: str, data: st.DataObject
) -> None:
    try:
        engine = Engine([{"from": guarded, "require": "g"}, *rules], guards={"g": _passes})
    except RulesError:
        assume(False)
        return
    assume(engine._snapshot.fast is not None)
    for url in data.draw(st.lists(urls_for(rules), min_size=1, max_size=8)):
        stage = data.draw(st.sampled_from(["all", "before", "missing"]))
        headers = data.draw(st.sampled_from([{}, {"X-Pass": "1"}]))
        compiled = engine.resolve("GET", url, headers, stage=stage)  # type: ignore[arg-type]
        with python_road(engine):
            reference = engine.resolve("GET", url, headers, stage=stage)  # type: ignore[arg-type]
        assert fields(compiled) == fields(reference), url


# -- hit counting ----------------------------------------------------------------------------


def _drained(engine: Engine) -> dict[int, int]:
    """The hits the engine's counters hold, by rule position (drained)."""
    hits: dict[int, int] = {}
    for rules, counter in engine.hit_counters():
        slots = array("d", bytes(24 * len(rules)))
        counter.drain_into(slots, 1000.0, [])
        for position in range(len(rules)):
            if slots[3 * position]:
                hits[position] = hits.get(position, 0) + int(slots[3 * position])
    return hits


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(rule_mappings(), min_size=1, max_size=10), data=st.data())
def test_every_decision_with_a_rule_is_counted_once_on_one_road_or_the_other(
    rules: list[dict[str, Any]], data: st.DataObject
) -> None:
    engine = _engine(rules)
    engine.count_hits()
    expected: dict[int, int] = {}
    recorded: list[Decision] = []
    for url in data.draw(st.lists(urls_for(rules), min_size=1, max_size=12)):
        path, _, query = url.partition("?")
        if "#" in url or "%" in path:
            continue
        decision = engine.resolve_counted(Request("GET", path, query), recorded.append)
        with python_road(engine):
            assert fields(decision) == fields(engine.resolve("GET", url))
        if decision.rule is not None:
            position = engine.rules.index(decision.rule)
            expected[position] = expected.get(position, 0) + 1
    counted = _drained(engine)
    for decision in recorded:  # the Python road's: counted by the caller
        if decision.rule is not None:
            position = engine.rules.index(decision.rule)
            counted[position] = counted.get(position, 0) + 1
    assert counted == expected
    assert _drained(engine) == {}  # drained once


def test_the_counts_of_a_replaced_rule_set_are_still_drained() -> None:
    engine = Engine(BENCH_LIKE)
    engine.count_hits()
    engine.resolve_counted(Request("GET", "/old/page-1", ""), lambda d: None)
    engine.resolve_counted(Request("GET", "/archive-1/2020/x", ""), lambda d: None)
    old_rules = engine.rules
    engine.replace(BENCH_LIKE[:3])
    engine.resolve_counted(Request("GET", "/old/page-1", ""), lambda d: None)
    counters = engine.hit_counters()
    assert [rules for rules, _ in counters] == [engine.rules, old_rules]
    assert _drained(engine) == {0: 2, 2: 1}  # both rule sets' position 0, and /archive-1


def test_a_rule_set_whose_rules_are_not_at_their_index_is_counted_by_the_caller() -> None:
    engine = Engine(BENCH_LIKE)
    moved = tuple(rule.replace(index=rule.index + 5) for rule in engine.rules)
    shifted = Engine(dataclasses.replace(engine.ruleset, rules=moved))
    shifted.count_hits()
    recorded: list[Decision] = []
    shifted.resolve_counted(Request("GET", "/archive-1/2020/x", ""), recorded.append)
    assert len(recorded) == 1 and shifted.hit_counters() == []


# -- Engine.resolve, the method --------------------------------------------------------------


def test_engine_resolve_asks_the_compiled_road_first_with_any_way_of_passing_arguments() -> None:
    engine = Engine(BENCH_LIKE)
    with python_road(engine):
        reference = engine.resolve("GET", "/archive-1/2020/x", stage="missing")
    calls = [
        lambda: engine.resolve("GET", "/archive-1/2020/x", None, None, None, "missing"),
        lambda: engine.resolve("GET", "/archive-1/2020/x", stage="missing"),
        lambda: engine.resolve("GET", url="/archive-1/2020/x", headers={}, stage="missing"),
        lambda: Engine.resolve(engine, "GET", "/archive-1/2020/x", stage="missing"),
        lambda: engine.resolve(request="GET", url="/archive-1/2020/x", stage="missing"),
    ]
    for call in calls:
        assert fields(call()) == fields(reference)
    hit = engine.resolve(Request("GET", "/archive-1/2020/x", ""), stage="before")
    assert hit.location == "/blog/2020/x"
    with pytest.raises(TypeError):
        engine.resolve()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        engine.resolve("GET", "/a", stage="all", color="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="a Request, or a method and a URL"):
        engine.resolve("/archive-1/2020/x")


def test_engine_resolve_keeps_its_signature_doc_and_subclasses() -> None:
    import inspect

    class Mine(Engine):
        __slots__ = ()

    engine = Mine(BENCH_LIKE)
    assert engine.resolve("GET", "/forum-1/t/9").location == "https://forum.example.com/t/9"
    parameters = list(inspect.signature(engine.resolve).parameters)
    assert parameters == ["request", "url", "headers", "client_ip", "now", "stage"]
    assert Engine.resolve.__doc__ and "What happens to" in Engine.resolve.__doc__
    assert Engine.resolve.__name__ == "resolve"


def test_an_engine_built_without_the_compiled_road_keeps_without_it(tmp_path: Path) -> None:
    engine = Engine(BENCH_LIKE, compiled=False)
    assert engine._snapshot.fast is None
    engine.replace(BENCH_LIKE[:3])
    assert engine._snapshot.fast is None
    assert engine.resolve("GET", "/archive-1/2020/x").location == "/blog/2020/x"
    rules = tmp_path / "rules.csv"
    rules.write_text("from,to\n/a,/b\n", encoding="utf-8")
    assert Engine.from_file(rules, compiled=False)._snapshot.fast is None
    assert Engine.from_file(rules)._snapshot.fast is not None


def test_a_snapshot_swapped_while_the_request_is_read_is_held_until_the_answer() -> None:
    engine = Engine(BENCH_LIKE)

    class Swapping:
        """A request whose path, when read, swaps the engine's rules (as another thread's
        reload could, between two bytecodes of a property)."""

        query_string = ""

        @property
        def path(self) -> str:
            engine.replace([{"from": "/other", "to": "/x"}])
            gc.collect()
            return "/archive-1/2020/x"

    decision = engine.resolve(Swapping(), None)  # type: ignore[arg-type]
    assert decision.location == "/blog/2020/x"  # the rules it started with answered
    assert engine.resolve("GET", "/archive-1/2020/x").action == "pass"


def test_engine_resolve_counted_counts_once_with_any_way_of_passing_arguments() -> None:
    """Engine.resolve_counted is a method descriptor in C too: the counting road asked first
    (its hit counted there), otherwise the Python function (its hit recorded)."""
    import inspect

    engine = Engine(BENCH_LIKE)
    engine.count_hits()
    recorded: list[Decision] = []
    request = Request("GET", "/archive-1/2020/x", "")
    calls = [
        lambda: engine.resolve_counted(request, recorded.append),
        lambda: engine.resolve_counted(request, recorded.append, "all"),
        lambda: engine.resolve_counted(request, recorded.append, stage="all"),
        lambda: Engine.resolve_counted(engine, request, recorded.append),
        # keywords the C method does not read: the Python function, which asks the road too
        lambda: engine.resolve_counted(request=request, record=recorded.append),
    ]
    for call in calls:
        assert call().location == "/blog/2020/x"
    position = engine.rules.index(engine.resolve(request).rule)
    assert _drained(engine) == {position: 5}
    assert recorded == []
    # Another stage: the stored rule /old/page-1 is the full search's, recorded.
    assert engine.resolve_counted(Request("GET", "/old/page-1", ""), recorded.append, "before")
    assert len(recorded) == 1 and _drained(engine) == {}
    with pytest.raises(TypeError):
        engine.resolve_counted(request)  # type: ignore[call-arg]
    parameters = list(inspect.signature(engine.resolve_counted).parameters)
    assert parameters == ["request", "record", "stage"]
    assert Engine.resolve_counted.__name__ == "resolve_counted"


def test_resolve_counted_without_counting_started_records_each_decision() -> None:
    engine = Engine(BENCH_LIKE)
    recorded: list[Decision] = []
    engine.resolve_counted(Request("GET", "/archive-1/2020/x", ""), recorded.append)
    assert len(recorded) == 1 and engine.hit_counters() == []
