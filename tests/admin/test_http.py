"""The admin API's sans-io HTTP decisions and its failure limiter, without a server."""

from __future__ import annotations

import pytest

from waypost.admin._http import (
    IfMatchError,
    find_credentials,
    parse_if_match,
    prefers_html,
    safe_next,
    same_origin,
)
from waypost.admin._ratelimit import FailureLimiter
from waypost.admin.app import is_admin_path
from waypost.admin.routes_rules import merge_patch

KEY = "wp_abcdefghijkm_" + "s" * 43
SESSION = "wps_" + "t" * 43


@pytest.mark.parametrize(
    ("headers", "html"),
    [
        ({"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, True),
        ({"accept": "application/json"}, False),
        ({"accept": "*/*"}, False),
        ({}, False),
        ({"accept": "text/html", "content-type": "application/json"}, False),
        ({"accept": "application/json, text/html;q=0.5"}, False),
        ({"accept": "text/html;q=0.9, application/json;q=0.9"}, True),
    ],
    ids=["browser", "json", "curl", "no-accept", "sends-json", "json-preferred", "tie-html"],
)
def test_who_is_a_browser(headers: dict[str, str], html: bool) -> None:
    assert prefers_html(headers) is html


@pytest.mark.parametrize(
    ("value", "version"),
    [(None, None), ("*", None), ('"7"', 7), ('W/"7"', 7), ("7", 7), (' "12" ', 12)],
    ids=["absent", "star", "strong", "weak", "bare", "spaces"],
)
def test_if_match_names_a_version(value: str | None, version: int | None) -> None:
    assert parse_if_match(value) == version


@pytest.mark.parametrize("value", ['"a"', '"1", "2"', "", '"-1"', '"1' + "0" * 20 + '"'], ids=str)
def test_if_match_that_names_no_version_is_refused(value: str) -> None:
    with pytest.raises(IfMatchError, match="If-Match"):
        parse_if_match(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/_waypost/api/rules?limit=5", "/_waypost/api/rules?limit=5"),
        ("/café", "/caf%C3%A9"),
        ("/a b", "/home"),
        ("//evil.com", "/home"),
        ("/\\evil.com", "/home"),
        ("https://evil.com/", "/home"),
        ("javascript:alert(1)", "/home"),
        ("/\t/evil.com", "/home"),
        ("evil.com", "/home"),
        ("", "/home"),
        (None, "/home"),
        ("/\ud800", "/home"),
    ],
    ids=[
        "path",
        "non-ascii",
        "space",
        "protocol-relative",
        "backslash",
        "absolute",
        "script",
        "tab",
        "relative",
        "empty",
        "none",
        "surrogate",
    ],
)
def test_next_must_be_a_path_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value, "/home") == expected


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (None, "example.com", True),
        ("https://example.com", "example.com", True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("https://evil.com", "example.com", False),
        ("null", "example.com", False),
        ("https://example.com", None, False),
    ],
    ids=["no-origin", "same", "same-with-port", "other", "null", "no-host"],
)
def test_same_origin(origin: str | None, host: str | None, same: bool) -> None:
    assert same_origin(origin, host) is same


@pytest.mark.parametrize(
    ("headers", "cookie", "found"),
    [
        ({"authorization": f"Bearer {KEY}"}, None, (KEY, "bearer")),
        ({"authorization": f"bearer  {KEY} "}, None, (KEY, "bearer")),
        (
            {"x-api-key": "abcdefghijkm", "x-secret-token": "s" * 43},
            None,
            (KEY, "header"),
        ),
        (
            {"x-api-key": "wp_abcdefghijkm", "x-secret-token": "s" * 43},
            None,
            (KEY, "header"),
        ),
        ({"x-api-key": KEY}, None, (KEY, "header")),
        ({}, SESSION, (SESSION, "cookie")),
        ({"authorization": "Basic dXNlcjpwYXNz"}, KEY, ("Basic dXNlcjpwYXNz", "bearer")),
        ({}, None, None),
    ],
    ids=[
        "bearer",
        "bearer-case",
        "pair",
        "pair-with-prefix",
        "x-api-key-whole",
        "cookie",
        "basic-is-refused-not-ignored",
        "none",
    ],
)
def test_where_the_key_comes_from(
    headers: dict[str, str], cookie: str | None, found: tuple[str, str] | None
) -> None:
    credentials = find_credentials(headers, cookie)
    got = None if credentials is None else (credentials.presented, credentials.source)
    assert got == found
    assert KEY not in repr(credentials) and SESSION not in repr(credentials)


@pytest.mark.parametrize(
    ("path", "admin"),
    [
        ("/_waypost/api/rules", True),
        ("/_waypost/api", True),
        ("/_waypost/login", True),
        ("/_waypost/logout", True),
        ("/_waypost/health", False),
        ("/_waypost/metrics", False),
        ("/_waypost/apix", True),
        ("/_waypost", True),
        ("/_waypost/", True),
        ("/_waypost/rules/r1", True),
        ("/_waypostx", False),
        ("/_waypost/health/", True),
        ("/old-page", False),
    ],
    ids=[
        "api",
        "api-root",
        "login",
        "logout",
        "health",
        "metrics",
        "page-lookalike",
        "root",
        "root-slash",
        "page",
        "lookalike",
        "health-slash",
        "site",
    ],
)
def test_which_paths_the_server_sends_to_the_admin_app(path: str, admin: bool) -> None:
    assert is_admin_path(path) is admin


@pytest.mark.parametrize(
    ("target", "patch", "merged"),
    [
        ({"from": "/a", "to": "/b"}, {"status": 302}, {"from": "/a", "to": "/b", "status": 302}),
        ({"from": "/a", "to": "/b", "status": 302}, {"status": None}, {"from": "/a", "to": "/b"}),
        ({"when": {"host": "a", "ip": ["x"]}}, {"when": {"ip": None}}, {"when": {"host": "a"}}),
        ({"when": {"host": "a"}}, {"when": "x"}, {"when": "x"}),
    ],
    ids=["add", "remove", "nested", "replace"],
)
def test_patch_merges_like_rfc_7396(
    target: dict[str, object], patch: dict[str, object], merged: dict[str, object]
) -> None:
    assert merge_patch(target, patch) == merged


def test_the_limiter_slows_an_address_down_then_lets_it_try_again() -> None:
    now = [1000.0]
    limiter = FailureLimiter(limit=3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") == 0
        limiter.fail("10.0.0.1")
        now[0] += 1
    assert limiter.retry_after("10.0.0.1") == 57  # now 1003; the first failure leaves at 1060
    assert limiter.retry_after("10.0.0.2") == 0  # per address
    now[0] = 1060.0
    assert limiter.retry_after("10.0.0.1") == 0


def test_the_limiter_forgets_the_oldest_addresses_first() -> None:
    limiter = FailureLimiter(limit=1, window=60.0, max_addresses=2)
    for address in ("a", "b", "c"):
        limiter.fail(address)
    assert [limiter.retry_after(a) > 0 for a in ("a", "b", "c")] == [False, True, True]
