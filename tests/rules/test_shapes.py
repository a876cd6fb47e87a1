"""Patterns and targets of one shape (other leading segments) are parsed once: the pattern or
target made from the shape must be the one a whole parse gives, field by field, and an error
must be the whole parse's error, said of the text as written."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.exceptions import RuleSyntaxError
from waypost.rules import pattern as pattern_module
from waypost.rules import target as target_module
from waypost.rules.converters import DEFAULT_CONVERTERS, StringConverter
from waypost.rules.pattern import parse_pattern
from waypost.rules.target import parse_target

# Leading segments: plain text (the shapes' way), and what must take the whole parse.
_SEGMENT = st.text(alphabet="abcXYZ019_~-", min_size=1, max_size=6) | st.sampled_from(
    [".", "..", "a.b", "caf\u00e9", "a%20b", "a<b", "a>b", "a b", "A\x00", "x?y", "x#y"]
)
_PREFIX = st.lists(_SEGMENT, min_size=1, max_size=3).map(lambda segs: "/" + "/".join(segs))
_PATTERN_RESTS = [
    "/<path:rest>",
    "/<int:id>",
    "/<int:id>/",
    "/x-<slug>.html",
    "/<a>-<b>",
    "/<a>/<b>",
    "/<int:y>/<path:p>/tail",
    "/<path:p>/more/",
    '/<regex("[a-z]+"):w>',
    "/<any(a,b):k>",
    "/<uuid:u>",
    "/<float:f>x",
    "/v<int:n>",
    "/<bad",
    "/<>",
    "/<int:x>/<int:x>",
    "/<nope:x>",
    "/<int:x>?q",
    "/<path:a>/<path:b>",
    "/<int:a><int:b>",
    "/<a>>",
]
_TARGET_RESTS = [
    "/{rest}",
    "/{a}/{b}",
    "/x{a}y",
    "/{a}?q={b}",
    "/{a}#frag",
    "/p{a}/{{lit}}",
    "/{a",
    "/}x{a}",
    "/{}",
    "/{a}/\u00e9",
    "/{a}/x y",
    "/{a}\x00",
]


def _plain(value: Any) -> Any:
    """``value`` as comparable data: converters by type and state, regexes by text and flags."""
    if isinstance(value, re.Pattern):
        return ("re", value.pattern, value.flags)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(
                (f.name, _plain(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.compare
            ),
        )
    if isinstance(value, tuple | list):
        return tuple(_plain(item) for item in value)
    if isinstance(value, dict):
        return tuple((key, _plain(item)) for key, item in value.items())
    if hasattr(value, "to_python"):  # a converter
        state = dict(vars(value)) if hasattr(value, "__dict__") else {}
        return (type(value).__name__, _plain(state))
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return value


def _outcome(parse: Any, *args: Any) -> Any:
    try:
        return ("ok", _plain(parse(*args)))
    except RuleSyntaxError as exc:
        return ("error", exc.message, exc.col)


@settings(max_examples=400, deadline=None)
@given(
    _PREFIX,
    st.sampled_from(_PATTERN_RESTS),
    st.booleans(),
    st.booleans(),
)
def test_a_pattern_of_a_known_shape_is_the_whole_parse(
    prefix: str, rest: str, case_insensitive: bool, strict_slashes: bool
) -> None:
    text = prefix + rest
    whole = _outcome(
        pattern_module._parse, text, DEFAULT_CONVERTERS, case_insensitive, strict_slashes
    )
    # Twice: the first may parse the shape, the second takes it from what was kept.
    for _ in range(2):
        assert (
            _outcome(
                lambda t: parse_pattern(
                    t, case_insensitive=case_insensitive, strict_slashes=strict_slashes
                ),
                text,
            )
            == whole
        )


@settings(max_examples=400, deadline=None)
@given(_PREFIX, st.sampled_from(_TARGET_RESTS), st.sampled_from(["target", "redirect target"]))
def test_a_target_of_a_known_shape_is_the_whole_parse(prefix: str, rest: str, what: str) -> None:
    text = prefix + rest
    whole = _outcome(target_module._parse, text, what)
    for _ in range(2):
        assert _outcome(lambda t: parse_target(t, what=what), text) == whole


def test_shapes_are_shared_and_their_patterns_are_not() -> None:
    first = parse_pattern("/section1/<path:rest>")
    second = parse_pattern("/section2/<path:rest>")
    assert (first.text, first.parts, first.pieces[0]) == (
        "/section1/<path:rest>",
        ("section1",),
        "/section1/",
    )
    assert (second.text, second.parts, second.pieces[0]) == (
        "/section2/<path:rest>",
        ("section2",),
        "/section2/",
    )
    assert second.signature == "/section2/<path>|s|"
    assert first.tail is second.tail  # the shape's dynamic part, made once
    assert first.converters == second.converters and first.converters is not second.converters
    assert parse_target("/s1/{rest}").pieces[0] == "/s1/"
    assert parse_target("/s22/{rest}").pieces[0] == "/s22/"


def test_a_converter_of_the_application_gets_one_instance_a_rule() -> None:
    class Counting(StringConverter):
        """A converter with state of its own (as an application's may have)."""

        def __init__(self) -> None:
            super().__init__()
            self.seen = 0

    converters = {**DEFAULT_CONVERTERS, "counting": Counting}
    first = parse_pattern("/a/<counting:x>", converters=converters)
    second = parse_pattern("/b/<counting:x>", converters=converters)
    assert first.variables[0].converter is not second.variables[0].converter
    assert second.parts[0] == "b"


def test_an_error_names_the_text_as_written() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_pattern("/old/<nope:x>")
    assert "/old/<nope:x>" in caught.value.message and "aaa" not in caught.value.message
    with pytest.raises(RuleSyntaxError) as caught_target:
        parse_target("/new/{a")
    assert "/new/{a" in caught_target.value.message
