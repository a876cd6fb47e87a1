"""Conditions under ``when:``: every one listed must hold; ``not:`` holds when none of its do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from waypost import Engine, RulesError
from waypost.rules.request import Request

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def applies(
    when: dict[str, Any],
    *,
    method: str = "GET",
    url: str = "/x",
    headers: dict[str, str] | None = None,
    client_ip: str | None = None,
    now: datetime = NOW,
) -> bool:
    """Whether a rule on /x with ``when`` applies to the request."""
    engine = Engine([{"from": "/x", "respond": 204, "when": when}])
    decision = engine.resolve(method, url, headers, client_ip, now=now)
    return decision.action == "respond"


@pytest.mark.parametrize(
    ("when", "method", "expected"),
    [
        ({"methods": ["GET"]}, "GET", True),
        ({"methods": ["GET"]}, "HEAD", True),
        ({"methods": ["get"]}, "get", True),
        ({"methods": ["GET"]}, "POST", False),
        ({"methods": "POST"}, "POST", True),
        ({"methods": ["POST"]}, "HEAD", False),
    ],
    ids=["get", "get-implies-head", "case-insensitive", "other-method", "single-string", "no-head"],
)
def test_methods(when: dict[str, Any], method: str, expected: bool) -> None:
    assert applies(when, method=method) is expected


@pytest.mark.parametrize(
    ("host", "url", "headers", "expected"),
    [
        ("shop.example.com", "/x", {"Host": "shop.example.com"}, True),
        ("shop.example.com", "/x", {"Host": "SHOP.example.com:8443"}, True),
        ("shop.example.com", "https://shop.example.com/x", None, True),
        ("shop.example.com", "/x", {"Host": "example.com"}, False),
        ("*.example.com", "/x", {"Host": "a.b.example.com"}, True),
        ("*.example.com", "/x", {"Host": "example.com"}, False),
        ("*.example.com", "/x", {"Host": "evilexample.com"}, False),
        (["a.com", "b.com"], "/x", {"Host": "b.com"}, True),
        ("shop.example.com", "/x", None, False),
    ],
    ids=[
        "exact",
        "case-and-port-ignored",
        "host-from-absolute-url",
        "other-host",
        "wildcard-subdomain",
        "wildcard-not-apex",
        "wildcard-not-suffix",
        "list",
        "no-host",
    ],
)
def test_host(host: Any, url: str, headers: dict[str, str] | None, expected: bool) -> None:
    assert applies({"host": host}, url=url, headers=headers) is expected


@pytest.mark.parametrize(
    ("query", "url", "expected"),
    [
        ({"ref": "mail"}, "/x?ref=mail", True),
        ({"ref": "mail"}, "/x?ref=web", False),
        ({"ref": "mail"}, "/x?a=1&ref=mail", True),
        ({"ref": "a b"}, "/x?ref=a+b", True),
        ({"ref": "*"}, "/x?ref=", True),
        ({"ref": "*"}, "/x", False),
        ({"ref": None}, "/x", True),
        ({"ref": None}, "/x?ref=1", False),
        ({"ref": ["a", "b"]}, "/x?ref=b", True),
        ({"ref": ["a", "b"]}, "/x?ref=c", False),
        ({"page": 2}, "/x?page=2", True),
    ],
    ids=[
        "exact",
        "other-value",
        "among-others",
        "plus-is-space",
        "star-present-even-blank",
        "star-absent",
        "null-absent",
        "null-present",
        "list-match",
        "list-miss",
        "number-as-text",
    ],
)
def test_query(query: dict[str, Any], url: str, expected: bool) -> None:
    assert applies({"query": query}, url=url) is expected


@pytest.mark.parametrize(
    ("when", "headers", "expected"),
    [
        ({"headers": {"X-Beta": "1"}}, {"x-beta": "1"}, True),
        ({"headers": {"x-beta": "1"}}, {"X-BETA": "1"}, True),
        ({"headers": {"X-Beta": "1"}}, {"X-Beta": "0"}, False),
        ({"headers": {"X-Beta": "*"}}, {"X-Beta": ""}, True),
        ({"headers": {"X-Beta": None}}, {}, True),
        ({"cookies": {"beta": "yes"}}, {"Cookie": "a=1; beta=yes"}, True),
        ({"cookies": {"beta": "yes"}}, {"Cookie": 'beta="yes"'}, True),
        ({"cookies": {"beta": "yes"}}, {"Cookie": "beta=no"}, False),
        ({"cookies": {"beta": "*"}}, {}, False),
        ({"cookies": {"beta": None}}, {"Cookie": "other=1"}, True),
        ({"cookies": {"Beta": "yes"}}, {"Cookie": "beta=yes"}, False),
    ],
    ids=[
        "header-exact",
        "header-names-case-insensitive",
        "header-other-value",
        "header-present",
        "header-absent",
        "cookie-exact",
        "cookie-quoted",
        "cookie-other-value",
        "cookie-star-absent",
        "cookie-null",
        "cookie-names-case-sensitive",
    ],
)
def test_headers_and_cookies(when: dict[str, Any], headers: dict[str, str], expected: bool) -> None:
    assert applies(when, headers=headers) is expected


@pytest.mark.parametrize(
    ("accept", "header", "expected"),
    [
        ("html", BROWSER, True),
        ("json", BROWSER, False),
        ("json", "*/*", True),
        ("html", "*/*", False),
        ("json", "application/json", True),
        ("json", "application/problem+json", True),
        ("html", "application/json, text/html;q=0.5", False),
        ("html", "text/html;q=0.5, application/json;q=0.5", True),
        ("json", None, True),
    ],
    ids=[
        "browser-is-html",
        "browser-is-not-json",
        "curl-is-json",
        "curl-is-not-html",
        "api-client",
        "json-suffix",
        "json-preferred",
        "tie-goes-to-html",
        "no-accept-is-json",
    ],
)
def test_accept(accept: str, header: str | None, expected: bool) -> None:
    headers = {"Accept": header} if header is not None else None
    assert applies({"accept": accept}, headers=headers) is expected


@pytest.mark.parametrize(
    ("language", "header", "expected"),
    [
        ("de", "de", True),
        ("de", "de-AT,de;q=0.9,en;q=0.5", True),
        ("de", "en-GB,en;q=0.9,de;q=0.8", False),
        ("de", "en;q=0.5, de;q=0.9", True),
        ("de", "deu", False),
        (["fr", "de"], "de-CH", True),
        ("de-AT", "de-at", True),
        ("de-AT", "de", False),
        ("de", "*", False),
        ("de", None, False),
    ],
    ids=[
        "exact",
        "region-matches-language",
        "not-top-preference",
        "quality-decides",
        "prefix-is-not-enough",
        "list",
        "case-insensitive",
        "region-wanted",
        "star-is-no-language",
        "no-header",
    ],
)
def test_language(language: Any, header: str | None, expected: bool) -> None:
    headers = {"Accept-Language": header} if header is not None else None
    assert applies({"language": language}, headers=headers) is expected


@pytest.mark.parametrize(
    ("networks", "client_ip", "expected"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        ("192.168.1.7", "192.168.1.7", True),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "[2001:db8::1]", True),
        (["2001:db8::/32"], "2001:db9::1", False),
        (["10.0.0.0/8", "2001:db8::/32"], "2001:db8::5", True),
        (["10.0.0.0/8"], "not-an-ip", False),
        (["10.0.0.0/8"], None, False),
    ],
    ids=[
        "v4-in",
        "v4-out",
        "single-address",
        "v6-in",
        "v6-bracketed",
        "v6-out",
        "mixed-list",
        "garbage-address",
        "no-address",
    ],
)
def test_ip(networks: Any, client_ip: str | None, expected: bool) -> None:
    assert applies({"ip": networks}, client_ip=client_ip) is expected


@pytest.mark.parametrize(
    ("when", "now", "expected"),
    [
        ({"after": "2026-01-01T00:00:00Z"}, NOW, True),
        ({"after": "2027-01-01T00:00:00Z"}, NOW, False),
        ({"before": "2026-06-01T12:00:00Z"}, NOW, False),
        ({"before": "2026-06-01T12:00:01+00:00"}, NOW, True),
        ({"after": "2026-06-01T13:00:00+02:00"}, NOW, True),
        ({"after": "2026-06-01T12:00:00"}, NOW, True),
        ({"after": "2026-01-01", "before": "2026-12-31"}, NOW, True),
        ({"after": "2026-01-01"}, datetime(2026, 6, 1), True),
    ],
    ids=[
        "after-passed",
        "after-not-yet",
        "before-is-exclusive",
        "before-not-yet",
        "zones-compared",
        "no-zone-is-utc",
        "window",
        "naive-now-is-utc",
    ],
)
def test_time(when: dict[str, Any], now: datetime, expected: bool) -> None:
    assert applies(when, now=now) is expected


@pytest.mark.parametrize(
    ("when", "headers", "expected"),
    [
        ({"not": {"language": "de"}}, {"Accept-Language": "en"}, True),
        ({"not": {"language": "de"}}, {"Accept-Language": "de"}, False),
        ({"not": {"language": "de", "accept": "json"}}, {"Accept-Language": "en"}, False),
        ({"not": {"language": "de", "accept": "json"}}, {"Accept": BROWSER}, True),
        ({"accept": "html", "not": {"cookies": {"beta": "*"}}}, {"Accept": BROWSER}, True),
        (
            {"accept": "html", "not": {"cookies": {"beta": "*"}}},
            {"Accept": BROWSER, "Cookie": "beta=1"},
            False,
        ),
    ],
    ids=[
        "not-holds",
        "not-fails",
        "none-may-hold",
        "none-holds",
        "with-positive-condition",
        "negated-cookie-present",
    ],
)
def test_not(when: dict[str, Any], headers: dict[str, str], expected: bool) -> None:
    assert applies(when, headers=headers) is expected


@pytest.mark.parametrize(
    ("scheme", "url", "expected"),
    [
        ("http", "http://example.com/x", True),
        ("http", "https://example.com/x", False),
        ("https", "https://example.com/x", True),
        ("HTTPS", "https://example.com/x", True),
        ("https", "/x", False),  # a path alone is an http request
        (["http", "https"], "https://example.com/x", True),
        (["https"], "http://example.com/x", False),
    ],
    ids=["http", "http-not-https", "https", "upper-case", "path-is-http", "list", "list-miss"],
)
def test_scheme(scheme: Any, url: str, expected: bool) -> None:
    assert applies({"scheme": scheme}, url=url) is expected


def test_scheme_reads_the_request_scheme_also_for_websockets() -> None:
    engine = Engine([{"from": "/x", "respond": 204, "when": {"scheme": "https"}}])
    for scheme, expected in (("https", True), ("wss", True), ("http", False), ("ws", False)):
        request = Request("GET", "/x", scheme=scheme)
        assert (engine.resolve(request).action == "respond") is expected, scheme


def test_a_failed_scheme_condition_is_explained() -> None:
    engine = Engine([{"from": "/x", "to": "https://example.com/x", "when": {"scheme": "http"}}])
    [step] = engine.explain("GET", "https://example.com/x").steps
    assert step.reason == "condition failed: scheme: scheme is 'https'"
    # Behind a proxy that ends TLS the scheme comes from X-Forwarded-Proto: caches must vary.
    assert engine.resolve("GET", "http://example.com/x").vary == ("X-Forwarded-Proto",)


def test_scheme_round_trips_through_to_mapping() -> None:
    engine = Engine(
        [{"from": "/x", "to": "/y", "when": {"scheme": "HTTP", "not": {"scheme": "https"}}}]
    )
    assert engine.rules[0].to_mapping()["when"] == {
        "scheme": ["http"],
        "not": {"scheme": ["https"]},
    }


def test_every_condition_must_hold() -> None:
    when = {"methods": ["GET"], "query": {"ref": "mail"}, "language": "de"}
    headers = {"Accept-Language": "de"}
    assert applies(when, url="/x?ref=mail", headers=headers)
    assert not applies(when, url="/x?ref=mail", headers=headers, method="POST")
    assert not applies(when, url="/x", headers=headers)


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ({"methods": ["GTE"]}, "unknown HTTP method 'GTE'; did you mean 'GET'?"),
        ({"accept": "xml"}, "accept must be 'json' or 'html', got 'xml'"),
        ({"ip": ["10.0.0.300/8"]}, "'10.0.0.300/8' is not an IP address or CIDR block"),
        ({"after": "next tuesday"}, "'next tuesday' is not an ISO 8601 time"),
        ({"after": "2027-01-01", "before": "2026-01-01"}, "must be earlier than 'before'"),
        ({"query": ["ref"]}, "query parameter must be a mapping"),
        ({"query": {"ref": {"a": 1}}}, "pattern must be {glob: '...'} or {regex: '...'}"),
        ({"hots": "example.com"}, "unknown condition 'hots'; did you mean 'host'?"),
        ({"not": {"not": {"host": "a"}}}, "unknown condition 'not'"),
        ({"host": ""}, "a host must be a non-empty string"),
        ({"scheme": "ftp"}, "scheme must be 'http' or 'https' (or a list of them), got 'ftp'"),
        ({"scheme": "https://"}, "got 'https://'; did you mean 'https'?"),
        ({"scheme": ["http", "htps"]}, "got 'htps'; did you mean 'https'?"),
        ({"scheme": []}, "a scheme must not be an empty list"),
        ({"headers": {"X-A\r\nSet-Cookie": "*"}}, "is not a valid header name"),
        ("host", "'when' must be a mapping"),
    ],
    ids=[
        "bad-method",
        "bad-accept",
        "bad-cidr",
        "bad-time",
        "empty-window",
        "query-not-mapping",
        "query-bad-value",
        "unknown-condition",
        "nested-not",
        "empty-host",
        "other-scheme",
        "scheme-with-slashes",
        "misspelt-scheme-in-a-list",
        "no-scheme",
        "crlf-in-header-name",
        "when-not-mapping",
    ],
)
def test_condition_errors(when: Any, words: str) -> None:
    with pytest.raises(RulesError) as caught:
        Engine([{"from": "/x", "to": "/y", "when": when}])
    assert [words in e.message for e in caught.value.errors] == [True]


def test_methods_at_the_top_level_of_a_rule() -> None:
    engine = Engine([{"from": "/x", "to": "/y", "methods": ["POST"], "status": 307}])
    assert engine.resolve("POST", "/x").action == "redirect"
    assert engine.resolve("GET", "/x").action == "pass"
    with pytest.raises(RulesError, match="give 'methods' once"):
        Engine([{"from": "/x", "to": "/y", "methods": ["POST"], "when": {"methods": ["GET"]}}])


def test_request_joins_repeated_headers() -> None:
    request = Request("get", "/x", "", [("Accept", "text/html"), ("accept", "application/json")])
    assert request.headers["accept"] == "text/html, application/json"
    assert request.method == "GET"


def test_the_decision_names_the_headers_its_conditions_read() -> None:
    engine = Engine([{"from": "/x", "to": "/y", "when": {"headers": {"X-Beta": "1"}}}])
    assert engine.resolve("GET", "/x", {"X-Beta": "1"}).vary == ("X-Beta",)
    assert engine.resolve("GET", "/x").vary == ("X-Beta",)


@pytest.mark.parametrize(
    ("client_ip", "holds"),
    [("::ffff:10.1.2.3", True), ("::ffff:192.168.0.1", False), ("10.1.2.3", True)],
    ids=["mapped-inside", "mapped-outside", "plain-v4"],
)
def test_ipv4_mapped_ipv6_clients_match_ipv4_blocks(client_ip: str, holds: bool) -> None:
    engine = Engine([{"from": "/office", "when": {"ip": ["10.0.0.0/8"]}, "respond": 204}])
    decision = engine.resolve("GET", "/office", client_ip=client_ip)
    assert (decision.action == "respond") is holds


# -- a value that matches a pattern (WordPress Redirection's user agent and referrer) ------


def test_header_cookie_and_query_values_may_match_a_glob_or_a_regex() -> None:
    from waypost import Engine

    engine = Engine(
        [
            {
                "from": "/app",
                "to": "/mobile",
                "when": {"headers": {"user-agent": {"regex": "(?i)iphone|android"}}},
            },
            {
                "from": "/app",
                "to": "/from-google",
                "when": {"headers": {"referer": {"glob": "https://www.google.*"}}},
            },
            {"from": "/app", "to": "/beta", "when": {"cookies": {"plan": {"glob": "beta-?"}}}},
            {"from": "/app", "to": "/utm", "when": {"query": {"utm_source": {"regex": "^news"}}}},
            {"from": "/app", "to": "/desktop"},
        ]
    )

    def where(headers: dict[str, str] | None = None, url: str = "/app") -> str | None:
        return engine.resolve("GET", url, headers=headers).location

    assert where({"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"}) == "/mobile"
    assert where({"Referer": "https://www.google.de/search?q=x"}) == "/from-google"
    assert where({"Referer": "https://evil.example/?https://www.google.de"}) == "/desktop"
    assert where({"Cookie": "plan=beta-2"}) == "/beta"
    assert where({"Cookie": "plan=beta-22"}) == "/desktop"  # a glob matches the whole value
    assert where(url="/app?utm_source=newsletter") == "/utm?utm_source=newsletter"
    assert where() == "/desktop"


@pytest.mark.parametrize(
    ("want", "message"),
    [
        ({"regex": "(?<=a)b"}, "cannot run on RE2"),
        ({"glob": ""}, "must be non-empty text"),
        ({"like": "x"}, "pattern must be {glob"),
        ({"glob": "a", "regex": "b"}, "pattern must be {glob"),
    ],
    ids=["lookbehind", "empty", "unknown-kind", "two-kinds"],
)
def test_a_bad_value_pattern_is_refused_with_its_place(want: dict[str, str], message: str) -> None:
    from waypost import Engine
    from waypost.exceptions import RulesError

    with pytest.raises(RulesError, match=message) as caught:
        Engine([{"from": "/a", "to": "/b", "when": {"headers": {"user-agent": want}}}])
    assert "when.headers['user-agent']" in str(caught.value)


def test_a_value_pattern_writes_back_as_written() -> None:
    from waypost.rules.conditions import parse_conditions
    from waypost.rules.model import conditions_to_mapping

    when = {"headers": {"user-agent": {"regex": "(?i)bot"}}, "query": {"ref": {"glob": "a*"}}}
    parsed = parse_conditions(when)
    assert conditions_to_mapping(parsed) == when
    assert parse_conditions(conditions_to_mapping(parsed)) == parsed
