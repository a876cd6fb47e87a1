"""Errors are for people: file:line(:col), the offending text quoted, and how to fix it.

Every mistake in a rules file is an error (never a crash, never a silent skip), and the loader
reports every one of them at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from waypost import Engine, RuleError, RulesError, WaypostError


def errors_of(path: Path) -> list[RuleError]:
    with pytest.raises(RulesError) as caught:
        Engine.from_file(path)
    assert caught.value.file == str(path)
    return list(caught.value.errors)


def test_an_unknown_converter_names_file_line_column_and_a_fix(rules_data: Path) -> None:
    (error,) = errors_of(rules_data / "bad_converter.yaml")
    path = rules_data / "bad_converter.yaml"
    assert str(error) == (
        f"{path}:14:11: unknown converter 'itn' in '/<itn:id>'; did you mean 'int'?"
    )
    assert (error.file, error.line, error.col) == (str(path), 14, 11)


def test_every_error_in_a_file_is_reported_in_file_order(rules_data: Path) -> None:
    errors = errors_of(rules_data / "five_errors.yaml")
    found = [(e.line, e.col, e.message) for e in errors]
    assert found == [
        (5, 13, "unknown converter 'itn' in '/<itn:id>'; did you mean 'int'?"),
        (
            9,
            13,
            "redirect status must be one of 301, 302, 303, 307, 308, got 305 "
            "(301/308 permanent, 302/303/307 temporary; 307/308 keep the method and body)",
        ),
        (
            11,
            12,
            "target variable 'slgu' is not defined by the pattern '/post/<slug>'; "
            "did you mean 'slug'?",
        ),
        (12, 12, "unbalanced '<' in '/<id'; close the variable with '>', like <slug>"),
        (16, 5, "unknown key 'stauts'; did you mean 'status'?"),
    ]


def test_the_error_summary_counts_and_lists_every_error(rules_data: Path) -> None:
    path = rules_data / "five_errors.yaml"
    with pytest.raises(RulesError) as caught:
        Engine.from_file(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 5 errors"
    assert all(line.startswith(f"  {path}:") for line in lines[1:])


def test_a_csv_row_with_the_wrong_number_of_columns(rules_data: Path) -> None:
    path = rules_data / "wrong_columns.csv"
    errors = errors_of(path)
    assert [(e.line, e.message) for e in errors] == [
        (3, "this row has 2 columns but the header has 3 (from,to,status): '/c,/d'"),
        (4, "this row has 4 columns but the header has 3 (from,to,status): '/e,/f,302,extra'"),
    ]
    assert str(errors[0]).startswith(f"{path}:3: ")


def test_a_duplicate_yaml_key(rules_data: Path) -> None:
    (error,) = errors_of(rules_data / "duplicate_key.yaml")
    assert (error.line, error.col) == (4, 5)
    assert "duplicate key 'to'" in error.message


def test_a_duplicate_rule_names_both_lines(rules_data: Path) -> None:
    path = rules_data / "duplicate_rule.yaml"
    (error,) = errors_of(path)
    assert error.line == 6
    assert f"{path}:2" in error.message
    assert "'/blog/<int:y>' has the same pattern and conditions" in error.message


# Each case: a rules file in YAML with one mistake on its third line, the text the error's column
# points at (None where the whole rule is at fault), and words the message must contain.
YAML_MISTAKES = [
    ("  - {from: /a, to: /b, status: 305}", "305", "got 305"),
    ("  - {from: /a, to: /b, status: '30x'}", "'30x'", "got '30x'"),
    ("  - {from: /a, to: /b, status: true}", "true", "got True"),
    (
        "  - {from: /a, to: /b, stauts: 302}",
        "stauts",
        "unknown key 'stauts'; did you mean 'status'?",
    ),
    ("  - {from: '/<itn:id>', to: /b}", "itn", "did you mean 'int'?"),
    ("  - {from: '/p/<slug>', to: '/q/{slgu}'}", "{slgu}", "did you mean 'slug'?"),
    ("  - {from: '/p/<a>', to: '/q/{zzz}'}", "{zzz}", "the pattern defines 'a'"),
    ("  - {from: /a, to: '/q/{x}'}", "{x}", "the pattern defines no variables"),
    ("  - {from: '/<id', to: /b}", "<id", "unbalanced '<'"),
    ("  - {from: 'a', to: /b}", "a',", "did you mean '/a'?"),
    ("  - {from: /a, to: 'javascript:alert(1)'}", "javascript", "only http and https"),
    ("  - {from: /a, to: '//evil.com'}", "//evil", "protocol-relative"),
    ("  - {from: /a}", None, "a rule needs an action"),
    ("  - {to: /b}", None, "a rule needs 'from'"),
    ("  - {form: /a, to: /b}", "form", "unknown key 'form'; did you mean 'from'?"),
    ("  - {from: /a, to: /b, rewrite: /c}", None, "exactly one action"),
    ("  - {from: /a, respond: 200, status: 301}", None, "'status' goes with 'to'"),
    ("  - {from: /a, respond: 302}", None, "use 'to:' with status: 302"),
    ("  - {from: /a, respond: 99}", None, "from 200 to 599"),
    ("  - {from: /a, respond: {status: 200, bdy: x}}", None, "unknown key 'bdy' in respond"),
    ("  - {from: /a, respond: {status: 200, headers: {'X\\nY': 1}}}", None, "not a valid header"),
    ('  - {from: /a, rewrite: /b, set_headers: {X-A: "1\\r\\n2"}}', None, "control character"),
    ("  - {from: /a, pass: yes please}", None, "'pass' must be true"),
    ("  - {from: /a, to: /b, query: kep}", None, "did you mean 'keep'?"),
    ("  - {from: /a, to: /b, case: lower}", None, "case must be sensitive or insensitive"),
    ("  - {from: /a, to: /b, trailing_slash: strcit}", None, "did you mean 'strict'?"),
    ("  - {name: 'a b', from: /a, to: /b}", None, "rule name 'a b'"),
    ("  - {from: /a, to: /b, when: {hots: x}}", None, "did you mean 'host'?"),
    ("  - just a string", None, "a rule must be a mapping"),
    ("  - {from: /a, to: /b, set_headers: {X: y}}", None, "'set_headers' goes with 'rewrite'"),
]


@pytest.mark.parametrize(
    ("rule_line", "pointer", "words"),
    YAML_MISTAKES,
    ids=[
        "bad-status",
        "status-text",
        "status-bool",
        "unknown-key",
        "unknown-converter",
        "target-variable-did-you-mean",
        "target-variable-lists-defined",
        "target-variable-static-pattern",
        "unbalanced-angle",
        "pattern-without-slash",
        "javascript-target",
        "protocol-relative-target",
        "no-action",
        "no-from",
        "misspelt-from",
        "two-actions",
        "status-without-redirect",
        "respond-redirect-status",
        "respond-bad-status",
        "respond-unknown-key",
        "respond-bad-header-name",
        "set-headers-crlf",
        "pass-not-true",
        "bad-query-mode",
        "bad-case-mode",
        "bad-trailing-slash-mode",
        "bad-name",
        "unknown-condition",
        "rule-not-mapping",
        "set-headers-without-rewrite",
    ],
)
def test_each_mistake_is_one_located_error(
    write_rules: Callable[[str, str], Path],
    rule_line: str,
    pointer: str | None,
    words: str,
) -> None:
    path = write_rules("rules.yaml", "# one mistake below\nrules:\n" + rule_line + "\n")
    errors = errors_of(path)
    assert len(errors) == 1, errors
    (error,) = errors
    assert words in error.message
    assert error.file == str(path)
    assert error.line == 3
    if pointer is not None:
        assert error.col == rule_line.index(pointer) + 1
        assert str(error).startswith(f"{path}:3:{error.col}: ")
    assert str(error).startswith(f"{path}:3")


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("rules: [\n", (2, 1), "not valid YAML"),
        ("rulez: []\n", (1, 1), "unknown top-level key 'rulez'; did you mean 'rules'?"),
        ("defaults: {status: 305}\n", (1, 20), "got 305"),
        ("defaults: {stauts: 301}\n", (1, 12), "unknown default 'stauts'; did you mean 'status'?"),
        ("allowed_hosts: ['ex ample/']\n", (1, 17), "allowed host must be a host name"),
        ("allowed_hosts: ['a*.example.com']\n", (1, 17), "written '*.example.com'"),
        ("rules: {from: /a}\n", (1, 8), "'rules' must be a list"),
        ("just text\n", (1, None), "a rules file holds a mapping"),
        ("rules:\n  - &a [*a]\n", None, "recursive YAML alias"),
    ],
    ids=[
        "yaml-syntax",
        "unknown-top-level-key",
        "bad-default-status",
        "unknown-default",
        "bad-allowed-host",
        "bad-wildcard",
        "rules-not-a-list",
        "not-a-mapping",
        "recursive-alias",
    ],
)
def test_file_level_mistakes(
    write_rules: Callable[[str, str], Path],
    text: str,
    where: tuple[int, int | None] | None,
    words: str,
) -> None:
    (error,) = errors_of(write_rules("rules.yaml", text))
    assert words in error.message
    if where is not None:
        assert (error.line, error.col) == where


@pytest.mark.parametrize(
    ("name", "text", "where", "words"),
    [
        ("r.toml", '[[rules]]\nfrom = "/<itn:id>"\nto = "/b"\n', (2, 11), "did you mean 'int'?"),
        ("r.toml", '[[rules]]\nfrom = "/a"\nto = "/b"\nstatus = 305\n', (4, 10), "got 305"),
        ("r.toml", "[[rules]\n", (1, 8), "not valid TOML"),
        ("r.json", '{"rules": [\n  {"from": "/<itn:id>", "to": "/b"}\n]}', (2, 15), "'int'?"),
        ("r.json", '{"rules": [\n  {"from": "/a", "to": "/b", "status": 305}\n]}', (2, 40), "305"),
        ("r.json", '{"rules": [}', (1, 12), "not valid JSON"),
        ("r.csv", "from,to,status\n/<itn:id>,/b,301\n", (2, None), "did you mean 'int'?"),
        ("r.csv", "from,to,status\n/a,/b,305\n", (2, None), "got 305"),
        ("r.csv", "form,to,status\n/a,/b,301\n", (1, None), "unknown column 'form'"),
        ("r.csv", "", (1, None), "the CSV file is empty"),
        ("r.csv", 'from,to\n"/a,/b\n', None, "not valid CSV"),
        ("r.txt", "from,to\n", None, "unknown rules file type '.txt'"),
    ],
    ids=[
        "toml-converter",
        "toml-status",
        "toml-syntax",
        "json-converter",
        "json-status",
        "json-syntax",
        "csv-converter",
        "csv-status",
        "csv-header",
        "csv-empty",
        "csv-syntax",
        "unknown-suffix",
    ],
)
def test_other_formats_locate_their_errors(
    write_rules: Callable[[str, str], Path],
    name: str,
    text: str,
    where: tuple[int, int | None] | None,
    words: str,
) -> None:
    (error,) = errors_of(write_rules(name, text))
    assert words in error.message
    if where is not None:
        assert (error.line, error.col) == where


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"rules:\n  - {from: /caf\xe9, to: /b}\n")
    (error,) = errors_of(path)
    assert (error.line, "not UTF-8") == (2, "not UTF-8")
    assert "save the file as UTF-8" in error.message


def test_a_missing_file(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path / "nope.yaml")
    assert "cannot read the file" in error.message


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        ([{"from": "/<itn:id>", "to": "/b"}], "rule #1.from: unknown converter 'itn'"),
        ([{"from": "/a", "to": "/b"}, {"from": "/a", "to": "/b", "status": 305}], "rule #2.status"),
        ([{"from": "/a", "to": "/b"}, {"from": "/a", "to": "/c"}], "duplicate rule"),
        (["/a"], "a rule must be a mapping"),
    ],
    ids=["converter", "status", "duplicate", "not-a-mapping"],
)
def test_engine_from_mappings_reports_errors_by_rule_number(rules: list[Any], words: str) -> None:
    with pytest.raises(RulesError) as caught:
        Engine(rules)
    assert any(words in str(e) for e in caught.value.errors), caught.value


def test_every_waypost_error_shares_one_root() -> None:
    assert issubclass(RulesError, WaypostError)
    assert issubclass(RuleError, WaypostError)
    error = RuleError("bad", file="r.yaml", line=3, col=7)
    assert str(error) == "r.yaml:3:7: bad"
    assert repr(error) == "RuleError('bad', file='r.yaml', line=3, col=7)"
    assert str(RuleError("bad")) == "<rules>: bad"


@pytest.mark.parametrize(
    ("header", "separator"), [("from;to;status", ";"), ("from\tto", "\t"), ("from|to", "|")]
)
def test_a_csv_separated_by_something_else_than_commas_says_so(
    tmp_path: Path, header: str, separator: str
) -> None:
    path = tmp_path / "moved.csv"
    row = separator.join(["/a", "/b", "301"][: header.count(separator) + 1])
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    (error,) = errors_of(path)
    assert error.line == 1
    assert error.message == (
        f"the header {header!r} is separated by {separator!r}; a rules CSV is separated by "
        "commas: from,to,status (save it as 'CSV, comma delimited')"
    )


def test_a_csv_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbffrom,to,status\r\n/a,/b,308\r\n")
    assert Engine.from_file(path).resolve("GET", "/a").status == 308


def test_a_tab_in_yaml_indentation_says_to_use_spaces(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - from: /a\n\tto: /b\n", encoding="utf-8")
    (error,) = errors_of(path)
    assert (error.line, error.col) == (3, 1)
    assert error.message.endswith("YAML indents with spaces, not tabs: replace the tab with spaces")
