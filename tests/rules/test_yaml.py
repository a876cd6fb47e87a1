"""YAML read from the parser's events: the values ``yaml.safe_load`` gives, the positions
``yaml.compose`` gives, aliases bounded by what they add and not the document by its size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from waypost.rules import _yaml
from waypost.rules._yaml import (
    AliasesTooLarge,
    RecursiveAlias,
    RuleLines,
    locate_in,
    read_yaml_values,
)
from waypost.rules.load import parse_rules, read_rules

DOCUMENTS = [
    "rules:\n  - from: /a\n    to: /b\n    status: 302\n",
    "defaults: {status: 301, query: keep}\nallowed_hosts: [a.example, b.example]\nrules: []\n",
    "- {from: /a, to: /b}\n- {from: /c, to: /d}\n",
    "rules:\n  - &base {from: /a, to: /b, status: 302}\n  - <<: *base\n    from: /c\n",
    "a: [1, 2.5, true, null, ~, '3', 0x10, 2001-01-01, .inf, !!str 7, '']\n",
    "a: !!binary aGVsbG8=\nb: !!timestamp 2001-12-14t21:59:43.10-05:00\n",
    "x: &x {p: 1}\ny: {<<: [*x, {q: 2}], p: 3}\n",
    "",
    "---\n",
    "just text\n",
]


@pytest.mark.parametrize("text", DOCUMENTS, ids=range(len(DOCUMENTS)))
@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "pure-python"])
def test_the_values_are_those_of_safe_load(text: str, fast: bool) -> None:
    value, _, problems = read_yaml_values(text, fast=fast)
    assert value == yaml.safe_load(text)
    assert problems == []


def _positions(pos: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], tuple[int, int]]:
    out = {path: (pos.line, pos.col)}
    for key, child in pos.children.items():
        out.update(_positions(child, (*path, key)))
    return out


def _node_positions(
    node: Any, path: tuple[Any, ...] = ()
) -> dict[tuple[Any, ...], tuple[int, int]]:
    out = {path: (node.start_mark.line + 1, node.start_mark.column + 1)}
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            out.update(_node_positions(child, (*path, index)))
    elif isinstance(node, yaml.MappingNode):
        for key, child in node.value:
            out.update(_node_positions(child, (*path, key.value)))
    return out


def test_every_position_is_the_one_compose_gives() -> None:
    text = (
        "defaults:\n  status: 301\nguards:\n  staff: {basic: {htpasswd: x}}\n"
        "other:\n  - [a, {b: c}]\n"
    )
    _, pos, _ = read_yaml_values(text)
    assert _positions(pos) == _node_positions(yaml.compose(text))


def test_the_rules_keep_where_each_starts_and_their_details_on_request() -> None:
    text = "rules:\n  - from: /a\n    to: /b\n  -   {from: /c, to: /d}\n"
    _, pos, _ = read_yaml_values(text)
    lines = pos.children["rules"].children
    assert isinstance(lines, RuleLines)
    assert [(lines[i].line, lines[i].col) for i in lines] == [(2, 5), (4, 7)]
    assert locate_in(pos, ("rules", 1, "to"), None) == (4, 7), "no detail yet: the rule's start"
    lines.refine([1])
    assert locate_in(pos, ("rules", 1, "to"), None) == (4, 22)
    assert locate_in(pos, ("rules", 1, "to"), 1) == (4, 23)


def test_a_mistake_deep_in_a_long_file_is_pointed_at() -> None:
    rules = "".join(f"  - from: /old/{n}\n    to: /new/{n}\n" for n in range(5000))
    text = "rules:\n" + rules + "  - from: /a/<itn:x>\n    to: /b\n"
    (error,) = parse_rules(text, format="yaml", file="big.yaml")[1]
    assert (error.line, error.col) == (10002, 15)
    assert "did you mean 'int'?" in error.message


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a'", (2, 1)),
        ("rules:\n  - {from: /a, to: /b, from: /c}\n", "duplicate key 'from'", (2, 24)),
        ("? [a]\n: 1\n", "a mapping key must be a plain value", (1, 3)),
    ],
    ids=["top-level", "inside-a-rule", "list-as-key"],
)
def test_key_problems_carry_their_line_and_column(
    text: str, message: str, where: tuple[int, int]
) -> None:
    (problem,) = read_yaml_values(text)[2]
    assert message in problem.message
    assert (problem.line, problem.col) == where


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: *nope\n", "found undefined alias 'nope'"),
        ("a: &x 1\nb: &x 2\n", "found duplicate anchor 'x'"),
        ("a: 1\n---\nb: 2\n", "expected a single document in the stream"),
    ],
    ids=["undefined-alias", "duplicate-anchor", "two-documents"],
)
def test_composer_errors_are_pyyaml_s(text: str, words: str) -> None:
    def said(error: yaml.MarkedYAMLError) -> tuple[Any, ...]:
        mark = error.problem_mark
        return (
            error.context,
            error.problem,
            mark.line if mark else None,
            mark.column if mark else None,
        )

    with pytest.raises(yaml.MarkedYAMLError) as raised:
        read_yaml_values(text)
    assert words in str(raised.value)
    with pytest.raises(yaml.MarkedYAMLError) as composed:
        yaml.compose(text, Loader=yaml.SafeLoader)
    assert said(raised.value) == said(composed.value)


def test_a_recursive_alias_is_refused_where_it_is_anchored() -> None:
    with pytest.raises(RecursiveAlias) as raised:
        read_yaml_values("rules:\n  - &a [1, *a]\n")
    assert (raised.value.line, raised.value.col) == (2, 5)


def laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_aliases_that_multiply_the_document_are_refused() -> None:
    with pytest.raises(AliasesTooLarge):
        read_yaml_values(laughs(9))
    (error,) = parse_rules(laughs(9), format="yaml")[1]
    assert "aliases" in error.message and "1,000,000" in error.message


def test_aliases_that_share_a_little_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    value, _, _ = read_yaml_values(laughs(3))
    assert len(value["a2"]) == 10 and value["a2"][0] is value["a1"], "shared, as safe_load does"
    monkeypatch.setattr(_yaml, "MAX_ALIAS_VALUES", 100)
    with pytest.raises(AliasesTooLarge):
        read_yaml_values(laughs(3))


def test_a_large_document_without_aliases_is_not_refused_for_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only what aliases add counts (a 595,000-rule file was once refused for its size)."""
    monkeypatch.setattr(_yaml, "MAX_ALIAS_VALUES", 100)
    value, _, _ = read_yaml_values("other: [" + "x, " * 10_000 + "]\n")
    assert len(value["other"]) == 10_000


def test_a_long_list_of_rules_loads_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    path.write_text(
        "rules:\n" + "".join(f"- from: /old/{n}\n  to: /new/{n}\n" for n in range(20_000))
    )
    ruleset, errors = read_rules(path)
    assert errors == []
    assert [r.line for r in ruleset.rules[-2:]] == [39_998, 40_000]
