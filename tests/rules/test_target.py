"""Targets: {name} placeholders filled in URL form and percent-encoded; literal safety at load."""

from __future__ import annotations

from typing import Any

import pytest

from waypost import Engine, RulesError, RuleSyntaxError
from waypost.rules.target import Placeholder, parse_target


@pytest.mark.parametrize(
    ("text", "absolute", "scheme", "host", "literal"),
    [
        ("/new", False, None, None, "/new"),
        ("/a/{x}", False, None, None, None),
        ("https://Docs.Example.com/{rest}", True, "https", "docs.example.com", None),
        ("HTTP://example.com", True, "http", "example.com", "HTTP://example.com"),
        ("https://{sub}.example.org/", True, "https", None, None),
        ("/set/{{literal}}", False, None, None, "/set/%7Bliteral%7D"),
        ("/caf\u00e9 bar", False, None, None, "/caf%C3%A9%20bar"),
        ("/already%20encoded", False, None, None, "/already%20encoded"),
    ],
    ids=[
        "path",
        "path-with-placeholder",
        "absolute-host-lowercased",
        "absolute-literal",
        "host-placeholder",
        "brace-escapes",
        "literal-encoded",
        "escapes-kept",
    ],
)
def test_parse_target(
    text: str, absolute: bool, scheme: str | None, host: str | None, literal: str | None
) -> None:
    target = parse_target(text)
    assert (target.absolute, target.scheme, target.host, target.literal) == (
        absolute,
        scheme,
        host,
        literal,
    )


def test_each_placeholder_knows_its_url_part() -> None:
    target = parse_target("https://{h}.example.org/{p}?q={q}#{f}")
    parts = {p.name: p.part for p in target.pieces if isinstance(p, Placeholder)}
    assert parts == {"h": "authority", "p": "path", "q": "query", "f": "fragment"}
    assert target.names == ("h", "p", "q", "f")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("javascript:alert(1)", "scheme 'javascript'; only http and https"),
        ("ftp://example.com/x", "scheme 'ftp'"),
        ("data:text/html,hi", "scheme 'data'"),
        ("//evil.com/x", "protocol-relative"),
        ("/\\evil.com", "protocol-relative"),
        ("\\\\evil.com", "protocol-relative"),
        ("https:evil.com", "has no host"),
        ("https:///path", "empty host"),
        ("https://user@example.com/", "user info"),
        ("new-page", "did you mean '/new-page'?"),
        ("/a/{x", "unbalanced '{'"),
        ("/a/x}", "unbalanced '}'"),
        ("/a/{1x}", "is not a variable name"),
        ("/a\r\nSet-Cookie: x", "control character"),
    ],
    ids=[
        "javascript-scheme",
        "ftp-scheme",
        "data-scheme",
        "protocol-relative",
        "slash-backslash",
        "double-backslash",
        "no-slashes-after-scheme",
        "empty-host",
        "userinfo",
        "relative-without-slash",
        "unbalanced-open-brace",
        "unbalanced-close-brace",
        "bad-placeholder",
        "crlf",
    ],
)
def test_parse_target_refuses(text: str, words: str) -> None:
    with pytest.raises(RuleSyntaxError, match=None) as caught:
        parse_target(text)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("rule", "url", "location"),
    [
        ({"from": "/a/<int:n>", "to": "/b/{n}"}, "/a/05", "/b/5"),
        ({"from": "/a/<float:x>", "to": "/b/{x}"}, "/a/1.50", "/b/1.5"),
        ({"from": "/a/<w>", "to": "/b/{w}"}, "/a/caf%C3%A9", "/b/caf%C3%A9"),
        ({"from": "/a/<w>", "to": "/b/{w}"}, "/a/x%3Fy%23z", "/b/x%3Fy%23z"),
        ({"from": "/a/<w>", "to": "/b/{w}"}, "/a/a%20b", "/b/a%20b"),
        ({"from": "/a/<path:p>", "to": "/b/{p}"}, "/a/x/y%20z", "/b/x/y%20z"),
        ({"from": "/a/<w>", "to": "/s?q={w}"}, "/a/x%26y%3Dz", "/s?q=x%26y%3Dz"),
        ({"from": "/a/<path:p>", "to": "/s?q={p}"}, "/a/x/y", "/s?q=x/y"),
        ({"from": "/a/<w>", "to": "/b#{w}"}, "/a/x%20y", "/b#x%20y"),
        ({"from": "/a/<w>", "to": "/b/{{{w}}}"}, "/a/x", "/b/%7Bx%7D"),
        ({"from": "/a/<w>", "to": "https://example.com/{w}"}, "/a/x", "https://example.com/x"),
        ({"from": "/<any(de,en):l>/<w>", "to": "/{w}/{l}"}, "/de/x", "/x/de"),
        ({"from": "/a/<w>", "to": "/b/{w}"}, "/a/%FF", "/b/%FF"),
    ],
    ids=[
        "int-as-5-not-05",
        "float-normalised",
        "non-ascii-encoded",
        "reserved-encoded-in-path",
        "space-encoded",
        "path-value-keeps-slashes",
        "query-value-encodes-separators",
        "query-value-keeps-slash",
        "fragment-value",
        "escaped-braces-around-value",
        "absolute-target",
        "reordered",
        "invalid-utf8-round-trips",
    ],
)
def test_a_target_is_filled_in_url_form(rule: dict[str, Any], url: str, location: str) -> None:
    decision = Engine([rule]).resolve("GET", url)
    assert (decision.action, decision.location) == ("redirect", location)


def test_a_literal_brace_escape_in_a_literal_target() -> None:
    decision = Engine([{"from": "/a", "to": "/b/{{x}}"}]).resolve("GET", "/a")
    assert decision.location == "/b/%7Bx%7D"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("javascript:alert(1)", "only http and https targets are allowed"),
        ("mailto:someone@example.com", "scheme 'mailto'"),
        ("//evil.com", "protocol-relative"),
        ("/\\evil.com", "protocol-relative"),
    ],
    ids=["javascript", "mailto", "protocol-relative", "slash-backslash"],
)
def test_unsafe_literal_targets_are_refused_at_load(target: str, words: str) -> None:
    with pytest.raises(RulesError) as caught:
        Engine([{"from": "/a", "to": target}])
    (error,) = caught.value.errors
    assert words in error.message
    assert repr(target) in error.message


def test_a_rewrite_target_on_another_site_needs_its_host_in_proxy_hosts() -> None:
    with pytest.raises(RulesError, match="lists no proxy_hosts"):
        Engine([{"from": "/a", "rewrite": "https://example.com/b"}])
