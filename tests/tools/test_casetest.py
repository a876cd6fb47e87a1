"""``waypost test`` cases: reading CSV and YAML, errors with their line, running and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.engine import Engine
from waypost.tools.casetest import Case, parse_cases, render_failures, run_cases

DATA = Path(__file__).parents[1] / "data" / "tools"

ENGINE = Engine(
    [
        {"from": "/old", "to": "/new"},
        {"from": "/form", "methods": ["POST"], "to": "/form2", "status": 308},
        {"from": "/a", "to": "/b"},
        {"from": "/b", "to": "/c", "status": 302},
        {"from": "/gone", "respond": 410},
        {"from": "/app/<path:rest>", "rewrite": "/internal/{rest}?x=1"},
        {"from": "/de", "when": {"language": ["de"]}, "to": "/de/home", "status": 302},
    ]
)


def test_csv_cases_with_headers_and_comments() -> None:
    text = (
        "# comment\n"
        "method,url,headers,ip,status,location,action,final,name\n"
        "POST,/form,Content-Type: text/plain | X-A: 1,10.0.0.1,308,/form2,redirect,,form\n"
        ",/old,,,301,,,,\n"
    )
    cases, errors = parse_cases(text, format="csv", file="c.csv")
    assert errors == []
    assert cases[0] == Case(
        url="/form",
        method="POST",
        headers=(("Content-Type", "text/plain"), ("X-A", "1")),
        client_ip="10.0.0.1",
        status=308,
        location="/form2",
        action="redirect",
        name="form",
        line=3,
    )
    assert (cases[1].method, cases[1].line, cases[1].location) == ("GET", 4, None)


def test_yaml_cases_flat_and_under_expect() -> None:
    text = (
        "cases:\n"
        "  - url: /old\n    status: 301\n"
        "  - url: /form\n    method: post\n    headers: {A: '1'}\n"
        "    expect: {status: 308, location: /form2}\n"
    )
    cases, errors = parse_cases(text, format="yaml", file="c.yaml")
    assert errors == []
    assert [(c.url, c.method, c.status, c.line) for c in cases] == [
        ("/old", "GET", 301, 2),
        ("/form", "POST", 308, 4),
    ]
    assert cases[1].headers == (("A", "1"),)


def test_a_top_level_list_is_fine() -> None:
    cases, errors = parse_cases("- {url: /old, status: 301}\n", format="yaml")
    assert (errors, len(cases)) == ([], 1)


@pytest.mark.parametrize(
    ("fmt", "text", "line", "message"),
    [
        ("csv", "url,stauts\n/a,301\n", 1, "unknown column 'stauts'; did you mean 'status'?"),
        ("csv", "method,status\nGET,301\n", 1, "the header has no 'url'"),
        ("csv", "url,status\n/a,301,x\n", 2, "this row has 3 columns but the header has 2"),
        ("csv", "url,status\n/a,\n", 2, "nothing to check for '/a'"),
        ("csv", "url,status\n/a,moved\n", 2, "status must be a number like 301, got 'moved'"),
        (
            "csv",
            "url,action\n/a,redirekt\n",
            2,
            "unknown action 'redirekt'; did you mean 'redirect'?",
        ),
        ("csv", "url,headers,status\n/a,NoColon,301\n", 2, "'NoColon' is not a header"),
        ("csv", "", 1, "the file is empty"),
        ("yaml", "cases:\n  - {url: /a, stauts: 301}\n", 2, "did you mean 'status'?"),
        (
            "yaml",
            "cases:\n  - url: /a\n    expect: {location: /b, x: 1}\n",
            2,
            "unknown expectation 'x'",
        ),
        ("yaml", "cases:\n  - status: 301\n", 2, "every case needs a 'url'"),
        ("yaml", "cases:\n  - just text\n", 2, "a case is a mapping with 'url'"),
        ("yaml", "url: /a\n", 1, "a cases file holds a list of cases"),
        ("yaml", "cases: [\n", 2, "not valid YAML"),
    ],
    ids=[
        "csv-typo",
        "csv-no-url",
        "csv-columns",
        "csv-nothing-to-check",
        "csv-status",
        "csv-action",
        "csv-header",
        "csv-empty",
        "yaml-typo",
        "yaml-expect-typo",
        "yaml-no-url",
        "yaml-not-mapping",
        "yaml-not-list",
        "yaml-syntax",
    ],
)
def test_errors_name_the_line(fmt: str, text: str, line: int, message: str) -> None:
    _, errors = parse_cases(text, format=fmt, file="cases")
    assert errors, "expected an error"
    assert errors[0].line == line
    assert message in errors[0].message


@pytest.mark.parametrize(
    ("case", "problems"),
    [
        (Case("/old", status=301, location="/new"), ()),
        (Case("/old", status=308), ("status is 301, expected 308",)),
        (Case("/old", location="/newer"), ("location is /new, expected /newer",)),
        (Case("/old?x=1", location="/new?x=1"), ()),
        (Case("/form", method="POST", status=308, location="/form2"), ()),
        (Case("/form", status=308), ("status is none (pass), expected 308",)),
        (Case("/gone", status=410, action="respond"), ()),
        (Case("/nothing", status=200), ()),
        (Case("/app/x", status=200, action="rewrite", location="/internal/x?x=1"), ()),
        (Case("/a", final="/c"), ()),
        (Case("/a", final="/b"), ("final URL is /c, expected /b",)),
        (Case("/de", headers=(("Accept-Language", "de-AT"),), location="/de/home"), ()),
        (Case("/de", action="redirect"), ("action is pass, expected redirect",)),
    ],
    ids=[
        "pass",
        "status",
        "location",
        "query-kept",
        "post",
        "method-matters",
        "respond",
        "200-means-app",
        "rewrite",
        "final",
        "final-wrong",
        "headers",
        "action",
    ],
)
def test_run_cases(case: Case, problems: tuple[str, ...]) -> None:
    [result] = run_cases(ENGINE, [case])
    assert result.problems == problems
    assert result.passed is (not problems)


def test_failure_table() -> None:
    cases = [Case("/old", status=301, line=2), Case("/old", status=302, line=3, name="temp")]
    text = render_failures(run_cases(ENGINE, cases), file="c.csv")
    lines = text.splitlines()
    assert lines[0].split() == ["case", "request", "expected", "got"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["c.csv:3", "temp", "GET", "/old", "302", "redirect", "301", "/new"]
    assert lines[-1] == "1 passed, 1 failed"
    assert render_failures(run_cases(ENGINE, cases[:1])) == "1 passed, 0 failed"


@pytest.mark.parametrize("name", ["migration_cases.csv", "migration_cases.yaml"])
def test_shipped_case_files_read_cleanly(name: str) -> None:
    fmt = "csv" if name.endswith(".csv") else "yaml"
    cases, errors = parse_cases((DATA / name).read_text(encoding="utf-8"), format=fmt, file=name)
    assert errors == []
    assert len(cases) >= 4
