"""``follow``: redirects followed as a browser does (methods, relative Locations, hosts, limits)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.engine import Engine
from waypost.tools.trace import MAX_REDIRECTS, _join, follow, next_method


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("POST", 301, "GET"),
        ("POST", 302, "GET"),
        ("PUT", 302, "PUT"),
        ("POST", 303, "GET"),
        ("HEAD", 303, "HEAD"),
        ("DELETE", 303, "GET"),
        ("POST", 307, "POST"),
        ("POST", 308, "POST"),
        ("GET", 301, "GET"),
    ],
    ids=[
        "301-post",
        "302-post",
        "302-put",
        "303-post",
        "303-head",
        "303-delete",
        "307",
        "308",
        "get",
    ],
)
def test_next_method_follows_fetch(method: str, status: int, expected: str) -> None:
    assert next_method(method, status) == expected


# Each case: rules, the request, then the outcome, the URLs asked for and the final URL.
CASES: list[tuple[str, list[dict[str, Any]], tuple[str, str], str, list[str], str]] = [
    (
        "no-rule",
        [],
        ("GET", "/a"),
        "final",
        ["/a"],
        "/a",
    ),
    (
        "chain",
        [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c", "status": 302}],
        ("GET", "/a"),
        "final",
        ["/a", "/b", "/c"],
        "/c",
    ),
    (
        "query-carried",
        [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c?x=1"}],
        ("GET", "/a?utm=1"),
        "final",
        ["/a?utm=1", "/b?utm=1", "/c?x=1&utm=1"],
        "/c?x=1&utm=1",
    ),
    (
        "post-becomes-get-after-301",
        [
            {"from": "/a", "to": "/b"},
            {"from": "/b", "methods": ["POST"], "to": "/post-only", "status": 308},
            {"from": "/b", "methods": ["GET"], "to": "/get-only", "status": 308},
        ],
        ("POST", "/a"),
        "final",
        ["/a", "/b", "/get-only"],
        "/get-only",
    ),
    (
        "post-kept-after-308",
        [
            {"from": "/a", "to": "/b", "status": 308},
            {"from": "/b", "methods": ["POST"], "to": "/post-only", "status": 308},
            {"from": "/b", "methods": ["GET"], "to": "/get-only", "status": 308},
        ],
        ("POST", "/a"),
        "final",
        ["/a", "/b", "/post-only"],
        "/post-only",
    ),
    (
        "loop",
        [{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}],
        ("GET", "/a"),
        "loop",
        ["/a", "/b"],
        "/a",
    ),
    (
        "loop-after-a-lead-in",
        [{"from": "/s", "to": "/a"}, {"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}],
        ("GET", "/s"),
        "loop",
        ["/s", "/a", "/b"],
        "/a",
    ),
    (
        "offsite",
        [{"from": "/a", "to": "https://elsewhere.example.net/x"}],
        ("GET", "/a"),
        "offsite",
        ["/a"],
        "https://elsewhere.example.net/x",
    ),
    (
        "own-host-continues",
        [{"from": "/a", "to": "https://www.example.com/b"}, {"from": "/b", "to": "/c"}],
        ("GET", "/a"),
        "final",
        ["/a", "https://www.example.com/b", "https://www.example.com/c"],
        "https://www.example.com/c",
    ),
    (
        "absolute-start-url",
        [{"from": "/a", "to": "https://www.example.com/b"}, {"from": "/b", "to": "/c"}],
        ("GET", "https://www.example.com/a"),
        "final",
        ["https://www.example.com/a", "https://www.example.com/b", "https://www.example.com/c"],
        "https://www.example.com/c",
    ),
    (
        "ends-on-respond",
        [{"from": "/a", "to": "/gone"}, {"from": "/gone", "respond": 410}],
        ("GET", "/a"),
        "final",
        ["/a", "/gone"],
        "/gone",
    ),
]


@pytest.mark.parametrize(
    ("rules", "request_", "outcome", "urls", "final"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_follow(
    rules: list[dict[str, Any]],
    request_: tuple[str, str],
    outcome: str,
    urls: list[str],
    final: str,
) -> None:
    walk = follow(Engine(rules), *request_, site_hosts=["www.example.com"])
    assert walk.outcome == outcome
    assert [hop.url for hop in walk.hops] == urls
    assert walk.final_url == final


def test_methods_are_recorded_per_hop() -> None:
    engine = Engine([{"from": "/a", "to": "/b", "status": 303}, {"from": "/b", "to": "/c"}])
    walk = follow(engine, "POST", "/a")
    assert [hop.method for hop in walk.hops] == ["POST", "GET", "GET"]
    assert walk.redirect_statuses == (303, 301)


def test_too_many_redirects() -> None:
    engine = Engine([{"from": f"/h{i}", "to": f"/h{i + 1}"} for i in range(30)])
    walk = follow(engine, "GET", "/h0")
    assert walk.outcome == "too-many"
    assert len(walk.redirects) == MAX_REDIRECTS + 1
    assert "more than 20 redirects" in walk.summary()
    assert follow(engine, "GET", "/h10").outcome == "final"


def test_limit_is_configurable() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/c"}])
    assert follow(engine, "GET", "/a", limit=1).outcome == "too-many"


def test_render_and_json() -> None:
    engine = Engine([{"from": "/a", "to": "/b"}, {"from": "/b", "respond": 410}])
    walk = follow(engine, "GET", "/a")
    text = walk.render()
    assert text.splitlines() == [
        " 1. GET /a",
        "    redirect 301 /b  [<rules>#1]",
        " 2. GET /b",
        "    respond 410  [<rules>#2]",
        "final: /b after 1 redirect; it answers 410",
    ]
    data = walk.to_dict()
    assert (data["outcome"], data["final_url"], data["final_status"]) == ("final", "/b", 410)
    assert data["redirects"] == 1
    assert [h["url"] for h in data["hops"]] == ["/a", "/b"]


@pytest.mark.parametrize(
    ("rules", "summary"),
    [
        ([{"from": "/a", "to": "/b"}, {"from": "/b", "to": "/a"}], "redirect loop: /a comes back"),
        ([{"from": "/a", "to": "https://x.example.net/"}], "(another site; not followed)"),
        ([{"from": "/a", "to": "/b"}], "no rule applies (the app answers)"),
        ([{"from": "/a", "to": "/b"}, {"from": "/b", "pass": True}], "a pass rule leaves it"),
        ([{"from": "/a", "to": "/b"}, {"from": "/b", "rewrite": "/app/b"}], "rewritten to /app/b"),
    ],
    ids=["loop", "offsite", "no-rule", "pass-rule", "rewrite"],
)
def test_summary(rules: list[dict[str, Any]], summary: str) -> None:
    assert summary in follow(Engine(rules), "GET", "/a").summary()


@settings(max_examples=400, deadline=None)
@given(
    current=st.text(alphabet="/ab.?#%:\\", max_size=10).map(lambda t: "/" + t),
    location=st.text(alphabet="/ab.?#%:\\", max_size=10).map(lambda t: "/" + t),
)
def test_joining_a_same_site_path_is_what_urljoin_gives(current: str, location: str) -> None:
    """_join() answers a plain same-site path itself (the checks follow a million of them);
    it must agree with urljoin() wherever it does."""
    if location.startswith("//"):
        return  # another host: _join() gives it a scheme, on purpose
    assert _join(current, location) == urljoin(current, location)
