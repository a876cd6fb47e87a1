"""The Netlify importers read what Netlify's own parser reads, refuse what it refuses, and keep
its first-match order. (Netlify's own parser tests run as the conformance suite; these pin the
readings down one at a time.)"""

from __future__ import annotations

from typing import Any

import pytest

from waypost.engine import Engine
from waypost.tools.formats import EXPORTERS, IMPORTERS


def one_rule(fmt: str, text: str) -> dict[str, Any]:
    result = IMPORTERS[fmt](text)
    assert result.skipped == [], result.summary()
    (rule,) = result.rules
    return rule


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (
            "/a /b # moved in 2019",
            {"from": "/a", "to": "/b", "status": 301, "only_if_missing": True},
        ),
        (
            "/a /b#part 302! # a fragment is not a comment",
            {"from": "/a", "to": "/b#part", "status": 302},
        ),
        (
            "/admin/* 200!",
            {"from": "/admin/<path:splat>", "rewrite": "/admin/{splat}"},
        ),
        (
            "/a /b 302 Language=de,fr",
            {
                "from": "/a",
                "to": "/b",
                "status": 302,
                "only_if_missing": True,
                "when": {"language": ["de", "fr"]},
            },
        ),
    ],
    ids=["inline-comment", "fragment", "forward-rule", "language"],
)
def test_redirects_line_reads_as_netlify_reads_it(line: str, rule: dict[str, Any]) -> None:
    assert one_rule("netlify", line + "\n") == rule


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("http:// /to", "invalid URL 'http://': it has no host"),
        ("/.netlify/functions/x /y", "sources must not start with '/.netlify'"),
        ("https://example.com/.netlify/x /y", "sources must not start with '/.netlify'"),
        ("/a b.html", "the destination must start with '/' or be a URL; found 'b.html'"),
        ("/a", "missing destination: the line has only a source"),
        ("/a 301", "missing 'to': only a 200 rule whose path ends in '/*' may omit it"),
        ("/a /b Language=de", "invalid status code 'Language=de'"),
        ("/a /b not_a_status", "invalid status code 'not_a_status'"),
        ("/a /b 302 Country=us", "the Netlify condition Country=us (the visitor's country)"),
        ("/api/* https://api.example.com/:splat 200! Sign=KEY", "Netlify signs the proxied"),
    ],
    ids=[
        "url-without-host",
        "dot-netlify-path",
        "dot-netlify-url",
        "destination-not-a-path",
        "no-destination",
        "no-to-not-forward",
        "condition-before-status",
        "bad-status",
        "country",
        "signed-proxy",
    ],
)
def test_redirects_line_refused_with_its_reason(line: str, reason: str) -> None:
    result = IMPORTERS["netlify"](f"/ok /fine\n{line}\n")
    assert len(result.rules) == 1  # the good line is kept
    (skip,) = result.skipped
    assert (skip.line, skip.reason[: len(reason)]) == (2, reason)


def test_signed_redirect_is_kept_with_a_note() -> None:
    result = IMPORTERS["netlify"]("/a /b 301! Sign=API_KEY\n/c /d 301! signed=API_KEY\n")
    assert [rule["to"] for rule in result.rules] == ["/b", "/d"]
    assert [note.message for note in result.notes] == [
        "Netlify signs only proxied requests; 'signed = API_KEY' does nothing here"
    ] * 2


@pytest.mark.parametrize("fmt", ["netlify", "netlify-toml"])
def test_first_matching_line_wins(fmt: str) -> None:
    text = (
        "/one /two\n/one /four\n/splat/* /first\n/splat/foo/* /second\n"
        if fmt == "netlify"
        else '[[redirects]]\nfrom = "/one"\nto = "/two"\n'
        '[[redirects]]\nfrom = "/one"\nto = "/four"\n'
        '[[redirects]]\nfrom = "/splat/*"\nto = "/first"\n'
        '[[redirects]]\nfrom = "/splat/foo/*"\nto = "/second"\n'
    )
    result = IMPORTERS[fmt](text)
    assert result.defaults == {"order": "first_match"}
    engine = Engine(result.rules, defaults=result.defaults)
    assert engine.resolve("GET", "/one").location == "/two"
    assert engine.resolve("GET", "/splat/foo/x").location == "/first"


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ('origin = "/a"\nto = "/b"', {"from": "/a", "to": "/b", "status": 301}),
        ('from = "/a"\ndestination = "/b"', {"from": "/a", "to": "/b", "status": 301}),
        ('from = "/a"\norigin = "/z"\nto = "/b"', {"from": "/a", "to": "/b", "status": 301}),
        (
            'from = "/a"\nto = "/b"\n[redirects.params]\nk = ":k"',
            {
                "from": "/a",
                "to": "/b",
                "status": 301,
                "query": "drop",
                "when": {"query": {"k": "*"}},
            },
        ),
        (
            'from = "/a"\nto = "/b"\n[redirects.parameters]\nk = "v"',
            {
                "from": "/a",
                "to": "/b",
                "status": 301,
                "query": "drop",
                "when": {"query": {"k": "v"}},
            },
        ),
        ('from = "/a"\nto = "/b"\nstatus = "302"', {"from": "/a", "to": "/b", "status": 302}),
        ('from = "/a/*"\nstatus = 200', {"from": "/a/<path:splat>", "rewrite": "/a/{splat}"}),
        (
            'from = "/a"\nto = "/b"\nstatus = 200\nheaders = {X-From = "Netlify"}',
            {"from": "/a", "rewrite": "/b", "set_headers": {"X-From": "Netlify"}},
        ),
    ],
    ids=[
        "origin",
        "destination",
        "from-wins-over-origin",
        "params",
        "parameters",
        "status-string",
        "forward-rule",
        "rewrite-headers",
    ],
)
def test_toml_entry_reads_as_netlify_reads_it(entry: str, rule: dict[str, Any]) -> None:
    assert one_rule("netlify-toml", f"[[redirects]]\nforce = true\n{entry}\n") == rule


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('[redirects]\nfrom = "/a"\nto = "/b"\n', 1, "'redirects' must be an array of tables"),
        ('redirects = ["/a"]\n', 1, "each redirect must be a table"),
        ('[[redirects]]\nto = "/b"\n', 1, "missing 'from'"),
        ('[[redirects]]\nfrom = "/a"\n', 2, "missing 'to'"),
        ('[[redirects]]\nfrom = "/a"\nto = "/b"\nstatus = ""\n', 2, "invalid status code ''"),
        ('[[redirects]]\nfrom = "http://"\nto = "/b"\n', 2, "invalid URL 'http://'"),
        ('[[redirects]]\nfrom = "old"\nto = "new"\n', 2, "the source 'old' is neither a path"),
        (
            '[[redirects]]\nfrom = "/a"\nto = "/b"\n[[redirects.headers]]\nk = "v"\n',
            2,
            "'headers' must be an object",
        ),
        (
            '[[redirects]]\nfrom = "/a"\nto = "/b"\n[redirects.rate_limit]\nwindow_limit = 4\n',
            2,
            "Netlify's rate limiting ('rate_limit') has no Waypost equivalent",
        ),
    ],
    ids=[
        "table-not-array",
        "entry-not-table",
        "no-from",
        "no-to",
        "empty-status",
        "url-without-host",
        "no-leading-slash",
        "headers-array",
        "rate-limit",
    ],
)
def test_toml_entry_refused_with_its_line_and_reason(text: str, line: int, reason: str) -> None:
    result = IMPORTERS["netlify-toml"](text)
    assert result.rules == []
    (skip,) = result.skipped
    assert (skip.line, skip.reason[: len(reason)]) == (line, reason)


def test_toml_lines_follow_each_entry_even_without_from() -> None:
    text = '[[redirects]]\nto = "/x"\n\n[[redirects]]\n  origin = "/a"\n  to = "/b"\n'
    result = IMPORTERS["netlify-toml"](text)
    assert [skip.line for skip in result.skipped] == [1]
    assert result.rules[0]["from"] == "/a"


def test_a_200_to_a_url_proxies_there_and_lists_its_host() -> None:
    text = (
        "/api/* https://api.example.com/v1/:splat 200!\n"
        "/search q=:q https://search.example.com/find 200!\n"
        "/go/:site https://:site.example.com/ 200!\n"
    )
    result = IMPORTERS["netlify"](text)
    assert result.rules == [
        {"from": "/api/<path:splat>", "rewrite": "https://api.example.com/v1/{splat}"},
        {
            "from": "/search",
            "rewrite": "https://search.example.com/find",
            "query": "drop",
            "when": {"query": {"q": "*"}},
        },
    ]
    assert result.proxy_hosts == ["api.example.com", "search.example.com"]
    assert [(skip.line, skip.reason) for skip in result.skipped] == [
        (3, "the proxy target 'https://:site.example.com/' takes its host from the request")
    ]


# -- the scheme of a full-URL source --------------------------------------------------------------


def _decide(result: Any, url: str) -> str:
    engine = Engine(result.rules, defaults=result.defaults or None)
    text = engine.resolve("GET", url).describe(detail=False)
    return "pass" if text.startswith("pass") else text


@pytest.mark.parametrize("fmt", ["netlify", "netlify-toml"])
def test_a_lone_full_url_source_applies_to_its_scheme_only(fmt: str) -> None:
    text = (
        "http://old.example.com/* https://new.example.com/:splat 301!\n"
        if fmt == "netlify"
        else '[[redirects]]\nfrom = "http://old.example.com/*"\n'
        'to = "https://new.example.com/:splat"\nforce = true\n'
    )
    rule = one_rule(fmt, text)
    assert rule["when"] == {"host": "old.example.com", "scheme": "http"}
    result = IMPORTERS[fmt](text)
    assert _decide(result, "http://old.example.com/a") == "redirect 301 https://new.example.com/a"
    assert _decide(result, "https://old.example.com/a") == "pass"


def test_the_http_https_pair_in_a_row_is_one_rule_for_both() -> None:
    result = IMPORTERS["netlify"](
        "http://old.example.com/* https://new.example.com/:splat 301!\n"
        "https://old.example.com/* https://new.example.com/:splat 301!\n"
    )
    assert [rule["when"] for rule in result.rules] == [{"host": "old.example.com"}]
    assert [
        (skip.line, "once the scheme is dropped" in skip.reason) for skip in result.skipped
    ] == [(2, True)]


def test_a_pair_apart_or_unlike_keeps_each_scheme() -> None:
    # Line 2 answers https first (Netlify applies the first matching line): lines 1 and 3 are
    # not one rule for both schemes.
    text = (
        "http://old.example.com/x /one 301!\n"
        "https://old.example.com/* /two 301!\n"
        "https://old.example.com/x /one 301!\n"
        "http://old.example.com/y /a 301!\n"
        "https://old.example.com/y /b 301!\n"
    )
    result = IMPORTERS["netlify"](text)
    assert result.skipped == []
    schemes = [rule["when"]["scheme"] for rule in result.rules]
    assert schemes == ["http", "https", "https", "http", "https"]
    assert _decide(result, "https://old.example.com/x") == "redirect 301 /two"
    assert _decide(result, "http://old.example.com/x") == "redirect 301 /one"
    assert _decide(result, "http://old.example.com/y") == "redirect 301 /a"


def test_the_export_writes_a_line_per_scheme_and_needs_a_host_for_one() -> None:
    rule = {"from": "/x", "to": "/y", "when": {"host": "a.example.com", "scheme": "http"}}
    exported = EXPORTERS["netlify"]([rule])
    assert exported.text.splitlines()[1:] == ["http://a.example.com/x /y 301!"]
    assert IMPORTERS["netlify"](exported.text).rules == [{**rule, "status": 301}]
    hostless = EXPORTERS["netlify"]([{"from": "/x", "to": "/y", "when": {"scheme": "https"}}])
    assert "full URL source" in hostless.unsupported[0].reason
    both = {**rule, "when": {"host": "a.example.com", "scheme": ["http", "https"]}}
    assert len(EXPORTERS["netlify"]([both]).text.splitlines()) == 3
