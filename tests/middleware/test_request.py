"""Both middlewares build the same Request for the same request: from an ASGI scope or a WSGI
environ, for the path inside the app (below ``root_path`` / ``SCRIPT_NAME``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.middleware.request import request_from_environ, request_from_scope
from waypost.rules.request import Request

# (what the client asked, mount point, expected Request.raw_path, Request.path)
CASES = [
    ("/old/page", "", "/old/page", "/old/page"),
    ("/shop/old/page", "/shop", "/old/page", "/old/page"),
    ("/shop", "/shop", "/", "/"),
    ("/caf%C3%A9/menu", "", "/caf%C3%A9/menu", "/café/menu"),
    ("/a%20b", "", "/a%20b", "/a b"),
]
IDS = ["plain", "mounted", "the mount point itself", "UTF-8 path", "escaped space"]


def _scope(target: str, mount: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "HEAD",
        "path": unquote(target),
        "raw_path": target.encode("latin-1"),
        "root_path": mount,
        "query_string": b"a=1&b=%C3%A9",
        "headers": [(b"host", b"example.com"), (b"accept-language", b"fr")],
        "client": ("203.0.113.9", 50000),
    }


def _environ(target: str, mount: str) -> dict[str, Any]:
    path = unquote(target)[len(mount) :] or "/"
    return {
        "REQUEST_METHOD": "HEAD",
        "SCRIPT_NAME": mount,
        # PEP 3333: the path's UTF-8 bytes, seen as latin-1.
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": "a=1&b=%C3%A9",
        "HTTP_HOST": "example.com",
        "HTTP_ACCEPT_LANGUAGE": "fr",
        "REMOTE_ADDR": "203.0.113.9",
    }


@pytest.mark.parametrize(("target", "mount", "raw_path", "path"), CASES, ids=IDS)
def test_scope_and_environ_make_the_same_request(
    target: str, mount: str, raw_path: str, path: str
) -> None:
    for request in (
        request_from_scope(_scope(target, mount)),
        request_from_environ(_environ(target, mount)),
    ):
        assert (request.method, request.raw_path, request.path) == ("HEAD", raw_path, path)
        assert request.query_string == "a=1&b=%C3%A9"
        assert request.host == "example.com"
        assert request.headers["accept-language"] == "fr"
        assert request.client_ip == "203.0.113.9"


@pytest.mark.parametrize(
    ("environ", "headers"),
    [
        ({"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"}, {"content-type": "text/plain"}),
        ({"CONTENT_TYPE": "", "HTTP_X_FORWARDED_FOR": "a"}, {"x-forwarded-for": "a"}),
    ],
    ids=["content headers are headers", "an empty CONTENT_TYPE is not"],
)
def test_environ_headers(environ: dict[str, Any], headers: dict[str, str]) -> None:
    request = request_from_environ({"PATH_INFO": "/", **environ})
    assert headers.items() <= request.headers.items()
    assert ("content-type" in request.headers) == bool(environ.get("CONTENT_TYPE"))


def test_minimal_scope_and_environ() -> None:
    for request in (
        request_from_scope({"type": "http", "path": "/x"}),
        request_from_environ({"PATH_INFO": "/x"}),
    ):
        assert (request.method, request.raw_path, request.query_string) == ("GET", "/x", "")
        assert request.client_ip is None


def test_the_request_has_the_scheme_the_server_says() -> None:
    """ASGI's ``scope['scheme']`` and WSGI's ``wsgi.url_scheme`` (what the server, or a proxy
    fix in front of the app, made of the connection) are the request's scheme."""
    for request, scheme in (
        (request_from_scope({"type": "http", "path": "/x", "scheme": "https"}), "https"),
        (request_from_environ({"PATH_INFO": "/x", "wsgi.url_scheme": "https"}), "https"),
        (request_from_scope({"type": "http", "path": "/x"}), "http"),
        (request_from_environ({"PATH_INFO": "/x"}), "http"),
    ):
        assert request.scheme == scheme


# Cookie headers as clients (and attackers) send them: repeated names, quotes, spaces, empty
# names and values, chunks without '=', names inside other names and values.
_COOKIE_TEXT = st.text(alphabet='ab=;" \t', max_size=20)


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(_COOKIE_TEXT, max_size=3),
    name=st.sampled_from(["a", "b", "ab", "a b", "", "=", '"a"']),
    given_as=st.sampled_from(["list", "tuple", "mapping", "iterator"]),
    headers_read=st.booleans(),
)
def test_one_cookie_is_read_as_the_cookie_jar_reads_it(
    values: list[str], name: str, given_as: str, headers_read: bool
) -> None:
    pairs = [("X-Other", "a=1")]
    pairs += [("Cookie" if i % 2 else "cookie", value) for i, value in enumerate(values)]

    def headers() -> Any:
        if given_as == "mapping":
            return dict(pairs[:2])
        return {"list": list, "tuple": tuple, "iterator": iter}[given_as](pairs)

    request = Request("GET", "/", "", headers())
    if headers_read:
        assert request.headers is not None
    expected = Request("GET", "/", "", headers())
    assert request.cookie(name) == expected.cookies.get(name)
    # An iterator of headers is read once: what cookie() read is still there.
    assert request.headers == expected.headers


@pytest.mark.parametrize(
    ("header", "name", "value"),
    [
        ("session=abc; theme=dark", "session", "abc"),
        ("theme=dark;session=abc", "session", "abc"),
        ("session=first; session=second", "session", "first"),
        ('session="quoted"', "session", "quoted"),
        ("xsession=abc; sessionx=def", "session", None),
        ("session", "session", None),
        ("=abc", "", None),
    ],
    ids=["first", "later", "repeated", "quoted", "longer names", "no value", "no name"],
)
def test_one_cookie(header: str, name: str, value: str | None) -> None:
    assert Request("GET", "/", "", [("Cookie", header)]).cookie(name) == value


def test_one_cookie_from_several_cookie_headers_and_after_the_jar_was_read() -> None:
    headers = [("Cookie", "a=1"), ("cookie", "session=s; a=2")]
    assert Request("GET", "/", "", headers).cookie("session") == "s"
    request = Request("GET", "/", "", headers)
    assert request.cookies == {"a": "1", "session": "s"}
    assert request.cookie("a") == "1"
    assert Request("GET", "/").cookie("session") is None


@pytest.mark.parametrize(
    "headers",
    [
        [
            ("Host", "a"),
            ("X-API-Key", "k1"),
            ("x-api-key", "k2"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ],
        (("X-Api-Key", "k1"), ("Accept", "*/*")),
        {"X-API-Key": "k1", "Cookie": "a=1"},
        None,
        [],
    ],
)
def test_headers_named_agrees_with_headers(headers: Any) -> None:
    """headers_named() gives what headers gives for the names asked, parsed or not."""
    names = ("x-api-key", "cookie", "authorization")
    expected = Request("GET", "/", "", headers).headers
    for read_first in (False, True):
        request = Request("GET", "/", "", headers)
        if read_first:
            assert request.headers == expected
        found = request.headers_named(names)
        for name in names:
            assert found.get(name) == expected.get(name)
