"""Converters: what text each matches, the value it yields, how a value is written back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from waypost import ConverterError
from waypost.rules.converters import (
    DEFAULT_CONVERTERS,
    AnyConverter,
    BaseConverter,
    FloatConverter,
    IntConverter,
    PathConverter,
    StringConverter,
    UUIDConverter,
    merge_converters,
)

UID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    ("converter", "text", "value"),
    [
        (StringConverter(), "hello", "hello"),
        (StringConverter(length=2), "de", "de"),
        (IntConverter(), "05", 5),
        (IntConverter(min=1), "1", 1),
        (FloatConverter(), "1.50", 1.5),
        (PathConverter(), "a/b/c", "a/b/c"),
        (UUIDConverter(), UID.upper(), uuid.UUID(UID)),
        (AnyConverter("about", "help"), "help", "help"),
    ],
    ids=["string", "string-length", "int-leading-zero", "int-min", "float", "path", "uuid", "any"],
)
def test_to_python_turns_matched_text_into_a_value(
    converter: BaseConverter, text: str, value: Any
) -> None:
    assert converter.to_python(text) == value


@pytest.mark.parametrize(
    ("converter", "text"),
    [
        (IntConverter(min=1), "0"),
        (IntConverter(max=9), "10"),
        (StringConverter(length=2), "deu"),
        (StringConverter(minlength=3), "ab"),
    ],
    ids=["int-below-min", "int-above-max", "string-wrong-length", "string-too-short"],
)
def test_to_python_refuses_out_of_range_text(converter: BaseConverter, text: str) -> None:
    with pytest.raises(ValueError):
        converter.to_python(text)


@pytest.mark.parametrize(
    ("converter", "value", "text"),
    [
        (IntConverter(), 5, "5"),
        (IntConverter(), "0005", "5"),
        (FloatConverter(), 1.5, "1.5"),
        (FloatConverter(), 2, "2.0"),
        (FloatConverter(), 1e20, "100000000000000000000.0"),
        (FloatConverter(), 1e-7, "0.0000001"),
        (UUIDConverter(), uuid.UUID(UID), UID),
        (UUIDConverter(), UID.upper(), UID),
        (StringConverter(), "café", "café"),
        (AnyConverter("a", "b"), "b", "b"),
        (PathConverter(), "a/b", "a/b"),
    ],
    ids=[
        "int",
        "int-from-digits",
        "float",
        "float-from-int",
        "float-big-stays-positional",
        "float-tiny-stays-positional",
        "uuid",
        "uuid-canonical-lowercase",
        "string-unencoded",
        "any",
        "path",
    ],
)
def test_to_url_writes_a_value_back_as_url_text(
    converter: BaseConverter, value: Any, text: str
) -> None:
    assert converter.to_url(value) == text


@pytest.mark.parametrize(
    ("converter", "value", "error"),
    [
        (IntConverter(), -1, ValueError),
        (IntConverter(), True, TypeError),
        (IntConverter(), 1.5, TypeError),
        (IntConverter(), "abc", ValueError),
        (IntConverter(max=10), 11, ValueError),
        (FloatConverter(), float("nan"), ValueError),
        (FloatConverter(), -0.5, ValueError),
        (FloatConverter(), "1.5", TypeError),
        (UUIDConverter(), 42, TypeError),
        (UUIDConverter(), "not-a-uuid", ValueError),
        (StringConverter(), "a/b", ValueError),
        (StringConverter(), "", ValueError),
        (AnyConverter("a", "b"), "c", ValueError),
    ],
    ids=[
        "int-negative",
        "int-bool",
        "int-float",
        "int-text",
        "int-over-max",
        "float-nan",
        "float-negative",
        "float-text",
        "uuid-int",
        "uuid-bad-text",
        "string-slash",
        "string-empty",
        "any-not-listed",
    ],
)
def test_to_url_refuses_ill_typed_values(
    converter: BaseConverter, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        converter.to_url(value)


def test_weights_rank_typed_converters_before_string_before_path() -> None:
    weight = {name: cls.weight for name, cls in DEFAULT_CONVERTERS.items()}
    assert weight["any"] < weight["uuid"] < weight["int"] == weight["float"]
    assert weight["int"] < weight["string"] < weight["path"]


def test_any_matches_the_longest_word_first() -> None:
    assert AnyConverter("a", "ab").regex == "(?:ab|a)"


@pytest.mark.parametrize(
    ("args", "error"),
    [((), TypeError), (("",), ValueError), (("a/b",), ValueError)],
    ids=["no-items", "empty-item", "slash-in-item"],
)
def test_any_needs_plain_words(args: tuple[str, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        AnyConverter(*args)


class LangConverter(BaseConverter):
    regex = "[a-z]{2}"
    weight = 45


class GroupConverter(BaseConverter):
    regex = "(a|b)"


class BrokenRegexConverter(BaseConverter):
    regex = "[a-"


def test_merge_converters_adds_a_registered_converter_to_the_builtins() -> None:
    merged = merge_converters({"lang": LangConverter})
    assert merged["lang"] is LangConverter
    assert merged["int"] is IntConverter


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"1lang": LangConverter}, "must be an identifier"),
        ({"lang": str}, "subclass of waypost.BaseConverter"),
        ({"lang": BrokenRegexConverter}, "bad regex"),
        ({"lang": GroupConverter}, "capturing groups"),
    ],
    ids=["bad-name", "not-a-converter", "bad-regex", "capturing-group"],
)
def test_merge_converters_refuses_unusable_converters(extra: Any, words: str) -> None:
    with pytest.raises(ConverterError, match=words):
        merge_converters(extra)


def test_a_converter_repr_reads_like_its_constructor() -> None:
    assert repr(AnyConverter("a", "b")) == "AnyConverter('a', 'b')"
    assert repr(IntConverter()) == "IntConverter()"


# -- regex: a rules file's own regex, run on RE2 ------------------------------------------


def test_a_regex_variable_matches_what_its_regex_does() -> None:
    from waypost import Engine

    engine = Engine(
        [
            {"from": "/<regex('[a-z]{2}'):lang>/home", "to": "/home?lang={lang}"},
            {"from": "/d/<regex('\\d{4}/\\d{2}'):ym>", "to": "/months/{ym}"},  # spans a '/'
            {"from": "/p/<regex('[a-z]+'):w>", "to": "/w/{w}", "case": "insensitive"},
        ]
    )
    assert engine.resolve("GET", "/de/home").location == "/home?lang=de"
    assert engine.resolve("GET", "/deu/home").action == "pass"
    assert engine.resolve("GET", "/d/2024/05").location == "/months/2024/05"
    assert engine.resolve("GET", "/P/AbC").location == "/w/AbC"


def test_a_regex_segment_runs_on_re2() -> None:
    from waypost.rules.pattern import Segment, parse_pattern

    pattern = parse_pattern("/x/<regex('(?:a+)+b'):v>")
    segment = pattern.parts[1]
    assert isinstance(segment, Segment)
    assert type(segment.regex).__module__.startswith("re2")  # linear on 'aaaa...a!'
    assert segment.regex.fullmatch("a" * 10_000 + "!") is None


@pytest.mark.parametrize(
    ("regex", "message"),
    [
        ("(a|b)", "capturing groups"),
        ("(?:a)\\1", "no backreferences or lookaround"),
        ("(?=a)b", "no backreferences or lookaround"),
    ],
    ids=["group", "backreference", "lookahead"],
)
def test_a_regex_re2_cannot_run_linearly_is_refused(regex: str, message: str) -> None:
    from waypost import Engine
    from waypost.exceptions import RulesError

    with pytest.raises(RulesError, match=message):
        Engine([{"from": f"/<regex('{regex}'):v>", "to": "/y"}])


def test_without_re2_the_regex_converter_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from waypost import Engine
    from waypost.exceptions import RulesError

    real = importlib.import_module

    def no_re2(name: str, *args: object) -> object:
        if name == "re2":
            raise ImportError("No module named 're2'")
        return real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", no_re2)
    with pytest.raises(RulesError, match=r"pip install 'waypost\[re2\]'"):
        Engine([{"from": "/<regex('[a-z]{2}'):v>", "to": "/y"}])
