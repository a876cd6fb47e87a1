"""Patterns: Flask's variable syntax, typed converters, mixed segments, percent-decoded matching."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from waypost import BaseConverter, Engine, RuleSyntaxError
from waypost.rules.converters import DEFAULT_CONVERTERS, IntConverter, StringConverter
from waypost.rules.pattern import parse_pattern

UID = "0f8fad5b-d9cb-469f-a165-70867728950e"


class LangConverter(BaseConverter):
    """A two-letter language code, registered by the user as ``lang``."""

    regex = "[a-z]{2}"
    weight = 45

    def to_python(self, value: str) -> str:
        if value not in ("de", "en", "fr"):
            raise ValueError("unsupported language")
        return value


def values_for(pattern: str, url: str, **options: Any) -> dict[str, Any] | None:
    """The values ``pattern`` captures from ``url``, or None when it does not match."""
    rule = {"from": pattern, "pass": True, **options}
    engine = Engine([rule], converters={"lang": LangConverter})
    trace = engine.explain("GET", url)
    return dict(trace.steps[0].values) if trace.steps else None


@pytest.mark.parametrize(
    ("pattern", "url", "values"),
    [
        ("/u/<name>", "/u/ada", {"name": "ada"}),
        ("/u/<string:name>", "/u/ada", {"name": "ada"}),
        ("/y/<int:year>", "/y/2024", {"year": 2024}),
        ("/y/<int:year>", "/y/007", {"year": 7}),
        ("/p/<float:price>", "/p/9.99", {"price": 9.99}),
        ("/f/<path:rest>", "/f/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("/o/<uuid:id>", f"/o/{UID}", {"id": uuid.UUID(UID)}),
        ("/<any(about,help,imprint):page>", "/help", {"page": "help"}),
        ("/i/<int(min=1):id>", "/i/1", {"id": 1}),
        ("/c/<string(length=2):code>", "/c/de", {"code": "de"}),
        ("/<lang:lang>/docs", "/de/docs", {"lang": "de"}),
        ("/item-<int:id>.html", "/item-42.html", {"id": 42}),
        ("/<int:a>-<int:b>", "/1-2", {"a": 1, "b": 2}),
        ("/<a>-<b>", "/x-y-z", {"a": "x", "b": "y-z"}),
        ("/<a>.<b>.html", "/x.y.z.html", {"a": "x", "b": "y.z"}),
        ("/<any(a,b):x><int:n>", "/b12", {"x": "b", "n": 12}),
        ("/<path:rest>/edit", "/a/b/edit", {"rest": "a/b"}),
        ("/café", "/caf%C3%A9", {}),
        ("/w/<word>", "/w/caf%C3%A9", {"word": "café"}),
        ("/w/<word>", "/w/a%20b", {"word": "a b"}),
        ("/f/<path:rest>", "/f/a%2Fb", {"rest": "a/b"}),
    ],
    ids=[
        "default-is-string",
        "string",
        "int",
        "int-leading-zeros",
        "float",
        "path-spans-slashes",
        "uuid",
        "any",
        "converter-args-int-min",
        "converter-args-string-length",
        "custom-converter",
        "mixed-segment",
        "two-variables-one-segment",
        "string-stops-at-the-text-after-it",
        "string-stops-at-the-first-dot",
        "bounded-variables-may-touch",
        "path-then-static",
        "static-percent-decoded",
        "variable-percent-decoded",
        "space-decoded",
        "encoded-slash-is-a-slash",
    ],
)
def test_a_pattern_matches_and_captures_typed_values(
    pattern: str, url: str, values: dict[str, Any]
) -> None:
    assert values_for(pattern, url) == values


@pytest.mark.parametrize(
    ("pattern", "url"),
    [
        ("/u/<name>", "/u/a/b"),
        ("/u/<name>", "/u/"),
        ("/y/<int:year>", "/y/20x4"),
        ("/y/<int:year>", "/y/-1"),
        ("/p/<float:price>", "/p/9"),
        ("/o/<uuid:id>", "/o/not-a-uuid"),
        ("/<any(about,help):page>", "/imprint"),
        ("/i/<int(min=1):id>", "/i/0"),
        ("/c/<string(length=2):code>", "/c/deu"),
        ("/<lang:lang>/docs", "/xx/docs"),
        ("/item-<int:id>.html", "/item-x.html"),
        ("/f/<path:rest>", "/f/"),
        ("/café", "/cafe"),
    ],
    ids=[
        "string-is-one-segment",
        "string-never-empty",
        "int-digits-only",
        "int-no-sign",
        "float-needs-a-point",
        "uuid-shape",
        "any-not-listed",
        "converter-args-refuse",
        "string-length-refuses",
        "custom-to-python-refuses",
        "mixed-segment-typed",
        "path-never-empty",
        "accents-matter",
    ],
)
def test_a_pattern_does_not_match(pattern: str, url: str) -> None:
    assert values_for(pattern, url) is None


@pytest.mark.parametrize(
    ("mode", "url", "matches"),
    [
        ("ignore", "/a/b", True),
        ("ignore", "/a/b/", True),
        ("strict", "/a/b", True),
        ("strict", "/a/b/", False),
    ],
    ids=["ignore-bare", "ignore-slash", "strict-bare", "strict-slash"],
)
def test_trailing_slash(mode: str, url: str, matches: bool) -> None:
    assert (values_for("/a/<x>", url, trailing_slash=mode) is not None) is matches


@pytest.mark.parametrize(
    ("mode", "url", "values"),
    [
        ("sensitive", "/Blog/Hello", None),
        ("sensitive", "/blog/Hello", {"slug": "Hello"}),
        ("insensitive", "/BLOG/Hello", {"slug": "Hello"}),
        ("insensitive", "/BLOG/ITEM-5.HTML", {"slug": "ITEM-5.HTML"}),
    ],
    ids=["sensitive-refuses", "sensitive-exact", "insensitive-static", "insensitive-keeps-values"],
)
def test_case(mode: str, url: str, values: dict[str, Any] | None) -> None:
    assert values_for("/blog/<slug>", url, case=mode) == values


def test_a_pattern_written_with_a_trailing_slash_matches_both_forms_by_default() -> None:
    assert values_for("/a/<x>/", "/a/1") == {"x": "1"}
    assert values_for("/a/<x>/", "/a/1/") == {"x": "1"}
    assert values_for("/a/<x>/", "/a/1", trailing_slash="strict") is None


@pytest.mark.parametrize(
    ("text", "names", "static"),
    [
        ("/about", (), True),
        ("/blog/<int:year>/<slug>", ("year", "slug"), False),
        ("/<any(a, b):x>", ("x",), False),
    ],
    ids=["static", "two-variables", "any-with-spaces"],
)
def test_parse_pattern_lists_variables(text: str, names: tuple[str, ...], static: bool) -> None:
    pattern = parse_pattern(text)
    assert pattern.variable_names == names
    assert pattern.is_static is static
    assert repr(pattern) == f"parse_pattern({text!r})"


def test_converter_arguments_reach_the_converter() -> None:
    pattern = parse_pattern("/<int(min=1, max=9):n>/<string(length=2):c>")
    number, code = (v.converter for v in pattern.variables)
    assert isinstance(number, IntConverter) and (number.min, number.max) == (1, 9)
    assert isinstance(code, StringConverter) and code.minlength == code.maxlength == 2


@pytest.mark.parametrize(
    ("text", "words", "col"),
    [
        ("/<itn:id>", "unknown converter 'itn' in '/<itn:id>'; did you mean 'int'?", 2),
        ("/<zzz:id>", "known converters:", 2),
        ("/<id", "unbalanced '<' in '/<id'", 1),
        ("/a/<b", "unbalanced '<'", 3),
        ("/id>", "unbalanced '>'", 3),
        ("/<>", "variable name is empty", 2),
        ("/<int:1x>", "'1x' is not a valid name", 6),
        ("/<a>/<a>", "'a' appears twice", 5),
        ("/<int(min=1):a>", None, None),
        ("/<int(min=x=1):a>", "bad arguments", None),
        ("/<int(bogus=1):a>", "bad arguments for converter 'int'", 2),
        ("/<int(1, min=2, 3):a>", "positional argument", None),
        ("/a?b=1", "match the query string with when:", 2),
        ("/a#top", "'#' in pattern", 2),
        ("about", "must start with '/'", 0),
        ("/a\nb", "control character", 2),
        ("/<a><b>", "variables <a> and <b> touch", 4),
        ("/<int:a><int:b>", "put text between them, like <a>-<b>", 8),
        ("/<path:a>/x/<path:b>", "two variables that span slashes", 12),
    ],
    ids=[
        "unknown-converter-did-you-mean",
        "unknown-converter-lists-known",
        "unbalanced-open",
        "unbalanced-open-later",
        "unbalanced-close",
        "empty-name",
        "bad-name",
        "name-twice",
        "good-args",
        "unreadable-args",
        "unknown-arg",
        "positional-after-keyword",
        "query-in-pattern",
        "fragment-in-pattern",
        "no-leading-slash",
        "control-character",
        "string-variables-touch",
        "int-variables-touch",
        "two-path-variables",
    ],
)
def test_pattern_errors_quote_the_text_and_point_at_it(
    text: str, words: str | None, col: int | None
) -> None:
    if words is None:
        parse_pattern(text)
        return
    with pytest.raises(RuleSyntaxError) as caught:
        parse_pattern(text)
    assert words in caught.value.message
    if col is not None:
        assert caught.value.col == col


def test_the_custom_converter_is_known_only_where_registered() -> None:
    converters = {**DEFAULT_CONVERTERS, "lang": LangConverter}
    assert parse_pattern("/<lang:l>", converters=converters).variables[0].spec == "lang"
    with pytest.raises(RuleSyntaxError, match="unknown converter 'lang'"):
        parse_pattern("/<lang:l>")


@pytest.mark.parametrize(
    ("text", "values", "url"),
    [
        (
            "/<int:year>/<int:month>/<title>",
            {"year": 2024, "month": 5, "title": "hello"},
            "/2024/5/hello",
        ),
        ("/w/<word>", {"word": "a b/c"}, None),
        ("/w/<word>", {"word": "café & co"}, "/w/caf%C3%A9%20&%20co"),
        ("/f/<path:rest>", {"rest": "a b/c"}, "/f/a%20b/c"),
        ("/f/<path:rest>", {"rest": "/etc"}, None),
        ("/café/<int:n>", {"n": 1}, "/caf%C3%A9/1"),
        ("/item-<int:id>.html", {"id": "007"}, "/item-7.html"),
        ("/p/<float:x>", {"x": 1e20}, "/p/100000000000000000000.0"),
        ("/i/<int(min=1):id>", {"id": 0}, None),
    ],
    ids=[
        "article",
        "string-refuses-slash",
        "string-encoded",
        "path-keeps-slashes",
        "path-refuses-leading-slash",
        "static-encoded",
        "int-normalised",
        "float-positional",
        "int-min-refused",
    ],
)
def test_build_fills_values_in_url_form(text: str, values: dict[str, Any], url: str | None) -> None:
    pattern = parse_pattern(text)
    if url is None:
        with pytest.raises((ValueError, TypeError)):
            pattern.build(values)
    else:
        assert pattern.build(values) == url
