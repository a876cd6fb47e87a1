"""A CSV rules file read in bulk (its plain rows packed by the compiled store, ``PlainStore.
add_csv_rows``) gives exactly what the streaming reader gives: the same rules in the same order,
with the same lines, targets and statuses, packed or not, and the same errors in the same order.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waypost.rules import load
from waypost.rules.converters import merge_converters
from waypost.rules.model import PackedRule, RuleSet

plainstore = pytest.importorskip("waypost._plainstore", reason="the compiled store is not built")


def _streamed(data: bytes) -> tuple[RuleSet, list[Any]]:
    # As the streaming reader reads a file: open(..., encoding="utf-8-sig", newline="").
    lines = io.StringIO(data.decode("utf-8-sig"), newline="")
    return load._csv_rules(lines, "t.csv", merge_converters(None), None, (), True)


def _bulk(data: bytes) -> tuple[RuleSet, list[Any]] | None:
    return load._csv_bulk(data, "t.csv", merge_converters(None), True)


def _seen(result: tuple[RuleSet, list[Any]]) -> tuple[list[tuple[Any, ...]], list[str]]:
    ruleset, errors = result
    rules = []
    for rule in ruleset.rules:
        action = rule.action
        rules.append(
            (
                rule.path,
                getattr(action, "text", repr(action)),
                getattr(action, "status", None),
                rule.index,
                rule.line,
                isinstance(rule, PackedRule),
                rule.name,
            )
        )
    return rules, [str(error) for error in errors]


def _same(data: bytes) -> None:
    bulk = _bulk(data)
    assert bulk is not None
    assert _seen(bulk) == _seen(_streamed(data))


FROMS = [
    "/a",
    "/a/b-c_d.e~f",
    "/",
    "/x/",
    "/a//b",
    "/a/./b",
    "/a/.hidden",
    "/%41",
    "/a b",
    "/a?b",
    "/a#b",
    "/<int:n>",
    "/p/<path:rest>",
    "/café",
    "a",
    "",
    " /padded ",
    "/tab\there",
    "#comment",
    "/semi;colon",
    "/UPPER",
]
TOS = [
    "/b",
    "/b/{n}",
    "/b c",
    "//evil.example",
    "/\\evil",
    "https://example.com/x?y=1#z",
    "http://example.com:8080",
    "https://exa mple.com",
    "https://",
    "ftp://example.com",
    "/ü",
    "",
    " /sp ",
    "/{",
    "/a|b~c",
]
STATUSES = ["301", "302", "303", "307", "308", "", "0301", "399", " 302 ", "x", "300"]
NAMES = ["", "", "", "n1", "bad name", "n1"]


@st.composite
def tables(draw: Any) -> bytes:
    columns = draw(
        st.sampled_from(
            [
                ["from", "to", "status"],
                ["from", "to"],
                ["to", "from", "status", "name"],
                ["status", "from", "to"],
                ["from", "to", "status", "name"],
            ]
        )
    )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(c.upper() if draw(st.booleans()) else c for c in columns)]
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.integers(0, 20))
        if kind == 0:
            lines.append("")
        elif kind == 1:
            lines.append("# a comment," + draw(st.sampled_from(FROMS)))
        elif kind == 2:
            lines.append(",".join(draw(st.sampled_from(FROMS)) for _ in range(len(columns) + 1)))
        else:
            cells = {
                "from": draw(st.sampled_from(FROMS)),
                "to": draw(st.sampled_from(TOS)),
                "status": draw(st.sampled_from(STATUSES)),
                "name": draw(st.sampled_from(NAMES)),
            }
            lines.append(",".join(cells[c] for c in columns))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.integers(0, 5)) == 0 else ""
    return (bom + text).encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_bulk_reading_gives_what_streaming_gives(data: bytes) -> None:
    _same(data)


def test_the_plain_rows_are_packed_in_bulk_and_the_others_read_one_by_one() -> None:
    data = b"from,to,status\n/a,/b,301\n/c,/d/{x},301\n/<int:x>,/e/{x},302\n\n/f,/g,308\n/h,/i\n"
    _same(data)
    bulk = _bulk(data)
    assert bulk is not None
    ruleset, errors = bulk
    assert [type(r).__name__ for r in ruleset.rules] == ["PackedRule", "Rule", "PackedRule"]
    assert [r.line for r in ruleset.rules] == [2, 4, 6]
    # Reading errors first, then building errors, as the streaming reader reports them.
    assert [str(e) for e in errors] == [
        "t.csv:7: this row has 2 columns but the header has 3 (from,to,status): '/h,/i'",
        "t.csv:3: to: target variable 'x' is not defined by the pattern '/c'; the pattern "
        "defines no variables",
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'from,to\n/a,"/b"\n',  # a quoted cell: a row may span lines
        b"from,to\r/a,/b\r",  # lone carriage returns end rows
        b"from,to\n/a,/\xff\n",  # not UTF-8: the streaming reader says where
    ],
)
def test_what_bulk_reading_leaves_to_the_streaming_reader(data: bytes) -> None:
    assert _bulk(data) is None


def test_a_file_is_read_in_bulk_with_the_same_result(tmp_path: Path) -> None:
    path = tmp_path / "moves.csv"
    rows = "".join(f"/old/{n},/new/{n},{301 if n % 3 else 302}\n" for n in range(5000))
    path.write_text("from,to,status\n" + rows + "/x/<slug>,/y/{slug},301\n", encoding="utf-8")
    ruleset, errors = load.read_rules(path)
    assert not errors and len(ruleset.rules) == 5001
    assert sum(isinstance(r, PackedRule) for r in ruleset.rules) == 5000
    streamed = load._csv_rules(
        path.read_text().splitlines(keepends=True),
        str(path),
        merge_converters(None),
        None,
        (),
        True,
    )
    assert _seen((ruleset, errors)) == _seen(streamed)
    from waypost.engine import Engine

    engine = Engine(ruleset)
    assert engine.resolve("GET", "/old/7").location == "/new/7"
    assert engine.resolve("GET", "/old/9").status == 302
    assert engine.resolve("GET", "/x/abc").location == "/y/abc"


_BYTES = st.lists(
    st.sampled_from(
        [
            b",",
            b"\n",
            b"\r\n",
            b"\r",
            b"/",
            b"//",
            b"/.",
            b"#",
            b" ",
            b"\t",
            b"%",
            b"<x>",
            b"{x}",
            b"a",
            b"Z",
            b"0",
            b"301",
            b"302",
            b"399",
            b"\x00",
            b"\x1f",
            b"\x1c",
            b"\x0b",
            "\u2028".encode(),
            b"\xff",
            "é".encode(),
            b"http://h.x",
            b"https://",
            b"?",
            b"\\",
            b"|",
            b"~",
            b"from,to,status\n",
            b'"',
        ]
    ),
    max_size=120,
).map(b"".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_BYTES)
def test_random_bytes_read_in_bulk_as_streamed(data: bytes) -> None:
    # Whatever the bytes, the bulk reader either declines (and the streaming reader runs) or
    # gives exactly what the streaming reader gives; the compiled row scanner never crashes.
    data = b"from,to,status\n" + data
    bulk = _bulk(data)
    if bulk is None:
        return
    assert _seen(bulk) == _seen(_streamed(data))
