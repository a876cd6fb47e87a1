"""The Vercel importer reads vercel.json as routing-utils does (issue #14): each test fails on the
importer before it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from waypost.engine import Engine
from waypost.tools.formats import EXPORTERS, IMPORTERS, ImportResult


def imported(config: dict[str, Any]) -> ImportResult:
    return IMPORTERS["vercel"](json.dumps(config, indent=2))


def answer(result: ImportResult, url: str) -> str:
    engine = Engine(result.rules, defaults=result.defaults or None)
    decision = engine.resolve("GET", "http://example.com" + url)
    text = decision.describe(detail=False)
    return "pass" if text.startswith("pass") else text


def one(kind: str, **entry: Any) -> ImportResult:
    return imported({kind: [entry]})


@pytest.mark.parametrize(
    ("kind", "source", "destination", "url", "expect"),
    [
        ("redirects", "/feature-{:slug}", "/blog-{:slug}", "/feature-first", "/blog-first"),
        ("redirects", "/hello/:world", "/somewhere?else={:world}", "/hello/x", "?else=x"),
        ("rewrites", "/projects/:id/edit", "/projects.html", "/projects/one/edit", "?id=one"),
        ("rewrites", "/users/:id", "/u?identifier=:id&v=2", "/users/four", "&v=2&id=four"),
        ("rewrites", "/:path/:two", "/test?path=:path", "/a/b", "?path=a&two=b"),
        ("rewrites", "/d/:name/:age", "/final?name=bob&age=", "/d/x/y", "/final?name=bob&age="),
        ("rewrites", "/q/:id/:hash", "/get?identifier=:id#:hash", "/q/t/f", "/get?identifier=t"),
        ("redirects", "/optional/:id?", "/api/optional/:id?", "/optional", "/api/optional/"),
        ("rewrites", "/c/:hello*/", "/catchall/:hello*", "/c/first/second/", "/first/second"),
    ],
    ids=[
        "braces-in-a-segment",
        "braces-in-the-query",
        "unused-parameter-to-query",
        "added-after-the-query",
        "only-the-unused-one",
        "named-in-the-query-already",
        "fragment-uses-it-and-is-dropped",
        "empty-optional-is-empty-text",
        "repeated-segment-before-a-slash",
    ],
)
def test_destinations_are_filled_in_as_vercel_does(
    kind: str, source: str, destination: str, url: str, expect: str
) -> None:
    result = one(kind, source=source, destination=destination)
    assert result.skipped == []
    got = answer(result, url)
    assert got.endswith(expect) and "#" not in got.removeprefix("redirect"), got


def test_rewrites_wait_for_a_missing_file_and_keep_the_array_order() -> None:
    result = imported(
        {
            "rewrites": [
                {"source": "/blog/:slug", "destination": "/posts/:slug"},
                {"source": "/blog/archive", "destination": "/archive"},
            ]
        }
    )
    assert result.defaults == {"order": "first_match"}
    assert all(rule["only_if_missing"] for rule in result.rules)
    assert answer(result, "/blog/archive") == "rewrite /posts/archive"


def test_clean_urls_and_trailing_slash_are_the_redirects_vercel_puts_first() -> None:
    text = json.dumps(
        {
            "cleanUrls": True,
            "trailingSlash": False,
            "redirects": [{"source": "/a", "destination": "/b"}],
        },
        indent=2,
    )
    result = IMPORTERS["vercel"](text)
    assert result.skipped == []
    assert answer(result, "/about.html") == "redirect 308 /about"
    assert answer(result, "/index") == "redirect 308 /"
    assert answer(result, "/sub/index.html") == "redirect 308 /sub"
    assert answer(result, "/dir/") == "redirect 308 /dir"
    assert answer(result, "/a") == "redirect 308 /b"
    assert [note.line for note in result.notes] == [2]


def test_trailing_slash_true_is_reported_at_its_line() -> None:
    result = IMPORTERS["vercel"]('{\n  "trailingSlash": true\n}')
    assert [(skip.line, "no dot" in skip.reason) for skip in result.skipped] == [(2, True)]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"source": "/iforgot/:id", "destination": "/:another"}, "neither the source nor 'has'"),
        ({"source": "/i/:id", "destination": "https://example.com/?n=:name"}, "':name'"),
        ({"source": "/:?", "destination": "/file.html"}, "without a parameter name"),
        ({"source": "/a?", "destination": "/file.html"}, "follows no parameter"),
        ({"source": "^/(*.)\\.html$", "destination": "/f"}, "does not start with '/'"),
        (
            {"source": "/b", "destination": "/c", "permanent": False, "statusCode": 302},
            "both 'permanent' and 'statusCode'",
        ),
        (
            {
                "source": "/r",
                "destination": "/:url",
                "has": [{"type": "query", "key": "url"}],
            },
            "from a 'has' item",
        ),
        ({"source": "/e/:id", "destination": "/t/$edge/:id", "env": ["edge"]}, "'env'"),
        ({"source": "/f-{:slug}?", "destination": "/g"}, "optional or repeated group"),
    ],
    ids=[
        "undefined-segment",
        "undefined-segment-in-a-query",
        "colon-without-a-name",
        "stray-question-mark",
        "a-regex-source",
        "permanent-and-status",
        "filled-from-has",
        "env-variable",
        "optional-group",
    ],
)
def test_entries_vercel_refuses_or_waypost_cannot_express_are_reported(
    entry: dict[str, Any], reason: str
) -> None:
    result = one("redirects", **entry)
    assert result.rules == []
    assert [skip.line for skip in result.skipped] == [3]
    assert reason in result.skipped[0].reason


def test_a_rewrite_status_code_is_reported_not_dropped() -> None:
    result = one("rewrites", source="/s", destination="/api/hello", statusCode=201)
    assert result.rules == []
    assert "statusCode" in result.skipped[0].reason


def test_a_rewrite_with_has_and_no_parameter_in_its_path_is_reported() -> None:
    # Vercel would add '?host=...' to the rewritten query.
    result = one(
        "rewrites", source="/a", destination="/b", has=[{"type": "host", "value": "x.example"}]
    )
    assert result.rules == []
    assert "'has' items" in result.skipped[0].reason


def test_env_without_variables_in_the_destination_imports() -> None:
    result = one("redirects", source="/e/:slug", destination="/t/:slug", env=["edge"])
    assert answer(result, "/e/abc") == "redirect 308 /t/abc"


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"from": "/a", "rewrite": "/b"}, "only_if_missing"),
        ({"from": "/a", "to": "/b", "only_if_missing": True}, "before its files"),
        (
            {"from": "/a/<path:p>", "rewrite": "/index.html", "only_if_missing": True},
            "add 'p' to the rewritten query",
        ),
    ],
    ids=["rewrite-before-files", "redirect-waiting", "unused-parameter"],
)
def test_the_export_refuses_what_vercel_would_apply_differently(
    rule: dict[str, Any], reason: str
) -> None:
    exported = EXPORTERS["vercel"]([rule], None)
    assert [item.index for item in exported.unsupported] == [0]
    assert reason in exported.unsupported[0].reason


def test_an_exported_rewrite_comes_back_the_same() -> None:
    rule = {
        "from": "/app/<path:page>",
        "rewrite": "/index.html?page={page}",
        "only_if_missing": True,
    }
    exported = EXPORTERS["vercel"]([rule], None)
    assert exported.unsupported == []
    back = IMPORTERS["vercel"](exported.text).rules
    assert back == [rule]


# -- rewrites to another origin (proxies) --------------------------------------------------------


def proxied(result: ImportResult, url: str, *, exists: bool = False) -> str:
    """The answer of the rules as ``waypost import`` writes them (with their proxy hosts)."""
    engine = Engine(result.rules, defaults=result.defaults or None, proxy_hosts=result.proxy_hosts)
    decision = engine.resolve(
        "GET", "http://example.com" + url, stage="before" if exists else "all"
    )
    text = decision.describe(detail=False)
    return "pass" if text.startswith("pass") else text


@pytest.mark.parametrize(
    ("source", "destination", "url", "expect"),
    [
        (
            "/api/:path*",
            "https://api.example.com/v1/:path*",
            "/api/items/4?q=1",
            "proxy https://api.example.com/v1/items/4?q=1",
        ),
        ("/docs", "https://Docs.Example.com/", "/docs", "proxy https://Docs.Example.com/"),
        (
            "/a/:id/:name",
            "https://example.com/?tag=1&tag=2",
            "/a/10/email",
            "proxy https://example.com/?tag=1&tag=2&id=10&name=email",
        ),
        (
            "/p/:slug",
            "http://origin.example.org:8080/x/:slug#part",
            "/p/one",
            "proxy http://origin.example.org:8080/x/one",
        ),
    ],
    ids=["path-parameter", "host-lowercased-in-the-list", "unused-to-query", "port-no-fragment"],
)
def test_a_rewrite_to_a_url_proxies_there(
    source: str, destination: str, url: str, expect: str
) -> None:
    result = one("rewrites", source=source, destination=destination)
    assert result.skipped == []
    assert all(rule["only_if_missing"] for rule in result.rules)
    host = destination.split("://")[1].split("/")[0].split(":")[0].lower()
    assert result.proxy_hosts == [host]
    assert proxied(result, url) == expect
    # After Vercel's filesystem: a file at the path answers first.
    assert proxied(result, url, exists=True) == "pass"


def test_proxy_hosts_are_listed_once_in_first_use_order() -> None:
    result = imported(
        {
            "rewrites": [
                {"source": "/b/:p*", "destination": "https://b.example.com/:p*"},
                {"source": "/a", "destination": "https://a.example.com/"},
                {"source": "/b2", "destination": "https://b.example.com/two"},
                {"source": "/local", "destination": "/index.html"},
            ]
        }
    )
    assert result.skipped == []
    assert result.proxy_hosts == ["b.example.com", "a.example.com"]


def test_redirects_to_a_url_list_no_proxy_host() -> None:
    result = one("redirects", source="/a", destination="https://elsewhere.example.com/")
    assert result.proxy_hosts == []
    assert answer(result, "/a") == "redirect 308 https://elsewhere.example.com/"


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("https://:tenant.example.com/x", "takes its host or port from ':tenant'"),
        ("https://{:tenant}.example.com/x", "takes its host or port from ':tenant'"),
        ("https://api.example.com::port/x", "takes its host or port from ':port'"),
        ("https://user:pass@api.example.com/x", "user info"),
        ("ftp://files.example.com/x", "not an http(s) URL"),
    ],
    ids=["host-from-a-parameter", "host-from-a-group", "port-from-a-parameter", "user-info", "ftp"],
)
def test_a_proxy_vercel_takes_and_waypost_must_not_is_reported(
    destination: str, reason: str
) -> None:
    result = one("rewrites", source="/t/:tenant/:port", destination=destination)
    assert result.rules == [] and result.proxy_hosts == []
    assert [skip.line for skip in result.skipped] == [3]
    assert reason in result.skipped[0].reason


def test_an_exported_proxy_comes_back_the_same() -> None:
    rule = {
        "from": "/api/<path:rest>",
        "rewrite": "https://api.example.com/v1/{rest}",
        "only_if_missing": True,
    }
    exported = EXPORTERS["vercel"]([rule], None)
    assert exported.unsupported == []
    [entry] = json.loads(exported.text)["rewrites"]
    assert entry["destination"] == "https://api.example.com/v1/:rest"
    back = IMPORTERS["vercel"](exported.text)
    assert back.rules == [rule]
    assert back.proxy_hosts == ["api.example.com"]
