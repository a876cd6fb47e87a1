"""Property tests: no input makes the core hang or raise anything but Waypost's own errors.

Rules files and requests are open-ended, so hypothesis writes them: random pattern and target
text, random rules files in every format, random rule mappings, random URL-building values and
random requests. The only exceptions allowed are the documented WaypostError subclasses
(RulesError, RuleError, UrlBuildError); a request never raises at all, and no header, Location or
rewritten path may carry a control character. Built URLs route back to their rule.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
import uuid
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waypost import Engine, RuleError, RulesError, RuleSyntaxError, UrlBuildError
from waypost.rules._build import RULE_KEYS
from waypost.rules.conditions import CONDITION_KEYS
from waypost.rules.load import parse_rules
from waypost.rules.pattern import parse_pattern
from waypost.rules.target import parse_target

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PATTERN_BITS = [
    "/",
    "<",
    ">",
    ":",
    "(",
    ")",
    "=",
    ",",
    "'",
    '"',
    "int",
    "itn",
    "string",
    "path",
    "float",
    "uuid",
    "any",
    "min=1",
    "length=2",
    "a",
    "b",
    "x",
    "-",
    ".",
    "_",
    "é",
    "%2F",
    "{",
    "}",
    "?",
    "#",
    "\\",
    " ",
    "\n",
    "\x00",
    "default",
    "1",
    "*",
]
TARGET_BITS = [
    "/",
    "{",
    "}",
    "{{",
    "}}",
    "{x}",
    "{y}",
    "x",
    "http",
    "https",
    "://",
    ":",
    "//",
    "\\",
    "@",
    "?",
    "#",
    "&",
    "=",
    "example.com",
    "javascript",
    ".",
    "-",
    "%",
    "é",
    " ",
    "\r\n",
    "\t",
]
URL_BITS = [
    "/",
    "//",
    "\\",
    "%",
    "%2F",
    "%2f",
    "%5C",
    "%0d%0a",
    "%00",
    "%FF",
    "%C3%A9",
    "%",
    "?",
    "#",
    "&",
    "=",
    "http://",
    "https:",
    "evil.com",
    "example.com",
    "@",
    "go",
    "r",
    "x",
    "h",
    "to",
    "rw",
    "q",
    "a",
    "1",
    "05",
    ".",
    "..",
    "-",
    "~",
    " ",
    "\t",
    "\n",
    "\r",
    "\x00",
    "é",
    "\udcff",
]


def pieces(bits: list[str], max_size: int = 12) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(bits), max_size=max_size).map("".join)


def text_like(bits: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(pieces(bits), st.text(max_size=30))


# -- parsers ---------------------------------------------------------------------------------


@FAST
@given(text=text_like(PATTERN_BITS), case=st.booleans(), strict=st.booleans())
def test_the_pattern_parser_parses_or_raises_a_rule_syntax_error(
    text: str, case: bool, strict: bool
) -> None:
    try:
        pattern = parse_pattern(text, case_insensitive=case, strict_slashes=strict)
    except RuleSyntaxError as exc:
        assert exc.message and (exc.col is None or 0 <= exc.col <= len(text))
        return
    assert pattern.text == text


@FAST
@given(text=text_like(TARGET_BITS))
def test_the_target_parser_parses_or_raises_a_rule_syntax_error(text: str) -> None:
    try:
        target = parse_target(text)
    except RuleSyntaxError as exc:
        assert exc.message and (exc.col is None or 0 <= exc.col <= len(text))
        return
    assert target.absolute == (target.scheme is not None)
    if target.literal is not None:
        assert not _CONTROL.search(target.literal)


# -- the loader --------------------------------------------------------------------------------

YAML_BITS = [
    "rules:",
    "\n",
    "  - ",
    "from: ",
    "to: ",
    "status: ",
    "/a",
    "/<int:x>",
    "/{x}",
    "301",
    "305",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "'",
    '"',
    ":",
    "when: ",
    "host: ",
    "defaults:",
    "  ",
    "- ",
    "!!python/object ",
    "---",
    "%",
    "\t",
    "@",
    "#",
    "? ",
    "|",
    ">",
]
TOML_BITS = [
    "[[rules]]",
    "\n",
    "from = ",
    "to = ",
    "status = ",
    '"/a"',
    '"/<itn:x>"',
    "301",
    "[rules.when]",
    "[defaults]",
    "=",
    '"',
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    "true",
    "1979-05-27",
    "x",
    "#",
]
JSON_BITS = [
    '{"rules": [',
    "{",
    "}",
    "[",
    "]",
    '"from"',
    '"to"',
    ":",
    ",",
    '"/a"',
    '"/<int:x>"',
    "301",
    "null",
    "true",
    '"status"',
    '"when"',
    '"\\u0000"',
    '"\\ud800"',
    "1e999",
    "-",
    '"',
]
CSV_BITS = [
    "from,to,status",
    "from,to",
    "\n",
    "\r\n",
    ",",
    "/a",
    "/b",
    "/<int:x>",
    "/{x}",
    "301",
    '"',
    "name",
    "x",
    "#",
    "\x00",
    " ",
]
FORMAT_TEXT = {
    "yaml": text_like(YAML_BITS),
    "toml": text_like(TOML_BITS),
    "json": text_like(JSON_BITS),
    "csv": text_like(CSV_BITS),
}


def assert_located(errors: list[RuleError]) -> None:
    for error in errors:
        assert isinstance(error, RuleError)
        assert error.message
        assert error.line is None or error.line >= 1
        assert error.col is None or error.col >= 1


@FAST
@given(data=st.data(), fmt=st.sampled_from(["yaml", "toml", "json", "csv"]))
def test_the_loader_never_crashes_on_random_text(data: st.DataObject, fmt: str) -> None:
    text = data.draw(FORMAT_TEXT[fmt])
    started = time.perf_counter()
    ruleset, errors = parse_rules(text, format=fmt, file="fuzz")
    assert_located(errors)
    assert all(e.file == "fuzz" for e in errors)
    if not errors:
        try:
            engine = Engine(ruleset)
        except RulesError as exc:  # duplicates are found when the matcher is built
            assert all("duplicate rule" in e.message for e in exc.errors)
        else:
            for rule in engine.rules:
                engine.resolve("GET", rule.path)
    assert time.perf_counter() - started < 5


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "/a",
            "/b",
            "/<int:x>",
            "/<x>",
            "/<path:p>",
            "/{x}",
            "/{p}",
            "https://example.com/{x}",
            "//evil.com",
            "javascript:x",
            "301",
            "308",
            "keep",
            "drop",
            "strict",
            "insensitive",
            "GET",
            "json",
            "de",
            "10.0.0.0/8",
            "2026-01-01",
            "*",
            "*.example.com",
            "",
            "/<itn:x>",
        ]
    ),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from([*CONDITION_KEYS, "status", "body", "headers", "X-A"]),
                st.text(max_size=5),
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
RULES = st.lists(
    st.dictionaries(
        st.one_of(st.sampled_from([*RULE_KEYS, "form", "bogus"]), st.text(max_size=6)),
        VALUES,
        max_size=6,
    ),
    max_size=5,
)
TOP = st.fixed_dictionaries(
    {"rules": RULES},
    optional={"defaults": VALUES, "allowed_hosts": VALUES, "extra": VALUES},
)


@FAST
@given(rules=RULES)
def test_engine_from_random_mappings_raises_only_rules_error(rules: list[dict[str, Any]]) -> None:
    try:
        engine = Engine(rules)
    except RulesError as exc:
        assert exc.errors
        assert all(isinstance(e, RuleError) for e in exc.errors)
        return
    for rule in engine.rules:
        engine.resolve("GET", rule.path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "nan"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = [f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    return '""'


def dump(document: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(document, allow_unicode=True)
    if fmt == "json":
        return json.dumps(document)
    if fmt == "toml":
        lines = [f"{json.dumps(k)} = {_toml(v)}" for k, v in document.items() if k != "rules"]
        for rule in document["rules"]:
            lines.append("[[rules]]")
            lines.extend(
                f"{json.dumps(str(k))} = {_toml(v)}" for k, v in rule.items() if v is not None
            )
        return "\n".join(lines) + "\n"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["from", "to", "status", "name"])
    for rule in document["rules"]:
        writer.writerow([str(rule.get(k, "")) for k in ("from", "to", "status", "name")])
    return out.getvalue()


@FAST
@given(document=TOP, fmt=st.sampled_from(["yaml", "toml", "json", "csv"]))
def test_random_rules_files_load_or_report_located_errors(
    document: dict[str, Any], fmt: str
) -> None:
    _, errors = parse_rules(dump(document, fmt), format=fmt, file=f"fuzz.{fmt}")
    assert_located(errors)
    if errors:
        assert all(e.file == f"fuzz.{fmt}" for e in errors)


@FEW
@given(
    document=st.fixed_dictionaries(
        {
            "rules": st.lists(
                st.fixed_dictionaries(
                    {
                        "from": st.sampled_from(["/a", "/b/<int:n>", "/c/<x>", "/d/<path:p>"]),
                        "to": st.sampled_from(["/x", "/y/{n}", "/z?q={x}", "https://e.com/{p}"]),
                    },
                    optional={"status": st.sampled_from([301, 302, 303, 307, 308, 305])},
                ),
                max_size=4,
            )
        }
    ),
)
def test_every_format_reports_the_same_number_of_errors(document: dict[str, Any]) -> None:
    counts = {
        fmt: len(parse_rules(dump(document, fmt), format=fmt)[1])
        for fmt in ("yaml", "toml", "json")
    }
    _, csv_errors = parse_rules(dump(document, "csv"), format="csv")
    assert len(set(counts.values())) == 1, counts
    assert len(csv_errors) == counts["json"]


# -- URL building ----------------------------------------------------------------------------

NAMED = [
    {"name": "int", "from": "/i/<int:n>", "to": "/x"},
    {"name": "str", "from": "/s/<name>", "to": "/x"},
    {"name": "path", "from": "/p/<path:rest>", "to": "/x"},
    {"name": "float", "from": "/f/<float:x>", "to": "/x"},
    {"name": "uuid", "from": "/u/<uuid:id>", "to": "/x"},
    {"name": "any", "from": "/l/<any(de,en):lang>", "to": "/x"},
    {"name": "mixed", "from": "/m/item-<int:id>.html", "to": "/x"},
    {"name": "deep", "from": "/c/<int(min=1):year>/<slug>/<path:rest>", "to": "/x"},
    {"name": "static", "from": "/about us", "to": "/x"},
]
BUILDER = Engine(NAMED)
ANY_VALUE = st.one_of(
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.booleans(),
    st.none(),
    st.uuids(),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=4),
)


@FAST
@given(
    name=st.sampled_from([*(r["name"] for r in NAMED), "nope", "Int"]),
    values=st.dictionaries(
        st.sampled_from(["n", "name", "rest", "x", "id", "lang", "year", "slug", "extra", "q w"]),
        ANY_VALUE,
        max_size=4,
    ),
)
def test_url_for_builds_or_raises_url_build_error(name: str, values: dict[str, Any]) -> None:
    try:
        url = BUILDER.url_for(name, **values)
    except UrlBuildError as exc:
        assert str(exc)
        return
    assert url.startswith("/") and not url.startswith("//")
    assert not _CONTROL.search(url) and " " not in url


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
# Values that make a dot segment or an empty one are a build error (tested below): a request for
# such a path goes to its normal form first.
SEGMENT = TEXT.filter(lambda s: "/" not in s and s not in (".", ".."))
PATH = TEXT.filter(
    lambda s: (
        not s.startswith("/")
        and not s.endswith("/")
        and all(part not in ("", ".", "..") for part in s.split("/"))
    )
)
ROUND_TRIPS = st.one_of(
    st.tuples(st.just("int"), st.fixed_dictionaries({"n": st.integers(0, 10**30)})),
    st.tuples(st.just("str"), st.fixed_dictionaries({"name": SEGMENT})),
    st.tuples(st.just("path"), st.fixed_dictionaries({"rest": PATH})),
    st.tuples(
        st.just("float"),
        st.fixed_dictionaries({"x": st.floats(0, allow_nan=False, allow_infinity=False)}),
    ),
    st.tuples(st.just("uuid"), st.fixed_dictionaries({"id": st.uuids()})),
    st.tuples(st.just("mixed"), st.fixed_dictionaries({"id": st.integers(0, 10**6)})),
    st.tuples(
        st.just("deep"),
        st.fixed_dictionaries({"year": st.integers(1, 3000), "slug": SEGMENT, "rest": PATH}),
    ),
)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("str", {"name": "."}),
        ("str", {"name": ".."}),
        ("path", {"rest": "a/../b"}),
        ("path", {"rest": "a//b"}),
        ("path", {"rest": "./a"}),
    ],
    ids=["dot", "dot-dot", "dot-dot-inside", "empty-segment", "leading-dot"],
)
def test_url_for_refuses_values_whose_path_is_not_in_normal_form(
    name: str, values: dict[str, Any]
) -> None:
    with pytest.raises(UrlBuildError, match="normal form"):
        BUILDER.url_for(name, **values)


@FAST
@given(case=ROUND_TRIPS)
def test_url_for_then_resolve_matches_the_same_rule_with_the_same_values(
    case: tuple[str, dict[str, Any]],
) -> None:
    name, values = case
    url = BUILDER.url_for(name, **values)
    trace = BUILDER.explain("GET", url)
    assert trace.steps, url
    step = trace.steps[0]
    assert step.rule.name == name, url
    assert dict(step.values) == values, url


# -- resolving -------------------------------------------------------------------------------

RESOLVER = Engine(
    [
        {"from": "/go/<path:u>", "to": "/{u}"},
        {"from": "/r/<u>", "to": "/{u}", "when": {"not": {"query": {"stay": "*"}}}},
        {"from": "/x/<path:u>", "to": "https://example.com/{u}"},
        {"from": "/h/<h>", "to": "https://{h}.example.org/"},
        {"from": "/to/<host>", "to": "https://{host}/"},
        {"from": "/q/<path:u>", "to": "/search?q={u}"},
        {"from": "/rw/<path:u>", "rewrite": "/app/{u}", "set_headers": {"X-R": "1"}},
        {"from": "/i/<int(min=1):n>/<a>-<b>", "to": "/n/{n}/{b}/{a}"},
        {
            "from": "/a",
            "respond": {"status": 200, "headers": {"X-A": "1"}},
            "when": {"accept": "json"},
        },
        {"from": "/a", "to": "/b", "when": {"language": "de", "ip": ["10.0.0.0/8", "::1/128"]}},
        {
            "from": "/a",
            "to": "/c",
            "when": {"cookies": {"beta": "*"}, "headers": {"X-Beta": ["1", "2"]}},
        },
        {"from": "/a", "to": "/d", "when": {"host": "*.example.com", "after": "2020-01-01"}},
        {"from": "/<path:p>", "to": "/moved/{p}", "case": "insensitive"},
    ],
    allowed_hosts=["*.example.org", "good.com"],
)
HEADERS = st.dictionaries(
    st.sampled_from(["Host", "Accept", "Accept-Language", "Cookie", "X-Beta", "X-Other", "host"]),
    text_like(["de", "en", "*/*", "text/html", ";q=0.5", ",", "=", "; ", "beta", "\r\n", ":", "["]),
    max_size=4,
)


@FAST
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "get", "", "PURGE\n"]),
    url=text_like(URL_BITS),
    headers=st.one_of(st.none(), HEADERS),
    client_ip=st.one_of(
        st.none(), st.sampled_from(["10.1.2.3", "::1", "[::1]", "x", ""]), st.text(max_size=8)
    ),
)
def test_resolve_never_raises_and_never_emits_control_characters(
    method: str, url: str, headers: dict[str, str] | None, client_ip: str | None
) -> None:
    decision = RESOLVER.resolve(method, url, headers, client_ip)
    for name, value in decision.headers:
        assert not _CONTROL.search(name) and not _CONTROL.search(value)
    assert not any(_CONTROL.search(name) for name in decision.vary)
    for field in (decision.location, decision.path, decision.query):
        assert field is None or not _CONTROL.search(field), decision
    if decision.location is not None:
        assert not decision.location.startswith(("//", "/\\"))
    assert RESOLVER.explain(method, url, headers, client_ip).decision == decision


@pytest.mark.parametrize(
    "url",
    [
        "/i/1/" + "a-" * 5000,
        "/i/1/" + "a-" * 5000 + "/",
        "/go/" + "a/" * 5000,
        "/" + "%2F" * 5000,
        "/" + "a" * 100_000,
    ],
    ids=["many-separators", "many-separators-slash", "many-segments", "many-escapes", "long"],
)
def test_long_hostile_paths_resolve_quickly(url: str) -> None:
    started = time.perf_counter()
    RESOLVER.resolve("GET", url)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "url"),
    [
        ("/<a>-<b>-<c>-<d>.html", "/" + "a-" * 3000),
        ("/<a>_<b>-<c>.html", "/a-_" + "a-" * 3000 + ".html"),
        ("/<path:a>/<b>/<c>/x", "/" + "a/" * 3000),
        ("/<int:a>-<int:b>-<int:c>-<d>.html", "/" + "1-" * 3000),
        ("/<any(a,b):x><int:n>-<d>.x", "/a" + "1" * 3000),
    ],
    ids=["four-strings", "mixed-separators", "path-then-strings", "ints", "bounded-then-int"],
)
def test_patterns_that_could_backtrack_stay_linear(pattern: str, url: str) -> None:
    engine = Engine([{"from": pattern, "pass": True}])
    started = time.perf_counter()
    engine.resolve("GET", url)
    assert time.perf_counter() - started < 1.0


def test_uuid_values_round_trip_as_uuid() -> None:
    value = uuid.UUID(int=7)
    assert BUILDER.explain("GET", BUILDER.url_for("uuid", id=value)).steps[0].values == {
        "id": value
    }
