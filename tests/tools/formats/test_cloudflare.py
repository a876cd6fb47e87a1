"""Cloudflare: the Pages ``_redirects`` dialect and the precedence of Bulk Redirects lists,
judged by what the imported rules answer (issue #14)."""

from __future__ import annotations

import pytest

from waypost.engine import Engine
from waypost.rules.load import parse_rules
from waypost.rules.request import Request
from waypost.tools.formats import (
    IMPORTERS,
    ImportResult,
    export_cloudflare,
    export_yaml,
    parse_cloudflare,
)
from waypost.tools.formats.cloudflare_pages import parse_cloudflare_pages


def engine_of(result: ImportResult) -> Engine:
    exported = export_yaml(result.rules, result.defaults or None)
    ruleset, errors = parse_rules(exported.text, format="yaml", file="imported.yaml")
    assert not errors, errors
    return Engine(ruleset)


def answer(result: ImportResult, url: str) -> str:
    decision = engine_of(result).resolve(Request.from_url("GET", url))
    text = decision.describe(detail=False)
    return "pass" if text.startswith("pass") else text


def skipped(result: ImportResult) -> dict[int, str]:
    return {skip.line: skip.reason for skip in result.skipped}


# -- Cloudflare Pages _redirects -----------------------------------------------------------------


def test_pages_is_registered_and_orders_first_match() -> None:
    result = IMPORTERS["cloudflare-pages"]("/a /b\n")
    assert result.format == "cloudflare-pages"
    assert result.defaults == {"order": "first_match"}


PAGES = [
    pytest.param("/a /b", "/a", "redirect 302 /b", id="302-by-default"),
    pytest.param("/a /b 301 # why", "/a", "redirect 301 /b", id="inline-comment"),
    pytest.param("/a /b #", "/a", "redirect 302 /b", id="bare-hash-comment"),
    pytest.param("/a /b#frag 308", "/a", "redirect 308 /b#frag", id="fragment-kept"),
    pytest.param("/a /b 200", "/a", "rewrite /b", id="200-is-a-rewrite"),
    pytest.param("/a /b?x=1 200", "/a", "rewrite /b", id="rewrite-serves-the-path"),
    pytest.param("/a /b", "/a/", "pass", id="trailing-slash-is-exact"),
    pytest.param("/a /b", "/A", "pass", id="case-sensitive"),
    pytest.param("/x/* /y/:splat", "/x/1/2", "redirect 302 /y/1/2", id="splat"),
    pytest.param("/x/* /:splat/new", "/x/", "redirect 302 /new", id="empty-splat-squeezed"),
    pytest.param("/p* /n:splat", "/pfoo/bar", "redirect 302 /nfoo/bar", id="partial-splat"),
    pytest.param("/p:id /n:id", "/pfoo", "redirect 302 /nfoo", id="partial-placeholder"),
    pytest.param("/p:id /n:id", "/pfoo/", "pass", id="placeholder-one-segment"),
    pytest.param("/b/:c/:n /:n/:c", "/b/1/two", "redirect 302 /two/1", id="placeholders"),
    pytest.param("/a /x:other 302", "/a", "redirect 302 /x:other", id="unknown-name-literal"),
    pytest.param("/c?q=1 /d", "/c", "redirect 302 /d", id="query-in-from-ignored"),
    pytest.param("yeah.com /d", "/yeah.com", "redirect 302 /d", id="slash-added"),
    pytest.param("/some%20page /x", "/some%20page", "redirect 302 /x", id="encoded-from"),
]


@pytest.mark.parametrize(("text", "url", "expect"), PAGES)
def test_pages_answers_as_cloudflare(text: str, url: str, expect: str) -> None:
    result = parse_cloudflare_pages(text + "\n")
    assert not result.skipped, result.skipped
    assert answer(result, url) == expect


def test_pages_first_line_wins_over_a_more_specific_later_one() -> None:
    result = parse_cloudflare_pages("/s/* /one/:splat\n/s/foo/* /two\n/s/foo/bar /three\n")
    assert answer(result, "/s/foo/bar") == "redirect 302 /one/foo/bar"


def test_pages_a_splat_is_two_rules_of_one_line() -> None:
    result = parse_cloudflare_pages("\n/x/* /y 301\n")
    assert [rule["from"] for rule in result.rules] == ["/x/", "/x/<path:splat>"]
    assert result.lines == [2, 2]


def test_pages_double_slash_never_makes_a_protocol_relative_location() -> None:
    result = parse_cloudflare_pages("/foo/* /:splat\n")
    # The engine sends '//' to the path's normal form first; the rule then answers that.
    assert answer(result, "/foo//google.com") == "redirect 308 /foo/google.com"
    assert answer(result, "/foo/google.com") == "redirect 302 /google.com"


REFUSED = [
    pytest.param("/c", "expected 2 or 3", id="one-token"),
    pytest.param("/d /e 302 !important", "got 4", id="four-tokens"),
    pytest.param("/a /b 418", "valid statuses", id="status-418"),
    pytest.param("/a /b 301!", "valid statuses", id="no-force"),
    pytest.param("/a /b 404", "valid statuses", id="no-error-status"),
    pytest.param("https://yeah.com https://nah.com", "only relative paths", id="absolute-from"),
    pytest.param("/a https://example.com/b 200", "does not proxy", id="200-to-another-origin"),
    pytest.param("/a http://example.com/b", "https:// URL", id="http-target"),
    pytest.param("/a/* /b/:splat/*", None, id="accepted-control"),
    pytest.param("/* /index.html", "would loop", id="wildcard-to-index"),
    pytest.param("/:a/:a /b", "twice", id="name-twice"),
    pytest.param("/:a-:b /x", "longest value", id="greedy-split"),
    pytest.param("/a%2Fb /x", "encoded slash", id="encoded-slash"),
    pytest.param("/" + "a" * 2000 + " /b", "2000 characters", id="line-too-long"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_pages_refuses_what_cloudflare_refuses(text: str, reason: str | None) -> None:
    result = parse_cloudflare_pages(text + "\n")
    if reason is None:
        assert not result.skipped
        return
    assert not result.rules
    assert reason in skipped(result)[1]


def test_pages_duplicate_from_refuses_the_later_line() -> None:
    result = parse_cloudflare_pages("/a /b\n/b /a\n/a /c\n")
    assert "came earlier" in skipped(result)[3]
    assert answer(result, "/a") == "redirect 302 /b"


def test_pages_limits_dynamic_rules() -> None:
    lines = [f"/d{n}/* /x" for n in range(101)] + ["/static /y"]
    result = parse_cloudflare_pages("\n".join(lines) + "\n")
    assert sorted(skipped(result)) == [101, 102]
    assert "at most 100" in skipped(result)[102]


# -- Cloudflare Bulk Redirects: the list is a set, ordered by Cloudflare's precedence -------------


BULK = [
    pytest.param(
        "example.com/p,https://t/any,301,FALSE,TRUE,FALSE,FALSE\n"
        "foo.example.com/p,https://t/exact,301,FALSE,FALSE,FALSE,FALSE\n",
        [("http://foo.example.com/p", "exact"), ("http://bar.example.com/p", "any")],
        id="exact-host-beats-include-subdomains",
    ),
    pytest.param(
        "bar.com/p,https://t/bar,301,FALSE,TRUE,FALSE,FALSE\n"
        "foo.bar.com/p,https://t/foo-bar,301,FALSE,TRUE,FALSE,FALSE\n",
        [("http://qux.foo.bar.com/p", "foo-bar"), ("http://qux.bar.com/p", "bar")],
        id="most-specific-domain",
    ),
    pytest.param(
        "example.com/a,https://t/a,301,FALSE,FALSE,TRUE,FALSE\n"
        "example.com/a/b,https://t/ab,301,FALSE,FALSE,TRUE,FALSE\n",
        [("http://example.com/a/b/c", "ab"), ("http://example.com/a/c", "a")],
        id="most-specific-subpath",
    ),
    pytest.param(
        "example.com/a/b,https://t/ab,301,FALSE,TRUE,FALSE,FALSE\n"
        "example.com/a,https://t/a,301,FALSE,FALSE,TRUE,FALSE\n",
        [("http://x.example.com/a/b", "ab")],
        id="subpath-listed-first-still-loses",
    ),
]


@pytest.mark.parametrize(("text", "asks"), BULK)
def test_bulk_answers_by_cloudflare_precedence(text: str, asks: list[tuple[str, str]]) -> None:
    result = parse_cloudflare(text)
    assert result.defaults == {"order": "first_match"}
    assert not result.skipped
    for url, target in asks:
        assert answer(result, url) == f"redirect 301 https://t/{target}", url


def test_bulk_a_scheme_beats_no_scheme_for_its_own_scheme_only() -> None:
    result = parse_cloudflare(
        "example.com/x,https://t/any,301,FALSE,FALSE,FALSE,FALSE\n"
        "http://example.com/x,https://t/http,301,FALSE,FALSE,FALSE,FALSE\n"
    )
    assert result.skipped == []
    assert result.rules[0]["when"] == {"host": "example.com", "scheme": "http"}
    assert answer(result, "http://example.com/x") == "redirect 301 https://t/http"
    assert answer(result, "https://example.com/x") == "redirect 301 https://t/any"


def test_bulk_a_lone_scheme_line_keeps_its_scheme() -> None:
    result = parse_cloudflare("https://example.com/x,https://t/y,301\n")
    assert result.rules[0]["when"] == {"host": "example.com", "scheme": "https"}
    assert answer(result, "https://example.com/x") == "redirect 301 https://t/y"
    assert answer(result, "http://example.com/x") == "pass"


def test_bulk_the_usual_http_https_pair_is_one_rule() -> None:
    result = parse_cloudflare(
        "http://example.com/x,https://t/y,301\nhttps://example.com/x,https://t/y,301\n"
    )
    assert len(result.rules) == 1 and "scheme" not in result.rules[0]["when"]
    assert "same rule as line 1" in skipped(result)[2]
    assert "line 2 gives the same redirect for https" in result.notes[0].message


def test_bulk_a_pair_that_differs_keeps_both_schemes() -> None:
    result = parse_cloudflare(
        "http://example.com/x,https://t/a,301\nhttps://example.com/x,https://t/b,302\n"
    )
    assert result.skipped == []
    assert [rule["when"]["scheme"] for rule in result.rules] == ["http", "https"]
    assert answer(result, "http://example.com/x") == "redirect 301 https://t/a"
    assert answer(result, "https://example.com/x") == "redirect 302 https://t/b"


def test_bulk_another_scheme_is_refused() -> None:
    result = parse_cloudflare("ftp://example.com/x,https://t/y,301\n")
    assert "neither http nor https" in skipped(result)[1]


def test_bulk_a_source_url_twice_is_refused() -> None:
    result = parse_cloudflare("example.com/x,https://t/1,301\nexample.com/x,https://t/2,302\n")
    assert "Cloudflare refuses a list" in skipped(result)[2]
    assert answer(result, "http://example.com/x") == "redirect 301 https://t/1"


# -- the Bulk exporter: no order of its own, one redirect per source URL --------------------------


def test_bulk_export_reports_a_rule_cloudflare_would_put_first() -> None:
    rules = [
        {"from": "/p", "to": "https://t/any", "when": {"host": ["example.com", "*.example.com"]}},
        {"from": "/p", "to": "https://t/exact", "when": {"host": "foo.example.com"}},
    ]
    exported = export_cloudflare(rules, {"order": "first_match"})
    assert [item.index for item in exported.unsupported] == [1]
    assert "before rule 1" in exported.unsupported[0].reason
    assert "foo.example.com" not in exported.text


def test_bulk_export_keeps_what_cloudflare_orders_alike() -> None:
    rules = [
        {"from": "/p", "to": "https://t/exact", "when": {"host": "foo.example.com"}},
        {"from": "/p", "to": "https://t/any", "when": {"host": ["example.com", "*.example.com"]}},
    ]
    exported = export_cloudflare(rules, {"order": "first_match"})
    assert not exported.unsupported
    assert answer(parse_cloudflare(exported.text), "http://foo.example.com/p").endswith("exact")


def test_bulk_export_writes_one_redirect_per_source_url() -> None:
    rules = [
        {"from": "/x", "to": "https://t/1", "trailing_slash": "strict"},
        {"from": "/x", "to": "https://t/2", "trailing_slash": "strict"},
    ]
    exported = export_cloudflare(rules, {"order": "first_match"}, host="example.com")
    assert [item.index for item in exported.unsupported] == [1]
    assert "one redirect per source URL" in exported.unsupported[0].reason


# -- the Bulk exporter: a rule for one scheme is a source URL with that scheme --------------------

SCHEMED = [
    {
        "from": "/x",
        "to": "https://t/http",
        "status": 301,
        "trailing_slash": "strict",
        "query": "drop",
        "when": {"host": "example.com", "scheme": "http"},
    },
    {
        "from": "/x",
        "to": "https://t/any",
        "status": 301,
        "trailing_slash": "strict",
        "query": "drop",
        "when": {"host": "example.com"},
    },
]


def test_bulk_export_writes_the_scheme_into_the_source_url() -> None:
    exported = export_cloudflare(SCHEMED, {"order": "first_match"})
    assert exported.unsupported == []
    assert exported.text.splitlines()[0].startswith("http://example.com/x,")
    back = parse_cloudflare(exported.text)
    assert back.rules == SCHEMED
    both = {**SCHEMED[0], "when": {"host": "example.com", "scheme": ["http", "https"]}}
    assert export_cloudflare([both]).text.startswith("example.com/x,")


def test_bulk_export_reports_a_scheme_rule_waypost_would_try_later() -> None:
    # Waypost applies the rule for both schemes first; Cloudflare, the http one on http.
    exported = export_cloudflare(SCHEMED[::-1], {"order": "first_match"})
    assert [item.index for item in exported.unsupported] == [1]
    assert "Cloudflare would apply it before rule 1" in exported.unsupported[0].reason
    # One rule per scheme: no request matches both, so no conflict either way.
    https = {**SCHEMED[1], "when": {"host": "example.com", "scheme": "https"}}
    assert export_cloudflare([https, SCHEMED[0]], {"order": "first_match"}).unsupported == []
