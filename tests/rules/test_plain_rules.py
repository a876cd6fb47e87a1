"""The loader's shortcut for literal redirects gives exactly what the full build gives.

A million-row CSV table is mostly ``from,to,status`` rows with literal targets, so
``RuleBuilder._plain`` builds those without parsing the target. These tests hold it to the full
path (``parse_target``) for same-site paths and absolute URLs alike.
"""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from waypost import Engine
from waypost.exceptions import RuleSyntaxError
from waypost.rules._build import _PLAIN_URL, RuleBuilder
from waypost.rules.converters import DEFAULT_CONVERTERS
from waypost.rules.load import read_rules
from waypost.rules.target import parse_target

_ALPHABET = string.ascii_letters + string.digits + "/:?#[]@!$&'()*+,;=%._~-{}\\ <>\"^`|é\t"


def _builder() -> RuleBuilder:
    return RuleBuilder({}, DEFAULT_CONVERTERS, "rules.csv")


def _full(entry: dict[str, str]) -> object:
    """The rule's action as the full build makes it (no shortcut)."""
    builder = _builder()
    builder._plain = lambda *args: None  # type: ignore[method-assign]
    rule, errors = builder.build(entry, 0, 2)
    return errors or (rule.action if rule else None)


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "//", ""]),
    host=st.text(alphabet=string.ascii_letters + string.digits + ".-@:{}", max_size=12),
    rest=st.text(alphabet=_ALPHABET, max_size=20),
)
def test_an_absolute_literal_target_builds_as_the_full_path_builds_it(
    scheme: str, host: str, rest: str
) -> None:
    to = scheme + host + rest
    entry = {"from": "/old", "to": to, "status": "302"}
    shortcut, errors = _builder().build(entry, 0, 2)
    expected = _full(entry)
    if errors:
        assert [e.message for e in errors] == [e.message for e in expected]  # type: ignore[attr-defined]
        return
    assert shortcut is not None
    assert shortcut.action == expected
    if _PLAIN_URL.match(to):  # the shortcut took it: exactly what parse_target keeps
        assert parse_target(to).literal == to
        assert isinstance(shortcut._action, str)


def test_the_shortcut_takes_plain_urls_and_leaves_the_rest() -> None:
    taken = [
        "https://people.example.com/m/42",
        "http://example.com",
        "https://example.com:8443/a?b=c#d",
        "https://example.com/a%20b/(x)",
    ]
    for to in taken:
        assert _PLAIN_URL.match(to), to
        assert parse_target(to).literal == to
    left = [
        "https://user@example.com/",  # user info: refused by parse_target
        "https://example.com/{x}",  # a placeholder
        "https://example.com/a b",  # needs encoding
        "https://example.com/caf\u00e9",
        "https://exa\\mple.com/",
        "javascript://example.com/",
        "HTTPS://example.com/",  # legal, but the full path checks it
    ]
    for to in left:
        assert not _PLAIN_URL.match(to), to
    try:
        parse_target("https://user@example.com/")
    except RuleSyntaxError:
        pass
    else:  # pragma: no cover - the premise of the first 'left' case
        raise AssertionError("user info must be refused")


def test_a_csv_table_of_absolute_targets_redirects_and_refuses_as_before(tmp_path: Path) -> None:
    rules = tmp_path / "rules.csv"
    rules.write_text(
        "from,to,status\n"
        "/a,https://people.example.com/m/1,301\n"
        "/b,https://example.com/x?y=1,308\n"
        "/c,ftp://example.com/x,301\n"
        "/d,https://u@example.com/,301\n",
        encoding="utf-8",
    )
    ruleset, errors = read_rules(rules)
    assert [e.line for e in errors] == [4, 5]
    assert "scheme 'ftp'" in errors[0].message
    assert "user info" in errors[1].message
    engine = Engine(ruleset)
    decision = engine.resolve("GET", "/a?utm=1")
    assert (decision.status, decision.location) == (301, "https://people.example.com/m/1?utm=1")
    decision = engine.resolve("GET", "/b?z=2")
    assert (decision.status, decision.location) == (308, "https://example.com/x?y=1&z=2")
