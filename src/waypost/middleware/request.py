"""The one :class:`~waypost.rules.request.Request` a middleware builds and hands to the engine.

An ASGI scope and a WSGI environ carry the same request in two shapes (and a framework's own
request object a third: :func:`request_from_path`, for Django's); all become the same
``Request``, for the path *inside* the app: rules match below the mount point (ASGI's
``root_path``, WSGI's ``SCRIPT_NAME``), and :mod:`waypost.middleware._common` puts the mount
point back in front of a same-site Location.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from waypost.middleware._types import Environ, Scope
from waypost.rules.request import HeaderInput, LazyHeaders, Request

__all__ = [
    "app_path",
    "read_headers",
    "request_from_environ",
    "request_from_path",
    "request_from_scope",
    "scope_query",
]

# What a raw WSGI path keeps unescaped: RFC 3986's path characters, and '%' so escapes stay.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
# A path quote() gives back unchanged: those characters, letters and digits only.
_RAW_AS_IS = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=._~-]*")


def app_path(scope: Scope) -> str:
    """The decoded path inside the app of an ASGI scope (below its ``root_path``)."""
    root = scope.get("root_path", "") or ""
    path: str = scope["path"]
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def scope_query(scope: Scope) -> str:
    """The raw query string of an ASGI scope, as a str."""
    query = scope.get("query_string", b"")
    return query.decode("latin-1") if query else ""


def _app_relative(scope: Scope) -> tuple[str, str]:
    """``(decoded path inside the app, raw path inside the app)`` of an ASGI scope."""
    root = scope.get("root_path", "") or ""
    full: str = scope["path"]
    raw_bytes = scope.get("raw_path")
    if raw_bytes:
        raw = raw_bytes.decode("latin-1")
        if "?" in raw:
            raw = raw.partition("?")[0]
    else:
        raw = quote(full)
    path = app_path(scope)
    if root and full.startswith(root):
        quoted_root = quote(root)
        if raw.startswith(quoted_root):
            raw = raw[len(quoted_root) :] or "/"
        elif raw.startswith(root):
            raw = raw[len(root) :] or "/"
    return path, raw


def _scope_headers(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


def _environ_headers(environ: Environ) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-"), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-"), value))
    return headers


def read_headers(request: Request) -> None:
    """Read ``request``'s headers now (see :class:`~waypost.rules.request.LazyHeaders`): before
    the app runs, when the request is still used after it (a fallback rule, a 404 counted), so
    that what is read is what the client sent, not what the app made of the environ or the
    scope."""
    raw = request.raw_headers
    if isinstance(raw, LazyHeaders):
        raw.pairs()


def request_from_scope(scope: Scope) -> Request:
    """A :class:`~waypost.rules.request.Request` for an ASGI HTTP scope (path inside the app);
    its headers are decoded when first read."""
    path, raw = _app_relative(scope)
    client = scope.get("client")
    # Positional: a call with keywords costs CPython 3.11 more (see Request.__init__).
    return Request(
        scope.get("method", "GET"),
        raw,
        scope_query(scope),
        LazyHeaders(scope.get("headers", ()), _scope_headers),
        None,  # host: from the headers
        client[0] if client else None,
        None,  # now
        path,
        # The server's scheme: behind a proxy, what the server was told to trust (uvicorn's
        # --proxy-headers, hypercorn's ProxyFixMiddleware).
        scope.get("scheme", "http"),
    )


def request_from_environ(environ: Environ) -> Request:
    """A :class:`~waypost.rules.request.Request` for a WSGI environ (``PATH_INFO``); its headers
    are read from the environ when first read."""
    path_info = environ.get("PATH_INFO", "") or "/"
    # PEP 3333: PATH_INFO is decoded bytes seen as latin-1; recover the real text.
    path = path_info if path_info.isascii() else _native_path(path_info)
    return request_from_path(
        environ.get("REQUEST_METHOD", "GET"),
        path,
        environ.get("QUERY_STRING", ""),
        LazyHeaders(environ, _environ_headers),
        environ.get("REMOTE_ADDR"),
        # Behind a proxy, what werkzeug's ProxyFix (or the server) made of X-Forwarded-Proto.
        environ.get("wsgi.url_scheme", "http"),
    )


def _native_path(path_info: str) -> str:
    return path_info.encode("latin-1").decode("utf-8", "surrogateescape")


def request_from_path(
    method: str,
    path: str,
    query_string: str,
    headers: HeaderInput,
    client_ip: str | None,
    scheme: str = "http",
) -> Request:
    """A :class:`~waypost.rules.request.Request` for a request whose framework already decoded
    the path inside the app (a WSGI environ's ``PATH_INFO``, Django's ``request.path_info``);
    its raw form is that path percent-encoded again (RFC 3986's path characters and ``%``
    kept). :func:`request_from_environ` ends here."""
    return Request(
        method,
        # A path of RFC 3986's path characters only (most) is its own raw form.
        path if _RAW_AS_IS.fullmatch(path) else quote(path, safe=_PATH_SAFE),
        query_string,
        headers,
        None,  # host: from the headers
        client_ip,
        None,  # now
        path,
        scheme,
    )
