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


class _CountingEnviron(dict[str, Any]):
    """An environ that counts how often its items are walked (where the headers are)."""

    walks = 0

    def items(self) -> Any:
        type(self).walks += 1
        return super().items()


def test_a_request_decided_by_its_path_never_decodes_its_headers() -> None:
    # Decoding a browser's dozen headers was most of what a middleware added to a request; a
    # redirect, or a request no rule matches, is decided by the path alone.
    from waypost.engine import Engine
    from waypost.rules.request import LazyHeaders
    from waypost.wsgi import WaypostMiddleware

    engine = Engine(
        [{"from": "/old", "to": "/new"}, {"from": "/lang", "to": "/fr", "when": {"language": "fr"}}]
    )
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["HTTP_ACCEPT_LANGUAGE"])
        start_response("200 OK", [])
        return [b"app"]

    middleware = WaypostMiddleware(app, rules=engine)
    answers: list[str] = []
    for path in ("/old", "/page"):
        environ = _CountingEnviron(_environ(path, ""))
        _CountingEnviron.walks = 0
        middleware(environ, lambda status, headers, exc_info=None: answers.append(status))
        assert _CountingEnviron.walks == 0, path
    assert answers == ["301 Moved Permanently", "200 OK"] and seen == ["fr"]
    # A rule that looks at a header reads them, once.
    environ = _CountingEnviron(_environ("/lang", ""))
    request = request_from_environ(environ)
    assert isinstance(request.raw_headers, LazyHeaders)
    assert engine.resolve(request).location == "/fr?a=1&b=%C3%A9"
    assert _CountingEnviron.walks == 1 and request.headers["accept-language"] == "fr"
    assert request_from_scope(_scope("/lang", "")).headers["accept-language"] == "fr"


class _Missing:
    """A StatsSink keeping the 404s it is told of."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def hit(self, decision: Any, when: float) -> None:
        pass

    def missing(
        self, target: str, referrer: str | None, user_agent: str | None, when: float
    ) -> None:
        self.seen.append((target.partition("?")[0], user_agent))

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_counted_404_has_the_headers_the_client_sent(kind: str) -> None:
    # The request is used after the app ran (a 404 counted): its headers are read before, so
    # an app that changes the environ or the scope in place does not change what is recorded.
    import asyncio

    from waypost.engine import Engine

    stats = _Missing()
    engine = Engine([{"from": "/old", "to": "/new"}])
    if kind == "wsgi":
        from waypost.wsgi import WaypostMiddleware as Wsgi

        def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            environ["HTTP_USER_AGENT"] = "changed by the app"
            start_response("404 Not Found", [])
            return [b""]

        Wsgi(wsgi_app, rules=engine, stats=stats)(
            {**_environ("/missing", ""), "HTTP_USER_AGENT": "Firefox"}, lambda *a: None
        )
    else:
        from waypost.asgi import WaypostMiddleware as Asgi

        async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope["headers"][:] = [(b"user-agent", b"changed by the app")]
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def send(message: Any) -> None:
            return None

        scope = {**_scope("/missing", ""), "method": "GET"}
        scope["headers"] = [*scope["headers"], (b"user-agent", b"Firefox")]
        asyncio.run(Asgi(asgi_app, rules=engine, stats=stats)(scope, None, send))
    assert stats.seen == [("/missing", "Firefox")]
