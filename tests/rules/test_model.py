"""A Rule keeps its index and line as one int (pack_position); they read back as given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.rules._build import RuleBuilder
from waypost.rules.converters import DEFAULT_CONVERTERS
from waypost.rules.model import Pass, Rule, pack_position


@given(
    index=st.integers(min_value=0, max_value=2**32 - 1),
    line=st.none() | st.integers(min_value=0, max_value=2**40),
)
def test_index_and_line_read_back(index: int, line: int | None) -> None:
    rule = Rule("/a", Pass(), index, line=line)
    assert (rule.index, rule.line) == (index, line)
    assert rule.replace(index=7).index == 7
    assert rule.replace(index=7).line == line


@pytest.mark.parametrize(("index", "line"), [(-1, None), (2**32, 1), (0, -1)])
def test_out_of_range_is_a_clear_error(index: int, line: int | None) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        pack_position(index, line)


@given(index=st.integers(min_value=0, max_value=10**7), line=st.integers(1, 10**7))
def test_literal_shortcut_packs_like_rule(index: int, line: int) -> None:
    """The loader's literal-redirect shortcut sets the slot itself; it must agree."""
    builder = RuleBuilder({}, DEFAULT_CONVERTERS, "rules.csv")
    rule = builder._plain({"from": "/old", "to": "/new"}, index, line)
    assert rule is not None
    assert (rule.index, rule.line, rule.source) == (index, line, f"rules.csv:{line}")
    assert rule._position == pack_position(index, line)
